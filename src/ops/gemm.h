// gemm.h — the CPU matrix multiply every dense layer runs on (no autograd; see ops/linear.h).
//
// Implements C = alpha * op(A) @ op(B) + beta * C for row-major matrices, the BLAS "gemm"
// contract: op(X) is X or X^T, M x K times K x N into M x N. It is the workhorse under linear
// (SPEC §2: q,k,v,out projections, FFN, tied logits), the gate logits X @ Wg^T (SPEC §3 step 1)
// and the per-expert FFNs (SPEC §3 step 9, through gemm_batched). On the GPU the same contract is
// met by cuBLAS or the project's tiled kernel (cuda/).
//
// How it is fast in plain C++ (notes/ops-linear-shape-embedding.md has the numbers):
//   * cache blocking: K is cut into panels of 256, op(A) into blocks of up to 64 rows, op(B) into
//     blocks of up to 256 columns; each block is packed into a contiguous, zero-padded buffer;
//   * a register-blocked micro-kernel computes an MR x NR tile of C (4 x 16 floats on SSE2) with
//     the accumulators in a small fixed-size array the compiler keeps in vector registers;
//   * threads (parallel_for) own disjoint blocks of C.
//
// Determinism: the reduction over K runs in the same order for every element whatever the thread
// count or the blocking of M and N (K panels are cut at fixed multiples of 256, every tile goes
// through the same micro-kernel, edge tiles are zero-padded rather than taking another path), so
// 1 and 2 threads give bitwise identical C. tests/ops/test_gemm.cpp checks it.
//
// beta == 0 means C is write-only (it may hold garbage or NaN), as in BLAS.
// What it leaves out: complex types, column-major layout, strided (non-unit) inner dimensions,
// explicit SIMD intrinsics (the compiler vectorises the micro-kernel).
#pragma once
#include <cstdint>

namespace moe {

// C (M, N) with row stride ldc  =  alpha * op(A) @ op(B) + beta * C.
//   op(A) is (M, K): A is (M, K) with row stride lda, or (K, M) when trans_a.
//   op(B) is (K, N): B is (K, N) with row stride ldb, or (N, K) when trans_b.
// T is float or double.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// `batch` independent gemms with the same shapes; matrix b of A starts at A + b * strideA, and so
// on for B and C (strides in elements). Threads share out (batch, block of C) pairs, so many small
// products (attention heads, experts) still use every core.
template <typename T>
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                  int64_t batch, int64_t strideA, int64_t strideB, int64_t strideC);

}  // namespace moe

// ---- CUDA (cuBLAS) twins, same contract and argument order (cuda/ops/gemm.cu) -----------------
// Row-major like the CPU functions; cuBLAS is column-major, so the launcher computes
// C^T = op(B)^T op(A)^T, which is the same memory. f32 math, or TF32 tensor cores when
// cuda_allow_tf32() (core/device.h) is on. Deterministic run to run (cuBLAS's default algorithms
// use no atomics).
#include "core/dispatch.h"
namespace moe {
MOE_CUDA_BEGIN
template <typename T>
void gemm_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) MOE_CUDA_STUB
template <typename T>
void gemm_batched_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                       const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                       int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB,
                       int64_t strideC) MOE_CUDA_STUB
// B1 * B2 gemms whose operands sit at two-level offsets: matrix (i, j) of A starts at
// A + i*sA1 + j*sA2 (likewise B and C). This is how the heads of a (B, T, NH*hs) activation are
// laid out (sequence b at b*T*width, head h at h*hs), so attention multiplies q, k, v where they
// are, without copying them into per-head buffers first. CUDA only: the CPU attention loops over
// (b, h) and calls gemm (ops/attention.cpp). Uses a device array of pointers built by a kernel.
template <typename T>
void gemm_batched2_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t lda, int64_t sA1, int64_t sA2, const T* B,
                        int64_t ldb, int64_t sB1, int64_t sB2, T beta, T* C, int64_t ldc,
                        int64_t sC1, int64_t sC2, int64_t B1, int64_t B2) MOE_CUDA_STUB
MOE_CUDA_END
}  // namespace moe
