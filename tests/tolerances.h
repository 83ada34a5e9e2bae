// tolerances.h — the one tolerance policy for comparing a CUDA kernel with its CPU op, the
// per-op values, and the comparison routine every kernel test uses (notes/design.md "Tests").
//
// Policy: element i passes when  |gpu_i - cpu_i| <= atol + rtol * |cpu_i|
// (or both are NaN, or both are the same infinity). The CPU op is the reference. atol covers
// values near zero, where a relative bound means nothing; rtol covers float rounding, which
// grows with the magnitude. Each op gets its own pair below, with the reason for its size:
// a kernel that needs a looser bound than the one written here is a change to review, not a
// number to bump in a test. On failure the first mismatches are printed with their index and
// the largest difference, so the evidence is in the test log.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"

namespace moe::testing {

struct Tolerance {
  double atol;
  double rtol;
};

namespace tol {
// Exact: both sides do the same single IEEE operation per element (or only move bits), nothing is
// built with fast-math, so the results are bitwise equal: add, mul, scale, dropout (the same
// Philox mask on both devices), embedding (the backward sums each row in token order on both),
// transpose/slice/concat, dispatch, the gather of the fine-tuning head.
inline constexpr Tolerance exact{0.0, 0.0};
inline constexpr Tolerance add = exact;
// sum: both accumulate in double, in different orders, then round to float once: at most one
// float ulp apart.
inline constexpr Tolerance sum{1e-6, 2e-7};
// Matrix products (linear, matmul, attention's four products, the experts, the router's logits):
// f32 dot products of up to a few thousand terms summed in a different order by cuBLAS. Rounding
// grows like sqrt(K) * 6e-8 * |terms| for K terms of size ~1: ~1e-5 for K ~ 3000 in the worst
// cases the tests draw. Tests run with TF32 off (core/device.h); TF32 is checked at model level.
inline constexpr Tolerance gemm{1e-4, 1e-4};
// Row reductions in f32 (layernorm statistics, softmax denominators, dot products inside the
// softmax and layernorm backwards), done by a tree on the GPU and a loop on the CPU, plus
// exp_fast/tanh_fast (a few ulps, ops/activation.h) against CUDA's expf/tanhf.
inline constexpr Tolerance layernorm{1e-5, 1e-4};
inline constexpr Tolerance gelu{1e-6, 1e-5};
inline constexpr Tolerance softmax_xent{1e-5, 1e-5};
inline constexpr Tolerance attention{1e-4, 1e-4};
// Column sums over many rows (bias and layernorm gamma/beta gradients, the aux loss's mean
// probabilities): blocks of 64 rows summed separately, then added, against one running sum.
inline constexpr Tolerance column_sum{1e-4, 1e-4};
// Gate arithmetic: softmax over E with expf vs std::exp, renormalisation by one division.
inline constexpr Tolerance router{1e-5, 1e-5};
inline constexpr Tolerance gate_weights{1e-6, 1e-5};
inline constexpr Tolerance combine{1e-6, 1e-5};
inline constexpr Tolerance load_balance{1e-6, 1e-5};
// AdamW: the same formula in f32 on both sides; sqrt and division are correctly rounded in IEEE
// on both, but the compiler may contract a*b+c into an FMA on the GPU: a few ulps.
inline constexpr Tolerance adamw{1e-7, 1e-6};
// A whole model (tests/train/test_gpu_training.cpp): logits, loss and every parameter gradient of
// a 2-layer model after ~20 ops in sequence, each with its own f32 rounding above, TF32 off.
inline constexpr Tolerance model{1e-5, 1e-3};
// 50 training steps: the two devices' rounding differences feed back through the optimizer;
// after 50 steps of AdamW the CPU and GPU loss curves stay within 1% of each other (a divergence
// of the curves, not rounding, would show as a gap growing far beyond that).
inline constexpr Tolerance train_curve{0.0, 1e-2};
}  // namespace tol

inline bool within_tolerance(double gpu, double cpu, Tolerance t) {
  if (std::isnan(cpu) || std::isnan(gpu)) return std::isnan(cpu) && std::isnan(gpu);
  if (std::isinf(cpu) || std::isinf(gpu)) return gpu == cpu;
  return std::fabs(gpu - cpu) <= t.atol + t.rtol * std::fabs(cpu);
}

// Compares element by element; adds one gtest failure (not one per element) naming `what`.
inline void expect_allclose(const std::vector<double>& gpu, const std::vector<double>& cpu,
                            Tolerance t, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what << ": sizes differ";
  size_t bad = 0, worst = 0;
  double worst_diff = 0.0;
  std::ostringstream first;
  first.precision(9);  // enough digits to tell two floats apart
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (within_tolerance(gpu[i], cpu[i], t)) continue;
    const double diff = std::fabs(gpu[i] - cpu[i]);
    if (bad == 0 || diff > worst_diff) {
      worst = i;
      worst_diff = diff;
    }
    if (++bad <= 5) {
      first << "\n  [" << i << "] gpu " << gpu[i] << " cpu " << cpu[i] << " |diff| " << diff;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << cpu.size()
                     << " elements outside atol " << t.atol << " + rtol " << t.rtol
                     << " * |cpu|; largest |diff| " << worst_diff << " at [" << worst << "]"
                     << "; first ones:" << first.str();
}

}  // namespace moe::testing

// Skips the calling test when no GPU is visible. A macro because GTEST_SKIP() returns from the
// function it is written in, which must be the test body.
#define MOE_SKIP_WITHOUT_CUDA()                                                         \
  do {                                                                                  \
    if (!::moe::cuda_available())                                                       \
      GTEST_SKIP() << "no CUDA device: " << ::moe::devices_describe();                  \
  } while (0)
