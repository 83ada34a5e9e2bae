// tensor_math.h — the few no-grad operations the core itself needs, on any device: filling,
// packing a strided view, and adding one tensor into another (gradient accumulation).
//
// Why they live in core and not in ops/: tensor.cpp needs fill and packing for zeros(), full()
// and contiguous(), and the autograd engine needs "dst += src" to accumulate gradients. If those
// came from ops/, the lowest layer would include a higher one. The ops built on top (ops/
// elementwise's add, for one) call these same functions, so there is one add kernel, not two.
//
// Each is a CPU loop and a CUDA launcher with the same argument order (core/dispatch.h); the
// Tensor-level functions pick one by the tensor's device.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// t (contiguous, any dtype, any device) = value in every element.
void fill_tensor(Tensor& t, double value);
// dst (contiguous) = src (any view, same shape, dtype and device), element by element.
void copy_strided(Tensor& dst, const Tensor& src);
// dst += src (same shape and dtype, dst contiguous, same device), no autograd.
void add_into(Tensor& dst, const Tensor& src);
// a + b as a new tensor on their device, no autograd.
Tensor add_tensors(const Tensor& a, const Tensor& b);

// ---- raw kernels ---------------------------------------------------------------------------------
// A view's layout for packing: up to kMaxDims dims, strides in elements (Tensor's own layout).
constexpr int kMaxDims = 8;
struct StridedLayout {
  int nd = 0;
  int64_t offset = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
};

// out[i] = a[i] + b[i], 0 <= i < n.  T = float or double (CPU), float (CUDA).
template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t n);

MOE_CUDA_BEGIN
template <typename T>
void add_forward_cuda(T* out, const T* a, const T* b, int64_t n) MOE_CUDA_STUB
// out[i] = the element pattern `bits` (the value's bytes, 4 or 8 of them), 0 <= i < n.
void fill_bits_cuda(void* out, uint64_t bits, int elem_bytes, int64_t n) MOE_CUDA_STUB
// out (packed, n elements) = the view `src` of `base` (4- or 8-byte elements).
void strided_copy_cuda(void* out, const void* base, StridedLayout src, int elem_bytes, int64_t n)
    MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
