// bench_gemm.cpp — GFLOP/s of the CPU gemm (ops/gemm.h) on the shapes the model runs.
//
// Not a test: it prints a table, it asserts nothing (DESIGN.md: numbers come from benchmarks,
// never from timed unit tests). Each shape runs with 1 thread and with all threads; the figure is
// the best of several repetitions (the machine may be shared), FLOPs = 2*M*N*K.
//   usage: bench_gemm [reps]        threads = MOE_THREADS or all cores
// Shapes (N = B*T tokens = 2048, C = 128, H = 512 for the tiny preset; "NT" = trans_b etc.):
//   linear forward  y = x @ w^T        (N, C) x (H, C)^T   and (N, H) x (C, H)^T
//   linear backward dx = dy @ w        (N, H) x (H, C)
//                   dw = dy^T @ x      (N, H)^T x (N, C)
#include <algorithm>
#include <chrono>
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

double best_seconds(const Case& c, const std::vector<float>& A, const std::vector<float>& B,
                    std::vector<float>& C, int reps) {
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    moe::gemm<float>(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f,
                     C.data(), c.N);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 10;
  const int all = moe::num_threads();
  const Case cases[] = {
      {"(2048x128)@(128x512)    NN", false, false, 2048, 512, 128},
      {"(2048x512)@(512x128)    NN", false, false, 2048, 128, 512},
      {"x@w^T fc1 (2048x128)@(512x128)^T NT", false, true, 2048, 512, 128},
      {"x@w^T fc2 (2048x512)@(128x512)^T NT", false, true, 2048, 128, 512},
      {"dw = dy^T@x (2048x512)^T@(2048x128) TN", true, false, 512, 128, 2048},
      {"(512x512)@(512x512)     NN", false, false, 512, 512, 512},
  };
  std::printf("%-42s %12s %12s\n", "shape (f32)", "1 thread", "threads");
  for (const Case& c : cases) {
    moe::Rng rng(1);
    std::vector<float> A(c.M * c.K), B(c.K * c.N), C(c.M * c.N);
    for (float& v : A) v = static_cast<float>(rng.uniform() - 0.5);
    for (float& v : B) v = static_cast<float>(rng.uniform() - 0.5);
    const double flops = 2.0 * c.M * c.N * c.K;
    moe::set_num_threads(1);
    const double s1 = best_seconds(c, A, B, C, reps);
    moe::set_num_threads(all);
    const double sn = best_seconds(c, A, B, C, reps);
    std::printf("%-42s %8.1f GF/s %6.1f GF/s (%d)\n", c.what, flops / s1 / 1e9, flops / sn / 1e9,
                all);
  }
  return 0;
}
