// cuda_common.h — the CUDA half of the project's error checks (src/core/check.h has the rest).
//
// Every CUDA runtime call, every cuBLAS call and every kernel launch is checked, in release builds
// too, and a failure becomes a moe::Error whose message names the failing expression, the source
// location and the library's own words for the error. Why exceptions and not exit(): tests must
// be able to see a failure (EXPECT_THROW), and the programs' main() turns moe::Error into a
// message and exit code 1 anyway.
//
//   CUDA_CHECK(expr)          expr returns cudaError_t
//   CUBLAS_CHECK(expr)        expr returns cublasStatus_t
//   CUDA_LAUNCH_CHECK()       right after every kernel<<<...>>>: catches a bad launch
//                             configuration now (execution errors surface at the next
//                             synchronising call, see the hint in the message)
//   CUDA_IGNORE_ERROR(expr)   the one way to ignore an error on purpose; it also clears the
//                             runtime's "last error", so a later CUDA_LAUNCH_CHECK does not report
//                             a stale failure that was already handled (e.g. a cudaMalloc that ran
//                             out of memory before we freed the cache and retried).
// All are `do { } while (0)` macros calling a [[noreturn]] function, so they never steal an `else`.
#pragma once
#include <cstdint>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/check.h"

namespace moe {

// Errors that are really reported late: a kernel that faulted is only noticed by the next call
// that synchronises, which then looks like the culprit. The hint says how to find the real one.
inline bool cuda_error_is_asynchronous(cudaError_t err) {
  return err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure ||
         err == cudaErrorMisalignedAddress || err == cudaErrorIllegalInstruction ||
         err == cudaErrorAssert || err == cudaErrorLaunchTimeout;
}

[[noreturn]] inline void fail_cuda(cudaError_t err, const char* expr, const char* func,
                                   const char* file, int line) {
  std::string msg = str_cat("CUDA error: ", expr, " failed in ", func, " at ", file, ":", line,
                            ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
  if (cuda_error_is_asynchronous(err)) {
    msg += ". HINT: a kernel launched earlier may have caused this; rerun with "
           "CUDA_LAUNCH_BLOCKING=1 (or under compute-sanitizer) to find it";
  }
  throw Error(msg);
}

[[noreturn]] inline void fail_cublas(cublasStatus_t status, const char* expr, const char* func,
                                     const char* file, int line) {
  throw Error(str_cat("cuBLAS error: ", expr, " failed in ", func, " at ", file, ":", line, ": ",
                      cublasGetStatusName(status), ": ", cublasGetStatusString(status)));
}

// Threads per block of the simple kernels: a multiple of the 32-thread warp, small enough that
// several blocks share a multiprocessor.
constexpr int kBlock = 256;

#ifdef __CUDACC__
// The grid-stride loop: thread t of the grid handles elements t, t + stride, t + 2*stride, ...,
// where stride is the number of threads in the grid. Correct for any n and any grid size.
__device__ __forceinline__ int64_t grid_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}
#endif

// Blocks for a grid-stride loop over n elements: enough to fill the GPU many times over, capped so
// that huge n reuses threads (each loops) instead of launching millions of tiny blocks.
inline int grid_size_for(int64_t n, int block, int64_t max_blocks = 1 << 16) {
  const int64_t blocks = (n + block - 1) / block;
  return static_cast<int>(blocks < max_blocks ? blocks : max_blocks);
}

}  // namespace moe

#define CUDA_CHECK(expr)                                                          \
  do {                                                                            \
    const cudaError_t moe_cuda_err_ = (expr);                                     \
    if (moe_cuda_err_ != cudaSuccess)                                             \
      ::moe::fail_cuda(moe_cuda_err_, #expr, __func__, __FILE__, __LINE__);       \
  } while (0)

#define CUBLAS_CHECK(expr)                                                        \
  do {                                                                            \
    const cublasStatus_t moe_cublas_status_ = (expr);                             \
    if (moe_cublas_status_ != CUBLAS_STATUS_SUCCESS)                              \
      ::moe::fail_cublas(moe_cublas_status_, #expr, __func__, __FILE__, __LINE__);\
  } while (0)

// cudaGetLastError both reads and clears the launch error of the last kernel on this thread.
#define CUDA_LAUNCH_CHECK()                                                       \
  do {                                                                            \
    const cudaError_t moe_cuda_err_ = cudaGetLastError();                         \
    if (moe_cuda_err_ != cudaSuccess)                                             \
      ::moe::fail_cuda(moe_cuda_err_, "kernel launch", __func__, __FILE__, __LINE__); \
  } while (0)

#define CUDA_IGNORE_ERROR(expr)                                                   \
  do {                                                                            \
    const cudaError_t moe_cuda_err_ = (expr);                                     \
    if (moe_cuda_err_ != cudaSuccess) {                                           \
      const cudaError_t moe_cuda_cleared_ = cudaGetLastError();                   \
      (void)moe_cuda_cleared_;                                                    \
    }                                                                             \
  } while (0)
