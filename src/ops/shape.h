// shape.h — reshape, transpose, slice and concat with autograd (the glue between layer ops).
//
// The model moves data between layouts without arithmetic: (B, T, C) <-> (B*T, C) around linear
// and the logits (SPEC §2), (B, T, NH, hs) <-> (B, NH, T, hs) for heads, splitting fused
// projections and joining per-expert pieces (SPEC §3 step 9). These ops do exactly that, and their
// backward moves the gradient back the same way.
//
// Which results share memory: reshape returns a view of x when x is contiguous (no copy; it copies
// otherwise). transpose, slice and concat always return a *new contiguous* tensor — a copy — so
// that every op downstream can take a plain row-major pointer without checking strides. (The
// zero-copy views are still available without autograd as Tensor::transpose_view/slice_view.)
// Negative dims count from the end, as in PyTorch. i32 tensors (token ids) pass through every
// forward; only floating tensors carry gradients.
//
// Derivatives (notes/ops-linear-shape-embedding.md):
//   reshape    dx = reshape(dout, x.shape)
//   transpose  dx = transpose(dout, d0, d1)
//   slice      dx = zeros(x.shape) with dx[..., start:end, ...] = dout
//   concat     dx_i = dout[..., offset_i : offset_i + size_i, ...]
// Devices: the result lives on the input's device; the CUDA twins (cuda/ops/shape.cu) move raw
// 4-byte words, so f32 and i32 tensors both work on the GPU (f64 stays on the CPU).
// What it leaves out: general permute (compose transposes), broadcasting/expand, stepped slices.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// Same elements, new shape (one dim may be -1: inferred). Numbers of elements must match.
Tensor reshape(const Tensor& x, const Shape& shape);
// Swap dims d0 and d1; returns a contiguous copy.
Tensor transpose(const Tensor& x, int d0, int d1);
// x[..., start:end, ...] along dim, 0 <= start <= end <= x.size(dim); returns a contiguous copy.
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end);
// Join tensors that agree on every dim but `dim` (same dtype), along `dim`. At least one input.
Tensor concat(const std::vector<Tensor>& xs, int dim);

// ---- raw kernels (contiguous buffers; T = float, double or int32_t) --------------------------
// A tensor is seen as (A, D0, Mid, D1, In) for transpose(d0, d1) with d0 < d1, and as
// (Outer, D, In) for slice and concat along one dim.

//   out (A, D1, Mid, D0, In)  <-  x (A, D0, Mid, D1, In)
template <typename T>
void transpose_forward(T* out, const T* x, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                       int64_t In);
//   dx (A, D0, Mid, D1, In)  <-  dout (A, D1, Mid, D0, In)
template <typename T>
void transpose_backward(T* dx, const T* dout, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                        int64_t In);
//   out (Outer, len, In)  <-  x (Outer, D, In), rows start .. start+len-1 of D
template <typename T>
void slice_forward(T* out, const T* x, int64_t Outer, int64_t D, int64_t In, int64_t start,
                   int64_t len);
//   dx (Outer, D, In) (overwritten: zeros outside the slice)  <-  dout (Outer, len, In)
template <typename T>
void slice_backward(T* dx, const T* dout, int64_t Outer, int64_t D, int64_t In, int64_t start,
                    int64_t len);
//   out (Outer, sum(sizes), In)  <-  xs[i] (Outer, sizes[i], In)
template <typename T>
void concat_forward(T* out, const std::vector<const T*>& xs, const std::vector<int64_t>& sizes,
                    int64_t Outer, int64_t In);
//   dxs[i] (Outer, sizes[i], In) (null = not needed)  <-  dout (Outer, sum(sizes), In)
template <typename T>
void concat_backward(const std::vector<T*>& dxs, const T* dout, const std::vector<int64_t>& sizes,
                     int64_t Outer, int64_t In);

// CUDA twins, T = float or int32_t (the kernels copy words and never look at the values).
MOE_CUDA_BEGIN
template <typename T>
void transpose_forward_cuda(T* out, const T* x, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                            int64_t In) MOE_CUDA_STUB
template <typename T>
void transpose_backward_cuda(T* dx, const T* dout, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                             int64_t In) MOE_CUDA_STUB
template <typename T>
void slice_forward_cuda(T* out, const T* x, int64_t Outer, int64_t D, int64_t In, int64_t start,
                        int64_t len) MOE_CUDA_STUB
template <typename T>
void slice_backward_cuda(T* dx, const T* dout, int64_t Outer, int64_t D, int64_t In,
                         int64_t start, int64_t len) MOE_CUDA_STUB
template <typename T>
void concat_forward_cuda(T* out, const std::vector<const T*>& xs,
                         const std::vector<int64_t>& sizes, int64_t Outer, int64_t In)
    MOE_CUDA_STUB
template <typename T>
void concat_backward_cuda(const std::vector<T*>& dxs, const T* dout,
                          const std::vector<int64_t>& sizes, int64_t Outer, int64_t In)
    MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
