// gemm.cu — the CUDA twins of ops/gemm.h, on cuBLAS (notes/design.md: "GEMMs may use cuBLAS").
//
// The one trick: our matrices are row-major, cuBLAS's are column-major. A row-major (M, N)
// matrix with row stride ldc is, byte for byte, the column-major (N, M) matrix with leading
// dimension ldc — its transpose. So C = op(A) op(B) in row-major is C^T = op(B)^T op(A)^T in
// column-major, and we call cuBLAS with the operands swapped and M and N swapped; the transpose
// flags carry over unchanged (a row-major B read as column-major is already B^T).
//
// Precision: f32 inputs and f32 accumulation (CUBLAS_COMPUTE_32F), or TF32 tensor cores
// (CUBLAS_COMPUTE_32F_FAST_TF32) when cuda_allow_tf32() is on. cuBLAS's default algorithms are
// deterministic for a given GPU and library version (no atomics), which the bitwise-repeatable
// runs of notes/cuda.md rely on.
#include "core/device.h"
#include "core/tensor.h"
#include "cublas_handle.h"
#include "ops/gemm.h"

namespace moe {

static cublasComputeType_t compute_type() {
  return cuda_allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

static cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

template <typename T>
void gemm_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  static_assert(sizeof(T) == 4, "gemm_cuda is instantiated for float only");
  if (M == 0 || N == 0) return;
  // Row-major C (M, N) = op(A) op(B)  <=>  column-major C^T (N, M) = op(B)^T op(A)^T.
  CUBLAS_CHECK(cublasGemmEx(cublas_handle(), op(trans_b), op(trans_a), static_cast<int>(N),
                            static_cast<int>(M), static_cast<int>(K), &alpha, B, CUDA_R_32F,
                            static_cast<int>(ldb), A, CUDA_R_32F, static_cast<int>(lda), &beta, C,
                            CUDA_R_32F, static_cast<int>(ldc), compute_type(),
                            CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void gemm_batched_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                       const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C,
                       int64_t ldc, int64_t batch, int64_t strideA, int64_t strideB,
                       int64_t strideC) {
  static_assert(sizeof(T) == 4, "gemm_batched_cuda is instantiated for float only");
  if (M == 0 || N == 0 || batch == 0) return;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      cublas_handle(), op(trans_b), op(trans_a), static_cast<int>(N), static_cast<int>(M),
      static_cast<int>(K), &alpha, B, CUDA_R_32F, static_cast<int>(ldb), strideB, A, CUDA_R_32F,
      static_cast<int>(lda), strideA, &beta, C, CUDA_R_32F, static_cast<int>(ldc), strideC,
      static_cast<int>(batch), compute_type(), CUBLAS_GEMM_DEFAULT));
}

namespace {
// ptrs[0 .. n) = A, [n .. 2n) = B, [2n .. 3n) = C of the n = B1*B2 products, i = i1*B2 + i2.
__global__ void batch_pointers_kernel(const float** ptrs, const float* A, const float* B,
                                      const float* C, int64_t sA1, int64_t sA2, int64_t sB1,
                                      int64_t sB2, int64_t sC1, int64_t sC2, int64_t B1,
                                      int64_t B2) {
  const int64_t n = B1 * B2;
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t i1 = i / B2, i2 = i % B2;
    ptrs[i] = A + i1 * sA1 + i2 * sA2;
    ptrs[n + i] = B + i1 * sB1 + i2 * sB2;
    ptrs[2 * n + i] = C + i1 * sC1 + i2 * sC2;
  }
}
}  // namespace

template <typename T>
void gemm_batched2_cuda(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t lda, int64_t sA1, int64_t sA2, const T* B,
                        int64_t ldb, int64_t sB1, int64_t sB2, T beta, T* C, int64_t ldc,
                        int64_t sC1, int64_t sC2, int64_t B1, int64_t B2) {
  static_assert(sizeof(T) == 4, "gemm_batched2_cuda is instantiated for float only");
  const int64_t n = B1 * B2;
  if (M == 0 || N == 0 || n == 0) return;
  // The pointer array lives in device memory (cuBLAS reads it there); 8-byte slots in an f64
  // tensor from the caching allocator, filled by a kernel: no host-to-device copy.
  Tensor slots = Tensor::empty({3 * n}, DType::F64, cuda());
  const float** ptrs = reinterpret_cast<const float**>(slots.data<double>(true));
  batch_pointers_kernel<<<grid_size_for(n, kBlock), kBlock>>>(ptrs, A, B, C, sA1, sA2, sB1, sB2,
                                                              sC1, sC2, B1, B2);
  CUDA_LAUNCH_CHECK();
  // Swapped like gemm_cuda: column-major C^T = op(B)^T op(A)^T.
  CUBLAS_CHECK(cublasGemmBatchedEx(
      cublas_handle(), op(trans_b), op(trans_a), static_cast<int>(N), static_cast<int>(M),
      static_cast<int>(K), &alpha, reinterpret_cast<const void* const*>(ptrs + n), CUDA_R_32F,
      static_cast<int>(ldb), reinterpret_cast<const void* const*>(ptrs), CUDA_R_32F,
      static_cast<int>(lda), &beta,
      reinterpret_cast<void* const*>(const_cast<float**>(ptrs + 2 * n)), CUDA_R_32F,
      static_cast<int>(ldc), static_cast<int>(n), compute_type(), CUBLAS_GEMM_DEFAULT));
}

template void gemm_batched2_cuda<float>(bool, bool, int64_t, int64_t, int64_t, float,
                                        const float*, int64_t, int64_t, int64_t, const float*,
                                        int64_t, int64_t, int64_t, float, float*, int64_t,
                                        int64_t, int64_t, int64_t, int64_t);
template void gemm_cuda<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                               const float*, int64_t, float, float*, int64_t);
template void gemm_batched_cuda<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*,
                                       int64_t, const float*, int64_t, float, float*, int64_t,
                                       int64_t, int64_t, int64_t, int64_t);

}  // namespace moe
