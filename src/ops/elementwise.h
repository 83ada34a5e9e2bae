// elementwise.h — the glue primitives: add, mul, scale, sum, mean (notes/design.md "The core").
//
// These are the few small ops the model uses between its coarse layer ops (the residual add
// `h = x + Attn(LN1(x))` of SPEC §2, summing loss terms in SPEC §3 step 10). No broadcasting:
// operands of add/mul have the same shape, which keeps every backward a one-liner.
//
// Each op: forward and backward as a pair of plain functions on raw pointers (templated on float
// and double), wrapped by a Tensor function that records the backward on the tape. Every raw
// function has a CUDA twin with the same name plus `_cuda` and the same arguments
// (cuda/ops/elementwise.cu); the wrapper picks one by the inputs' device (core/dispatch.h).
// add's kernels are the core's (core/tensor_math.h: the autograd engine adds gradients with them).
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// out = a + b                 a, b: any shape (same)     backward: da = dout, db = dout
Tensor add(const Tensor& a, const Tensor& b);
// out = a * b (elementwise)   a, b: any shape (same)     backward: da = dout*b, db = dout*a
Tensor mul(const Tensor& a, const Tensor& b);
// out = s * x                 s: a constant               backward: dx = s*dout
Tensor scale(const Tensor& x, double s);
// out = sum of all elements   -> shape ()                 backward: dx = dout (every element)
Tensor sum(const Tensor& x);
// out = mean of all elements  -> shape ()                 backward: dx = dout / numel
Tensor mean(const Tensor& x);

// No-grad helpers used by the engine and the optimizer (never recorded on the tape).
void add_inplace(Tensor& dst, const Tensor& src);  // dst += src, both contiguous, same shape
void scale_inplace(Tensor& dst, double s);         // dst *= s

// ---- raw kernels (contiguous buffers of n elements; T = float or double on the CPU, float on
// CUDA). Backward kernels overwrite their outputs; a null output means "not needed".
template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n);
template <typename T>
void mul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n);
template <typename T>
void scale_forward(T* out, const T* x, T s, int64_t n);
// out[0] = sum of x, accumulated in double in index order (CPU) or a fixed tree (CUDA)
template <typename T>
void sum_forward(T* out, const T* x, int64_t n);
// dx[i] = dout[0] for every i (the gradient of a sum reaches every element)
template <typename T>
void sum_backward(T* dx, const T* dout, int64_t n);

MOE_CUDA_BEGIN
template <typename T>
void mul_forward_cuda(T* out, const T* a, const T* b, int64_t n) MOE_CUDA_STUB
template <typename T>
void mul_backward_cuda(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n)
    MOE_CUDA_STUB
template <typename T>
void scale_forward_cuda(T* out, const T* x, T s, int64_t n) MOE_CUDA_STUB
template <typename T>
void sum_forward_cuda(T* out, const T* x, int64_t n) MOE_CUDA_STUB
template <typename T>
void sum_backward_cuda(T* dx, const T* dout, int64_t n) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
