// activation.cu — CUDA twins of src/ops/activation.cpp: GELU in the tanh form and inverted
// dropout, forward and backward. SPEC §2 (FFN nonlinearity, dropout 0.1).
//
// Memory-bound elementwise loops, one thread per element in a grid-stride loop (any n). GELU uses
// CUDA's tanhf where the CPU uses tanh_fast: a few ulps apart, hence tol::gelu rather than exact.
// Dropout calls the very function the CPU loop calls (dropout_factor: Philox of the element's
// index, core/philox.h), so the mask is bitwise the CPU's and is recomputed, never stored.
#include "cuda_common.h"
#include "ops/activation.h"

namespace moe {
namespace {

constexpr float kSqrt2OverPi = static_cast<float>(0.7978845608028654);  // sqrt(2/pi)
constexpr float kGeluCubic = static_cast<float>(0.044715);

// y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3), in float whatever T stores.
template <typename T>
__global__ void gelu_forward_kernel(T* out, const T* x, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const float xi = static_cast<float>(x[i]);
    const float u = kSqrt2OverPi * (xi + kGeluCubic * xi * xi * xi);
    out[i] = static_cast<T>(0.5f * xi * (1.0f + tanhf(u)));
  }
}

// forward: y = 0.5 x (1 + tanh(u)),  u = s (x + a x^3)
// backward: dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) s (1 + 3 a x^2);  dx = dout dy/dx
template <typename T>
__global__ void gelu_backward_kernel(T* dx, const T* dout, const T* x, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const float xi = static_cast<float>(x[i]);
    const float th = tanhf(kSqrt2OverPi * (xi + kGeluCubic * xi * xi * xi));
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * xi * xi);  // du/dx
    const float dydx = 0.5f * (1.0f + th) + 0.5f * xi * (1.0f - th * th) * du;
    dx[i] = static_cast<T>(static_cast<float>(dout[i]) * dydx);
  }
}

// y = x * mask (forward) and dx = dout * mask (backward) are the same loop: mask_i from m.
template <typename T>
__global__ void dropout_kernel(T* out, const T* in, DropoutMask m, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride())
    out[i] = static_cast<T>(static_cast<float>(in[i]) * dropout_factor<float>(m, i));
}

}  // namespace

template <typename T>
void gelu_forward_cuda(T* out, const T* x, int64_t n) {
  if (n == 0) return;
  gelu_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, x, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void gelu_backward_cuda(T* dx, const T* dout, const T* x, int64_t n) {
  if (n == 0) return;
  gelu_backward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(dx, dout, x, n);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void dropout_forward_cuda(T* out, const T* x, DropoutMask m, int64_t n) {
  if (n == 0) return;
  dropout_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, x, m, n);
  CUDA_LAUNCH_CHECK();
}

// forward: y = x * mask  =>  dx = dout * mask (the same mask, recomputed from m)
template <typename T>
void dropout_backward_cuda(T* dx, const T* dout, DropoutMask m, int64_t n) {
  if (n == 0) return;
  dropout_kernel<<<grid_size_for(n, kBlock), kBlock>>>(dx, dout, m, n);
  CUDA_LAUNCH_CHECK();
}

template void gelu_forward_cuda<float>(float*, const float*, int64_t);
template void gelu_backward_cuda<float>(float*, const float*, const float*, int64_t);
template void dropout_forward_cuda<float>(float*, const float*, DropoutMask, int64_t);
template void dropout_backward_cuda<float>(float*, const float*, DropoutMask, int64_t);

}  // namespace moe
