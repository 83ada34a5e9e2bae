// elementwise.cu — CUDA twins of the glue ops in src/ops/elementwise.cpp (add's kernel is the
// core's, cuda/core/tensor_math.cu).
//
// Memory-bound one-liners: one thread per element in a grid-stride loop (correct for any n).
// sum is the exception: a reduction, done by the deterministic two-pass sum of
// cuda/core/reduce.cuh so that the same input gives the same bits on every run.
#include "core/reduce.cuh"
#include "cuda_common.h"
#include "ops/elementwise.h"

namespace moe {
namespace {

template <typename T>
__global__ void mul_forward_kernel(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = a[i] * b[i];
}

// forward: out = a * b  =>  da = dout * b, db = dout * a
template <typename T>
__global__ void mul_backward_kernel(T* da, T* db, const T* dout, const T* a, const T* b,
                                    int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    if (da) da[i] = dout[i] * b[i];
    if (db) db[i] = dout[i] * a[i];
  }
}

template <typename T>
__global__ void scale_forward_kernel(T* out, const T* x, T s, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = s * x[i];
}

template <typename T>
__global__ void sum_backward_kernel(T* dx, const T* dout, int64_t n) {
  const T g = dout[0];
  for (int64_t i = grid_index(); i < n; i += grid_stride()) dx[i] = g;
}

}  // namespace

template <typename T>
void mul_forward_cuda(T* out, const T* a, const T* b, int64_t n) {
  if (n == 0) return;
  mul_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, a, b, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void mul_backward_cuda(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  if (n == 0 || (da == nullptr && db == nullptr)) return;
  mul_backward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(da, db, dout, a, b, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void scale_forward_cuda(T* out, const T* x, T s, int64_t n) {
  if (n == 0) return;
  scale_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, x, s, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void sum_forward_cuda(T* out, const T* x, int64_t n) {
  sum_all_cuda<T>(out, x, n);
}

template <typename T>
void sum_backward_cuda(T* dx, const T* dout, int64_t n) {
  if (n == 0) return;
  sum_backward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(dx, dout, n);
  CUDA_LAUNCH_CHECK();
}

template void mul_forward_cuda<float>(float*, const float*, const float*, int64_t);
template void mul_backward_cuda<float>(float*, float*, const float*, const float*, const float*,
                                       int64_t);
template void scale_forward_cuda<float>(float*, const float*, float, int64_t);
template void sum_forward_cuda<float>(float*, const float*, int64_t);
template void sum_backward_cuda<float>(float*, const float*, int64_t);

}  // namespace moe
