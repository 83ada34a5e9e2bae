// tolerances.h — the one tolerance policy for comparing a CUDA kernel with its CPU op, the
// per-op values, and the comparison routine every kernel test uses (DESIGN.md "Tests").
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
// add: both sides round the same exact sum of the same two floats once (IEEE round-to-nearest),
// and nothing is built with fast-math, so the results are bitwise equal.
inline constexpr Tolerance add{0.0, 0.0};
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
