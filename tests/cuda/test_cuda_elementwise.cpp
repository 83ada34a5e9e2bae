// CUDA twins of the elementwise glue ops (cuda/ops/elementwise.cu, add's in
// cuda/core/tensor_math.cu) against the CPU ops: forward and every input gradient, at sizes that
// are 1, odd, not multiples of the block, and larger than one block (notes/cuda.md §5).
#include <gtest/gtest.h>

#include "cuda_check.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;

namespace {
const int64_t kSizes[] = {1, 3, 7, 13, 65, 1031, 70001};
}

TEST(CudaElementwiseOps, AddMulScaleSumMeanMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1;
  for (int64_t n : kSizes) {
    const std::string at = " n=" + std::to_string(n);
    Tensor a = leaf_f32({n}, seed++), b = leaf_f32({n}, seed++);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return add(in[0], in[1]); },
                            {a, b}, tol::add, tol::add, "add" + at);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); },
                            {a, b}, tol::exact, tol::exact, "mul" + at);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return scale(in[0], -1.7); },
                            {a}, tol::exact, tol::exact, "scale" + at);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a},
                            tol::sum, tol::exact, "sum" + at);
    expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a},
                            tol::sum, tol::sum, "mean" + at);
  }
}

TEST(CudaElementwiseOps, MixedRequiresGradAndReuse) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor a = leaf_f32({5, 13}, 3), b = random_f32({5, 13}, 4);  // b needs no gradient
  // a used twice: the engine adds both gradients on the GPU as on the CPU.
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return mul(add(in[0], in[1]), in[0]); }, {a, b},
      tol::exact, tol::exact, "mul(add(a, b), a)");
}

TEST(CudaElementwiseOps, SumStaysOnTheDeviceAndIsRepeatable) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor x = random_f32({1 << 20}, 9).to(cuda());
  Tensor s1 = sum(x), s2 = sum(x);
  EXPECT_TRUE(s1.device().is_cuda());
  EXPECT_EQ(s1.item(), s2.item()) << "a fixed-order reduction gives the same bits every time";
}

TEST(CudaElementwiseOps, ScaleInplaceAndFullOnDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor t = Tensor::full({1000}, 2.5, DType::F32, cuda());
  scale_inplace(t, 2.0);
  for (double v : t.to_f64_vector()) ASSERT_EQ(v, 5.0);
  Tensor z = Tensor::zeros({3, 7}, DType::I32, cuda());
  for (int32_t v : z.to_i32_vector()) ASSERT_EQ(v, 0);
}

TEST(CudaElementwiseOps, StridedViewsPackOnTheDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor x = random_f32({4, 5, 6}, 11);
  Tensor g = x.to(cuda());
  Tensor view_cpu = x.transpose_view(0, 2).slice_view(1, 1, 4);
  Tensor view_gpu = g.transpose_view(0, 2).slice_view(1, 1, 4);
  EXPECT_EQ(view_gpu.contiguous().to_f64_vector(), view_cpu.contiguous().to_f64_vector());
}
