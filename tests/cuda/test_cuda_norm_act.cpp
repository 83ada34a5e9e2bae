// CUDA twins of layernorm, GELU and dropout (cuda/ops/layernorm.cu, cuda/ops/activation.cu)
// against the CPU ops: forward and every input gradient, at sizes that are 1, odd, not multiples
// of the block, and larger than one block (notes/cuda.md §5). Dropout is exact: both devices
// draw the same Philox mask.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "core/philox.h"
#include "cuda_check.h"
#include "ops/activation.h"
#include "ops/layernorm.h"

using namespace moe;
using namespace moe::testing;

namespace {

// gtest runs the test files in link order, so these tests may come before any that calls
// devices_init(): plug the CUDA allocator in first (idempotent; a no-op in a CPU build).
struct CudaInit : ::testing::Environment {
  void SetUp() override { devices_init(); }
};
const ::testing::Environment* const kCudaInit = ::testing::AddGlobalTestEnvironment(new CudaInit);

const int64_t kSizes[] = {1, 3, 7, 13, 65, 1031, 70001};

// (R, C) pairs: single rows and columns, odd sizes, C > one block of threads, R > one piece of
// the dgamma/dbeta column sums (64 rows).
const std::pair<int64_t, int64_t> kRowShapes[] = {{1, 1},  {3, 7},   {7, 13},   {13, 65},
                                                  {65, 3}, {5, 1031}, {1031, 13}, {600, 770}};

std::string rc(int64_t R, int64_t C) {
  return " (" + std::to_string(R) + ", " + std::to_string(C) + ")";
}

Tensor ln_of(const std::vector<Tensor>& in) { return layernorm(in[0], in[1], in[2], 1e-5); }

}  // namespace

TEST(CudaLayerNorm, ForwardAndDxMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1;
  for (auto [R, C] : kRowShapes) {
    // x needs a gradient, gamma and beta do not: dx alone (the dgamma/dbeta pass is skipped)
    Tensor x = leaf_f32({R, C}, seed++, -2.0, 3.0);
    Tensor g = random_f32({C}, seed++, 0.5, 1.5), b = random_f32({C}, seed++);
    expect_cuda_matches_cpu(ln_of, {x, g, b}, tol::layernorm, tol::layernorm, "layernorm dx" +
                            rc(R, C));
  }
}

TEST(CudaLayerNorm, GammaBetaGradientsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 100;
  for (auto [R, C] : kRowShapes) {
    // only gamma and beta need gradients: column sums over the rows (tol::column_sum)
    Tensor x = random_f32({R, C}, seed++, -2.0, 3.0);
    Tensor g = leaf_f32({C}, seed++, 0.5, 1.5), b = leaf_f32({C}, seed++);
    expect_cuda_matches_cpu(ln_of, {x, g, b}, tol::layernorm, tol::column_sum,
                            "layernorm dgamma, dbeta" + rc(R, C));
  }
}

TEST(CudaLayerNorm, ThreeDimInputLargeMeanAndOnlyBeta) {
  MOE_SKIP_WITHOUT_CUDA();
  // (B, T, C) input far from zero mean: the two-pass variance matters
  Tensor x = leaf_f32({3, 5, 67}, 7, 100.0, 101.0);
  Tensor g = random_f32({67}, 8, 0.5, 1.5), b = random_f32({67}, 9);
  expect_cuda_matches_cpu(ln_of, {x, g, b}, tol::layernorm, tol::layernorm, "layernorm 3-d");
  Tensor b2 = leaf_f32({67}, 10);  // dbeta without dgamma
  expect_cuda_matches_cpu(ln_of, {random_f32({3, 5, 67}, 11), g, b2}, tol::layernorm,
                          tol::column_sum, "layernorm dbeta only");
}

TEST(CudaLayerNorm, BackwardIsBitwiseRepeatable) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor x0 = random_f32({700, 96}, 12), g0 = random_f32({96}, 13), b0 = random_f32({96}, 14);
  Tensor seed = random_f32({700, 96}, 15).to(cuda());
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    Tensor x = x0.to(cuda()), g = g0.to(cuda()), b = b0.to(cuda());
    for (Tensor* t : {&x, &g, &b}) t->set_requires_grad(true);
    backward(layernorm(x, g, b), seed);
    std::vector<float> all = x.grad().to_f32_vector();
    for (float v : g.grad().to_f32_vector()) all.push_back(v);
    for (float v : b.grad().to_f32_vector()) all.push_back(v);
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(CudaGelu, ForwardAndGradientMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 20;
  for (int64_t n : kSizes) {
    Tensor x = leaf_f32({n}, seed++, -3.0, 3.0);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x},
                            tol::gelu, tol::gelu, "gelu n=" + std::to_string(n));
  }
  Tensor x = leaf_f32({4, 13, 5}, seed++, -3.0, 3.0);  // any shape
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x},
                          tol::gelu, tol::gelu, "gelu (4, 13, 5)");
}

namespace {

// dropout with a fresh generator per call, so the CPU and the GPU runs draw the same range.
OpFn dropout_with(double p, uint64_t rng_seed) {
  return [p, rng_seed](const std::vector<Tensor>& in) {
    CounterRng rng(rng_seed, kTrainDropoutStream);
    rng.take(8);  // start past index 0: a range that does not begin at the stream's start
    return dropout(in[0], p, true, rng);
  };
}

}  // namespace

TEST(CudaDropout, SameMaskAsCpuExactly) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 40;
  for (double p : {0.1, 0.5}) {
    for (int64_t n : kSizes) {
      Tensor x = leaf_f32({n}, seed++);
      expect_cuda_matches_cpu(dropout_with(p, seed), {x}, tol::exact, tol::exact,
                              "dropout p=" + std::to_string(p) + " n=" + std::to_string(n));
    }
  }
}

TEST(CudaDropout, AllDroppedAndNoneDropped) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor x = leaf_f32({5, 1031}, 50, 0.5, 1.0);  // no zeros in x
  // p < 1 in double but 1.0f in float: no 24-bit uniform reaches it, every element is dropped
  const double all = 0.99999999;
  expect_cuda_matches_cpu(dropout_with(all, 51), {x}, tol::exact, tol::exact, "all dropped");
  CounterRng r1(51, kTrainDropoutStream);
  for (double v : dropout(x.to(cuda()), all, true, r1).to_f64_vector()) ASSERT_EQ(v, 0.0);
  // p so small that only a uniform of exactly 0 drops; the scale 1/(1-p) rounds to 1.0f
  const double none = 1e-9;
  expect_cuda_matches_cpu(dropout_with(none, 52), {x}, tol::exact, tol::exact, "none dropped");
  CounterRng r2(52, kTrainDropoutStream);
  EXPECT_EQ(dropout(x.to(cuda()), none, true, r2).to_f64_vector(), x.to_f64_vector());
}
