// Tests for ops/gemm: every transpose combination, alpha/beta, padded leading dimensions and
// shapes that straddle the block sizes (K panels of 256, row blocks of 64, column blocks of 256)
// against a naive triple loop in double; BLAS beta == 0 semantics; bitwise determinism across
// thread counts; the batched variant; argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "ops/gemm.h"

using namespace moe;

namespace {

std::vector<double> random_vec(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = 2.0 * rng.uniform() - 1.0;
  return v;
}

// C = alpha * op(A) @ op(B) + beta * C with plain loops, in double, written from the definition.
void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                const std::vector<double>& A, int64_t lda, const std::vector<double>& B,
                int64_t ldb, double beta, std::vector<double>& C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += a * b;
      }
      C[i * ldc + j] = alpha * acc + (beta == 0.0 ? 0.0 : beta * C[i * ldc + j]);
    }
  }
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

struct Shape3 {
  int64_t M, N, K;
};

// Run gemm<T> on one case with padded leading dims and compare with the naive result.
template <typename T>
void check_case(bool ta, bool tb, Shape3 s, double alpha, double beta, double tol) {
  const int64_t pad = 3;
  const int64_t lda = (ta ? s.M : s.K) + pad, ldb = (tb ? s.K : s.N) + pad, ldc = s.N + pad;
  const int64_t a_rows = ta ? s.K : s.M, b_rows = tb ? s.N : s.K;
  std::vector<double> A = random_vec(a_rows * lda, 1), B = random_vec(b_rows * ldb, 2);
  std::vector<double> C = random_vec(s.M * ldc, 3), ref = C;
  naive_gemm(ta, tb, s.M, s.N, s.K, alpha, A, lda, B, ldb, beta, ref, ldc);
  std::vector<T> At = cast<T>(A), Bt = cast<T>(B), Ct = cast<T>(C);
  gemm<T>(ta, tb, s.M, s.N, s.K, static_cast<T>(alpha), At.data(), lda, Bt.data(), ldb,
          static_cast<T>(beta), Ct.data(), ldc);
  int bad = 0;
  for (int64_t i = 0; i < s.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const double got = Ct[i * ldc + j];
      // padding columns of C (j >= N) must be untouched
      const double want =
          j < s.N ? ref[i * ldc + j] : static_cast<double>(static_cast<T>(C[i * ldc + j]));
      const double scale = j < s.N ? std::sqrt(static_cast<double>(s.K)) + std::fabs(want) : 0.0;
      if (std::fabs(got - want) > tol * scale && ++bad <= 5)
        ADD_FAILURE() << "ta=" << ta << " tb=" << tb << " M=" << s.M << " N=" << s.N
                      << " K=" << s.K << " C[" << i << "][" << j << "] = " << got << ", want "
                      << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

const Shape3 kShapes[] = {{1, 1, 1},   {3, 5, 7},    {7, 13, 5},  {13, 1, 3},   {1, 17, 9},
                          {5, 3, 300}, {70, 19, 11}, {9, 300, 4}, {66, 260, 513}};

}  // namespace

TEST(Gemm, MatchesNaiveAllTransposesF64) {
  for (const Shape3& s : kShapes)
    for (int t = 0; t < 4; ++t) check_case<double>(t & 1, t & 2, s, 1.0, 0.0, 1e-13);
}

TEST(Gemm, MatchesNaiveAllTransposesF32) {
  for (const Shape3& s : kShapes)
    for (int t = 0; t < 4; ++t) check_case<float>(t & 1, t & 2, s, 1.0, 0.0, 2e-6);
}

TEST(Gemm, AlphaBeta) {
  for (const Shape3& s : {Shape3{3, 5, 7}, Shape3{70, 19, 300}}) {
    for (int t = 0; t < 4; ++t) {
      check_case<double>(t & 1, t & 2, s, 0.5, 2.0, 1e-13);
      check_case<double>(t & 1, t & 2, s, -1.5, 1.0, 1e-13);
      check_case<float>(t & 1, t & 2, s, 0.25, -1.0, 2e-6);
    }
  }
}

TEST(Gemm, BetaZeroNeverReadsC) {
  // BLAS contract: with beta == 0, C is write-only, so NaN garbage in C must not leak through.
  const int64_t M = 9, N = 21, K = 300;
  std::vector<double> A = random_vec(M * K, 4), B = random_vec(K * N, 5), ref(M * N, 0.0);
  naive_gemm(false, false, M, N, K, 1.0, A, K, B, N, 0.0, ref, N);
  std::vector<double> C(M * N, std::numeric_limits<double>::quiet_NaN());
  gemm<double>(false, false, M, N, K, 1.0, A.data(), K, B.data(), N, 0.0, C.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(C[i], ref[i], 1e-12) << i;
}

TEST(Gemm, EmptyReductionScalesC) {
  // K == 0 (or alpha == 0): the product is zero, C = beta * C; beta == 0 gives exact zeros.
  std::vector<double> C = {1, 2, 3, 4, 5, 6};
  gemm<double>(false, false, 2, 3, 0, 1.0, nullptr, 0, nullptr, 3, 2.0, C.data(), 3);
  EXPECT_EQ(C, (std::vector<double>{2, 4, 6, 8, 10, 12}));
  std::vector<double> A(6, 1.0), B(9, 1.0);
  gemm<double>(false, false, 2, 3, 3, 0.0, A.data(), 3, B.data(), 3, 0.0, C.data(), 3);
  EXPECT_EQ(C, (std::vector<double>(6, 0.0)));
  gemm<double>(false, false, 0, 3, 3, 1.0, A.data(), 3, B.data(), 3, 0.0, C.data(), 3);  // no-op
}

TEST(Gemm, BitwiseIdenticalForAnyThreadCount) {
  // Each thread owns whole blocks of C and the K reduction order is fixed, so the f32 result
  // must not change by a single bit between 1, 2 and 3 threads (3 gives a different blocking).
  const int64_t M = 301, N = 203, K = 700;
  std::vector<float> A = cast<float>(random_vec(M * K, 6)), B = cast<float>(random_vec(K * N, 7));
  const int saved = num_threads();
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      std::vector<float> C(M * N, 0.5f);
      gemm<float>(ta, tb, M, N, K, 1.0f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.5f,
                  C.data(), N);
      results.push_back(C);
    }
  }
  set_num_threads(saved);
  for (size_t r = 4; r < results.size(); ++r)
    EXPECT_EQ(0, std::memcmp(results[r].data(), results[r % 4].data(), M * N * sizeof(float)))
        << "result " << r << " differs from the 1-thread result";
}

TEST(Gemm, BatchedMatchesLoopOfNaive) {
  const int64_t batch = 5, M = 7, N = 13, K = 9;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    const int64_t sA = M * K + 2, sB = K * N + 1, sC = M * N + 3;  // padded strides
    std::vector<double> A = random_vec(batch * sA, 8), B = random_vec(batch * sB, 9);
    std::vector<double> C = random_vec(batch * sC, 10), ref = C;
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<double> Ab(A.begin() + b * sA, A.begin() + (b + 1) * sA);
      std::vector<double> Bb(B.begin() + b * sB, B.begin() + (b + 1) * sB);
      std::vector<double> Cb(ref.begin() + b * sC, ref.begin() + (b + 1) * sC);
      naive_gemm(ta, tb, M, N, K, 1.5, Ab, lda, Bb, ldb, 0.5, Cb, N);
      std::copy(Cb.begin(), Cb.end(), ref.begin() + b * sC);
    }
    gemm_batched<double>(ta, tb, M, N, K, 1.5, A.data(), lda, B.data(), ldb, 0.5, C.data(), N,
                         batch, sA, sB, sC);
    for (size_t i = 0; i < C.size(); ++i) ASSERT_NEAR(C[i], ref[i], 1e-12) << t << " " << i;
  }
}

TEST(Gemm, F32AgreesWithF64) {
  // The same product (x @ w^T, the linear layer's layout) in both precisions.
  const int64_t M = 40, N = 33, K = 520;
  std::vector<double> A = random_vec(M * K, 11), B = random_vec(N * K, 12), C64(M * N);
  std::vector<float> A32 = cast<float>(A), B32 = cast<float>(B), C32(M * N);
  gemm<double>(false, true, M, N, K, 1.0, A.data(), K, B.data(), K, 0.0, C64.data(), N);
  gemm<float>(false, true, M, N, K, 1.0f, A32.data(), K, B32.data(), K, 0.0f, C32.data(), N);
  for (int64_t i = 0; i < M * N; ++i) EXPECT_NEAR(C32[i], C64[i], 1e-4) << i;
}

TEST(Gemm, BadArgumentsAreErrors) {
  std::vector<float> A(64), B(64), C(64);
  // lda smaller than the row length of A (K = 4 columns when not transposed)
  EXPECT_THROW(gemm<float>(false, false, 2, 2, 4, 1.f, A.data(), 3, B.data(), 2, 0.f, C.data(), 2),
               Error);
  EXPECT_THROW(gemm<float>(false, true, 2, 2, 4, 1.f, A.data(), 4, B.data(), 3, 0.f, C.data(), 2),
               Error);
  EXPECT_THROW(gemm<float>(false, false, 2, 5, 1, 1.f, A.data(), 1, B.data(), 5, 0.f, C.data(), 4),
               Error);
  EXPECT_THROW(gemm<float>(false, false, -1, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f, C.data(), 2),
               Error);
  try {
    gemm<float>(true, false, 2, 2, 4, 1.f, A.data(), 1, B.data(), 2, 0.f, C.data(), 2);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lda=1"), std::string::npos) << e.what();
  }
}
