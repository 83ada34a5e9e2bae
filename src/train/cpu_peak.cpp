// cpu_peak.cpp — measuring the CPU peak for MFU with the project's own GEMM (cpu_peak.h;
// notes/spec.md §5 for MFU, notes/training.md "MFU" for why the CPU peak is measured).
#include "train/cpu_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"
#include "ops/gemm.h"

namespace moe {

CpuPeak measure_cpu_gemm_peak(int64_t n, int reps, double budget_s) {
  CHECK(n >= 16, "the GEMM peak needs a product of at least 16^3, got n = ", n);
  CHECK(reps >= 1, "the GEMM peak needs at least one timed repetition, got ", reps);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const size_t nn = static_cast<size_t>(n * n);
  // Small exact binary fractions: no denormals (which would slow the product and understate the
  // peak) and no overflow, whatever n is.
  std::vector<float> a(nn), b(nn), c(nn);
  for (size_t i = 0; i < nn; ++i) {
    a[i] = static_cast<float>(static_cast<int>(i % 13) - 6) / 16.0f;
    b[i] = static_cast<float>(static_cast<int>(i % 7) - 3) / 8.0f;
  }
  auto product = [&] {
    gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  product();  // untimed: wakes the pool's threads and faults the pages in
  double best = INFINITY;
  CpuPeak p;
  p.n = n;
  p.threads = num_threads();
  while (p.reps < reps) {
    const auto s = clock::now();
    product();
    const auto e = clock::now();
    best = std::min(best, std::chrono::duration<double>(e - s).count());
    ++p.reps;
    if (std::chrono::duration<double>(e - t0).count() > budget_s) break;
  }
  // A product faster than the clock can see would give an infinite rate; a nanosecond is the
  // floor (never reached at n >= 16 on a real machine, but the rate must stay finite).
  best = std::max(best, 1e-9);
  p.flops_per_s = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) /
                  best;
  p.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return p;
}

CpuPeak cpu_gemm_peak() {
  // One measurement per thread count: a test or program may change the count between runs, and
  // the peak of 1 thread is not the peak of 8.
  static std::mutex mu;
  static std::vector<std::pair<int, CpuPeak>> done;
  std::lock_guard<std::mutex> lock(mu);
  const int threads = num_threads();
  for (const auto& [t, p] : done)
    if (t == threads) return p;
  done.emplace_back(threads, measure_cpu_gemm_peak());
  return done.back().second;
}

std::string cpu_peak_label(const CpuPeak& p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "measured-gemm %.1f GFLOP/s", p.flops_per_s / 1e9);
  return buf;
}

std::string cpu_peak_description(const CpuPeak& p) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "%.1f GFLOP/s (our f32 GEMM on a %lld^3 product, best of %d, %d thread%s, "
                "%.2f s), not a spec-sheet figure",
                p.flops_per_s / 1e9, static_cast<long long>(p.n), p.reps, p.threads,
                p.threads == 1 ? "" : "s", p.seconds);
  return std::string("MFU is against this CPU's measured GEMM peak: ") + buf;
}

}  // namespace moe
