// bench_gemm.cpp — GFLOP/s of the CPU gemm (ops/gemm.h) on the shapes the model runs.
//
// Not a test: it prints a table, it asserts nothing (notes/design.md: numbers come from benchmarks,
// never from timed unit tests). Each shape runs with 1 thread and with all threads; the figure is
// the best of several repetitions, FLOPs = 2*M*N*K. On a shared machine wall-clock figures drop
// when other work steals the cores, so the 1-thread run also reports GFLOP per CPU-second
// (std::clock), which only counts the time this process actually ran.
//   usage: bench_gemm [reps]        threads = MOE_THREADS or all cores
// Shapes (N = B*T tokens = 2048, C = 128, H = 512 for the tiny preset; "NT" = trans_b etc.):
//   linear forward  y = x @ w^T        (N, C) x (H, C)^T   and (N, H) x (C, H)^T
//   linear backward dx = dy @ w        (N, H) x (H, C)
//                   dw = dy^T @ x      (N, H)^T x (N, C)
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "ops/gemm.h"

namespace {

struct Case {
  const char* what;
  bool ta, tb;
  int64_t M, N, K;
};

struct Timing {
  double wall = 1e30, cpu = 1e30;  // best seconds over the repetitions
};

Timing best_of(const Case& c, const std::vector<float>& A, const std::vector<float>& B,
               std::vector<float>& C, int reps) {
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  Timing best;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    moe::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                     C.data(), c.N);
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best.wall = std::min(best.wall, wall);
    best.cpu = std::min(best.cpu, cpu);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 10;
  const int all = moe::num_threads();
  const Case cases[] = {
      {"(2048x128)@(128x512) NN", false, false, 2048, 512, 128},
      {"(2048x512)@(512x128) NN", false, false, 2048, 128, 512},
      {"fc1 y=x@w^T (2048x128)@(512x128)^T NT", false, true, 2048, 512, 128},
      {"fc2 y=x@w^T (2048x512)@(128x512)^T NT", false, true, 2048, 128, 512},
      {"dw=dy^T@x (2048x512)^T@(2048x128) TN", true, false, 512, 128, 2048},
      {"(512x512)@(512x512) NN", false, false, 512, 512, 512},
  };
  std::printf("%-40s %10s %14s %12s\n", "shape (f32)", "1 thread", "(per CPU-s)", "threads");
  for (const Case& c : cases) {
    moe::Rng rng(1);
    std::vector<float> A(c.M * c.K), B(c.K * c.N), C(c.M * c.N);
    for (float& v : A) v = static_cast<float>(rng.uniform() - 0.5);
    for (float& v : B) v = static_cast<float>(rng.uniform() - 0.5);
    const double gf = 2.0 * c.M * c.N * c.K / 1e9;
    moe::set_num_threads(1);
    const Timing t1 = best_of(c, A, B, C, reps);
    moe::set_num_threads(all);
    const Timing tn = best_of(c, A, B, C, reps);
    std::printf("%-40s %5.1f GF/s %9.1f GF/s %6.1f GF/s (%d)\n", c.what, gf / t1.wall,
                gf / t1.cpu, gf / tn.wall, all);
  }
  return 0;
}
