// CUDA twin of the fused softmax + cross-entropy loss and of cross_entropy_rows
// (cuda/ops/softmax_xent.cu) against the CPU ops: the loss and the logits' gradient at odd shapes,
// rows of GPT-2's vocabulary size, ignored rows (including every row), a loss that stays on the
// device and is bitwise repeatable, and the NaN that stands for an out-of-range target on the GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "core/rng.h"
#include "cuda_check.h"
#include "ops/softmax_xent.h"

using namespace moe;
using namespace moe::testing;

namespace {

// gtest runs the test files in link order, so these tests may come before any that calls
// devices_init(): plug the CUDA allocator in first (idempotent; a no-op in a CPU build).
struct CudaInit : ::testing::Environment {
  void SetUp() override { devices_init(); }
};
const ::testing::Environment* const kCudaInit = ::testing::AddGlobalTestEnvironment(new CudaInit);

// (N, V): single rows and columns, odd sizes, V > one block, N > the 1024 threads of the mean,
// and one row as long as GPT-2's vocabulary.
const std::pair<int64_t, int64_t> kShapes[] = {{1, 1},   {3, 7},    {7, 13},   {13, 65},
                                               {65, 3},  {5, 1031}, {1500, 17}, {3, 50257}};

// Targets in [0, V), with a fraction of rows set to ignore_index.
Tensor random_targets(int64_t N, int64_t V, uint64_t seed, double ignored, int ignore_index = -1) {
  Rng rng(seed);
  std::vector<int32_t> t(N);
  for (int32_t& v : t) {
    v = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
    if (rng.uniform() < ignored) v = ignore_index;
  }
  return Tensor::from_i32(t, {N});
}

std::string nv(int64_t N, int64_t V) {
  return " (" + std::to_string(N) + ", " + std::to_string(V) + ")";
}

}  // namespace

TEST(CudaSoftmaxXent, LossAndGradientMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1;
  for (auto [N, V] : kShapes) {
    Tensor logits = leaf_f32({N, V}, seed++, -6.0, 6.0);
    Tensor targets = random_targets(N, V, seed++, 0.2);
    expect_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return softmax_cross_entropy(in[0], in[1]); },
        {logits, targets}, tol::softmax_xent, tol::softmax_xent, "softmax_xent" + nv(N, V));
  }
}

TEST(CudaSoftmaxXent, RowsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 50;
  for (auto [N, V] : kShapes) {
    Tensor logits = random_f32({N, V}, seed++, -6.0, 6.0);
    Tensor targets = random_targets(N, V, seed++, 0.2);
    expect_cuda_matches_cpu(
        [](const std::vector<Tensor>& in) { return cross_entropy_rows(in[0], in[1]); },
        {logits, targets}, tol::softmax_xent, tol::softmax_xent, "cross_entropy_rows" + nv(N, V));
  }
}

TEST(CudaSoftmaxXent, CustomIgnoreIndexAndEveryRowIgnored) {
  MOE_SKIP_WITHOUT_CUDA();
  // ignore_index inside [0, V): rows whose target is 2 are skipped
  Tensor logits = leaf_f32({40, 9}, 60, -3.0, 3.0);
  Tensor targets = random_targets(40, 9, 61, 0.3, 2);
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return softmax_cross_entropy(in[0], in[1], 2); },
      {logits, targets}, tol::softmax_xent, tol::softmax_xent, "ignore_index 2");
  // every row ignored: loss 0 and a zero gradient, as on the CPU
  Tensor none = Tensor::from_i32(std::vector<int32_t>(40, -1), {40});
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return softmax_cross_entropy(in[0], in[1]); },
      {logits, none}, tol::exact, tol::exact, "every row ignored");
  Tensor lg = logits.to(cuda());
  lg.set_requires_grad(true);
  Tensor loss = softmax_cross_entropy(lg, none.to(cuda()));
  EXPECT_EQ(loss.item(), 0.0);
  backward(loss);
  for (double v : lg.grad().to_f64_vector()) ASSERT_EQ(v, 0.0);
}

TEST(CudaSoftmaxXent, NoRows) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor logits = Tensor::zeros({0, 5}, DType::F32, cuda());
  Tensor targets = Tensor::zeros({0}, DType::I32, cuda());
  EXPECT_EQ(softmax_cross_entropy(logits, targets).item(), 0.0);
  EXPECT_EQ(cross_entropy_rows(logits, targets).numel(), 0);
}

TEST(CudaSoftmaxXent, LossStaysOnTheDeviceAndIsBitwiseRepeatable) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor logits = random_f32({2000, 3001}, 70, -8.0, 8.0).to(cuda());
  Tensor targets = random_targets(2000, 3001, 71, 0.1).to(cuda());
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    Tensor l = logits.clone();
    l.set_requires_grad(true);
    Tensor loss = softmax_cross_entropy(l, targets);
    ASSERT_TRUE(loss.device().is_cuda());
    ASSERT_EQ(loss.shape(), Shape{});
    backward(loss);
    std::vector<float> all = l.grad().to_f32_vector();
    all.push_back(static_cast<float>(loss.item()));
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(CudaSoftmaxXent, OutOfRangeTargetGivesNanNotAnError) {
  MOE_SKIP_WITHOUT_CUDA();
  // On the GPU the targets are never read by the host: a bad target poisons the loss instead.
  Tensor logits = random_f32({3, 4}, 80).to(cuda());
  for (int32_t bad : {4, -2}) {
    Tensor targets = Tensor::from_i32({0, bad, 1}, {3}).to(cuda());
    Tensor l = logits.clone();
    l.set_requires_grad(true);
    Tensor loss = softmax_cross_entropy(l, targets);
    EXPECT_TRUE(std::isnan(loss.item())) << "target " << bad;
    backward(loss);
    std::vector<double> g = l.grad().to_f64_vector();
    for (int v = 0; v < 4; ++v) {
      EXPECT_FALSE(std::isnan(g[v])) << "row 0 is fine";
      EXPECT_TRUE(std::isnan(g[4 + v])) << "row 1 has the bad target";
    }
    std::vector<double> rows = cross_entropy_rows(logits, targets).to_f64_vector();
    EXPECT_FALSE(std::isnan(rows[0]));
    EXPECT_TRUE(std::isnan(rows[1]));
  }
  // the CPU keeps its error
  EXPECT_THROW(softmax_cross_entropy(logits.to(cpu()), Tensor::from_i32({0, 4, 1}, {3})), Error);
}

TEST(CudaSoftmaxXent, InputsOnTwoDevicesAreAnError) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor logits = random_f32({3, 4}, 90).to(cuda());
  EXPECT_THROW(softmax_cross_entropy(logits, Tensor::from_i32({0, 1, 2}, {3})), Error);
}
