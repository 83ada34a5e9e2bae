// gemm.cpp — packed, cache-blocked, register-blocked CPU gemm (see gemm.h for the contract).
//
// The loop nest, outermost first (the classic Goto/BLIS structure):
//
//   job = (block of <= MC rows of C, block of <= NC columns of C)   <- split across threads
//     for each K panel pc (<= KC deep, cut at fixed multiples of KC)
//       pack op(B)[pc.., cols] into NR-wide micro-panels            (kc, NR) each, zero-padded
//       pack op(A)[rows, pc..] into MR-tall micro-panels            (kc, MR) each, zero-padded
//       for each NR-wide micro-panel of B                           stays in L1
//         for each MR-tall micro-panel of A                         streams from L2
//           micro_kernel: acc (MR, NR) = sum_p a[p, :]^T b[p, :]    in registers
//           C tile = alpha * acc + (first panel ? beta * C : C)
//
// Packing turns any combination of trans_a / trans_b into the same unit-stride access pattern
// for the micro-kernel, and zero-padding lets edge tiles use the same micro-kernel (only the
// valid part is written back), which is also what keeps results independent of the blocking.
#include "ops/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/check.h"
#include "core/parallel.h"

namespace moe {

namespace {

// Register tile per element type, chosen by the vector width the compiler targets (measured,
// notes/ops-linear-shape-embedding.md). The default x86-64 build (-O2, SSE2: 16 registers of 4
// floats) does best with 4 x 16; builds with AVX (e.g. -march=native: 8 floats per register, FMA) with 8 x 8.
// Doubles (gradient checks, small shapes) use 4 x 8.
template <typename T> struct Tile;
#if defined(__AVX__)
template <> struct Tile<float> { static constexpr int MR = 8, NR = 8; };
#else
template <> struct Tile<float> { static constexpr int MR = 4, NR = 16; };
#endif
template <> struct Tile<double> { static constexpr int MR = 4, NR = 8; };

constexpr int64_t kKC = 256;  // depth of a K panel: a (kc, NR) B micro-panel is 16 KiB (L1)
constexpr int64_t kMC = 64;   // rows of C per job: the packed A block is 64 KiB (L2)
constexpr int64_t kNC = 256;  // columns of C per job: the packed B block is 256 KiB (L2)

// A per-thread, 64-byte-aligned scratch buffer that only grows (no allocation per call).
template <typename T>
T* scratch(int which, size_t n) {
  struct Buf {
    std::unique_ptr<T, decltype(&std::free)> p{nullptr, &std::free};
    size_t cap = 0;
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[which];
  if (b.cap < n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    b.p.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
    CHECK(b.p != nullptr, "gemm: out of memory for a ", bytes, "-byte packing buffer");
    b.cap = n;
  }
  return b.p.get();
}

// ---------------------------------------------------------------------------------------------
// packing

// op(A)[i0 : i0+mc, p0 : p0+kc] -> micro-panels of MR rows, each (kc, MR): dst[p*MR + i].
template <typename T, int MR>
void pack_a(T* __restrict dst, const T* A, int64_t lda, bool trans, int64_t i0, int64_t p0,
            int64_t mc, int64_t kc) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    T* panel = dst + ir * kc;  // (kc, MR)
    if (!trans) {              // op(A)[i][p] = A[i*lda + p]: read rows, write with stride MR
      for (int i = 0; i < rows; ++i) {
        const T* src = A + (i0 + ir + i) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) panel[p * MR + i] = src[p];
      }
    } else if (rows == MR) {   // op(A)[i][p] = A[p*lda + i]: both sides unit stride
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = A + (p0 + p) * lda + i0 + ir;
        for (int i = 0; i < MR; ++i) panel[p * MR + i] = src[i];  // fixed count: inlined copy
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = A + (p0 + p) * lda + i0 + ir;
        for (int i = 0; i < rows; ++i) panel[p * MR + i] = src[i];
      }
    }
    for (int64_t p = 0; p < kc; ++p)
      for (int i = rows; i < MR; ++i) panel[p * MR + i] = T(0);
  }
}

// op(B)[p0 : p0+kc, j0 : j0+nc] -> micro-panels of NR columns, each (kc, NR): dst[p*NR + j].
template <typename T, int NR>
void pack_b(T* __restrict dst, const T* B, int64_t ldb, bool trans, int64_t p0, int64_t j0,
            int64_t kc, int64_t nc) {
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    T* panel = dst + jr * kc;  // (kc, NR)
    if (!trans && cols == NR) {  // op(B)[p][j] = B[p*ldb + j]: both sides unit stride
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = B + (p0 + p) * ldb + j0 + jr;
        for (int j = 0; j < NR; ++j) panel[p * NR + j] = src[j];  // fixed count: inlined copy
      }
    } else if (!trans) {
      for (int64_t p = 0; p < kc; ++p) {
        const T* src = B + (p0 + p) * ldb + j0 + jr;
        for (int j = 0; j < cols; ++j) panel[p * NR + j] = src[j];
      }
    } else {                   // op(B)[p][j] = B[j*ldb + p]: read rows, write with stride NR
      for (int j = 0; j < cols; ++j) {
        const T* src = B + (j0 + jr + j) * ldb + p0;
        for (int64_t p = 0; p < kc; ++p) panel[p * NR + j] = src[p];
      }
    }
    for (int64_t p = 0; p < kc; ++p)
      for (int j = cols; j < NR; ++j) panel[p * NR + j] = T(0);
  }
}

// ---------------------------------------------------------------------------------------------
// micro-kernel and write-back

// acc (MR, NR) = sum_{p < kc} a[p, :]^T b[p, :]   a: (kc, MR) packed, b: (kc, NR) packed.
// The fixed trip counts let the compiler fully unroll i and j (the unroll hints make sure it
// does at -O2) so `acc` lives in registers and each j-row becomes a few vector multiply-adds.
template <typename T, int MR, int NR>
void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict out) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p, a += MR, b += NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
#pragma GCC unroll 32
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = acc[i][j];
}

// C[0:rows, 0:cols] = alpha * acc + (first ? beta * C : C). beta == 0 never reads C.
template <typename T, int NR>
void store_tile(T* C, int64_t ldc, const T* acc, int rows, int cols, T alpha, T beta,
                bool first) {
  for (int i = 0; i < rows; ++i) {
    T* c = C + i * ldc;
    const T* a = acc + i * NR;
    if (!first) {
      for (int j = 0; j < cols; ++j) c[j] += alpha * a[j];
    } else if (beta == T(0)) {
      for (int j = 0; j < cols; ++j) c[j] = alpha * a[j];
    } else {
      for (int j = 0; j < cols; ++j) c[j] = beta * c[j] + alpha * a[j];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// one job: C[i0 : i0+mc, j0 : j0+nc] over the whole K

struct Dims {
  bool trans_a, trans_b;
  int64_t M, N, K, lda, ldb, ldc;
};

template <typename T>
void gemm_block(const Dims& d, T alpha, const T* A, const T* B, T beta, T* C, int64_t i0,
                int64_t mc, int64_t j0, int64_t nc) {
  constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
  const int64_t mc_pad = (mc + MR - 1) / MR * MR, nc_pad = (nc + NR - 1) / NR * NR;
  T* ap = scratch<T>(0, static_cast<size_t>(mc_pad * kKC));  // (mc_pad / MR) x (kc, MR)
  T* bp = scratch<T>(1, static_cast<size_t>(nc_pad * kKC));  // (nc_pad / NR) x (kc, NR)
  alignas(64) T acc[MR * NR];
  for (int64_t pc = 0; pc < d.K; pc += kKC) {
    const int64_t kc = std::min(kKC, d.K - pc);
    pack_b<T, NR>(bp, B, d.ldb, d.trans_b, pc, j0, kc, nc);
    pack_a<T, MR>(ap, A, d.lda, d.trans_a, i0, pc, mc, kc);
    for (int64_t jr = 0; jr < nc; jr += NR) {
      const int cols = static_cast<int>(std::min<int64_t>(NR, nc - jr));
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
        micro_kernel<T, MR, NR>(kc, ap + ir * kc, bp + jr * kc, acc);
        store_tile<T, NR>(C + (i0 + ir) * d.ldc + j0 + jr, d.ldc, acc, rows, cols, alpha, beta,
                          pc == 0);
      }
    }
  }
}

// C = beta * C (the whole product is zero: K == 0 or alpha == 0). beta == 0 writes zeros.
template <typename T>
void scale_c(T* C, int64_t ldc, int64_t M, int64_t N, T beta) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
  }
}

void check_dims(const Dims& d, const char* who) {
  CHECK(d.M >= 0 && d.N >= 0 && d.K >= 0, who, ": negative size M=", d.M, " N=", d.N, " K=", d.K);
  const int64_t a_cols = d.trans_a ? d.M : d.K, b_cols = d.trans_b ? d.K : d.N;
  CHECK(d.lda >= a_cols, who, ": lda=", d.lda, " is smaller than the ",
        a_cols, " columns of A (trans_a=", d.trans_a, ")");
  CHECK(d.ldb >= b_cols, who, ": ldb=", d.ldb, " is smaller than the ",
        b_cols, " columns of B (trans_b=", d.trans_b, ")");
  CHECK(d.ldc >= d.N, who, ": ldc=", d.ldc, " is smaller than N=", d.N);
}

// Job grid. The block sizes only decide which thread computes which tile, never the order of
// the K reduction, so they may depend on the thread count without changing any result: when the
// default blocks give fewer jobs than threads, the column blocks (then row blocks) get narrower.
void choose_blocks(int64_t M, int64_t N, int64_t batch, int64_t& mc, int64_t& nc) {
  mc = kMC;
  nc = kNC;
  const int64_t want = 2 * num_threads();
  auto jobs = [&] { return batch * ((M + mc - 1) / mc) * ((N + nc - 1) / nc); };
  while (jobs() < want && nc > 64 && N > nc / 2) nc /= 2;
  while (jobs() < want && mc > 16 && M > mc / 2) mc /= 2;
}

template <typename T>
void gemm_impl(const Dims& d, T alpha, const T* A, const T* B, T beta, T* C, int64_t batch,
               int64_t sA, int64_t sB, int64_t sC) {
  if (d.M == 0 || d.N == 0 || batch == 0) return;
  if (d.K == 0 || alpha == T(0)) {
    for (int64_t b = 0; b < batch; ++b) scale_c(C + b * sC, d.ldc, d.M, d.N, beta);
    return;
  }
  int64_t mc, nc;
  choose_blocks(d.M, d.N, batch, mc, nc);
  const int64_t jm = (d.M + mc - 1) / mc, jn = (d.N + nc - 1) / nc, jobs = batch * jm * jn;
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t job = lo; job < hi; ++job) {
      const int64_t b = job / (jm * jn), r = job % (jm * jn);
      const int64_t i0 = (r % jm) * mc, j0 = (r / jm) * nc;
      gemm_block<T>(d, alpha, A + b * sA, B + b * sB, beta, C + b * sC, i0,
                    std::min(mc, d.M - i0), j0, std::min(nc, d.N - j0));
    }
  };
  // Below ~1 MFLOP waking the pool costs more than it saves.
  if (batch * d.M * d.N * d.K < (int64_t(1) << 19)) {
    run(0, jobs);
  } else {
    parallel_for(jobs, run);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// public entry points

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const Dims d{trans_a, trans_b, M, N, K, lda, ldb, ldc};
  check_dims(d, "gemm");
  gemm_impl<T>(d, alpha, A, B, beta, C, 1, 0, 0, 0);
}

template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                  int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC) {
  const Dims d{trans_a, trans_b, M, N, K, lda, ldb, ldc};
  check_dims(d, "gemm_batched");
  CHECK(batch >= 0, "gemm_batched: negative batch ", batch);
  CHECK(batch <= 1 || strideC >= M * ldc - (ldc - N), "gemm_batched: strideC=", strideC,
        " makes the C matrices of an (", M, ", ", N, ") product overlap");
  gemm_impl<T>(d, alpha, A, B, beta, C, batch, strideA, strideB, strideC);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);
template void gemm_batched<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                  int64_t, const float*, int64_t, float, float*, int64_t, int64_t,
                                  int64_t, int64_t, int64_t);
template void gemm_batched<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*,
                                   int64_t, const double*, int64_t, double, double*, int64_t,
                                   int64_t, int64_t, int64_t, int64_t);

}  // namespace moe
