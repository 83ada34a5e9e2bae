// embedding.h — token embedding lookup (a gather of table rows) with autograd.
//
// SPEC §2: the model's input is Embedding[ids] * sqrt(C) (the scaling is done by the caller with
// ops/elementwise scale) plus sinusoidal positions; the same table is tied to the output logits
// (ops/linear), so its gradient is the sum of the two uses (the autograd engine adds them).
//
//   forward:   out[b, t, :] = table[ids[b, t], :]
//   backward:  dtable[v, :] = sum over positions (b, t) with ids[b, t] == v of dout[b, t, :]
//
// The backward is a scatter-add where several tokens may hit the same row. To stay deterministic
// without atomics, threads split the C columns, not the tokens: each thread walks all tokens in
// order and adds into its own columns, so every element is summed in token order whatever the
// thread count.
// On the GPU (cuda/ops/embedding.cu) the same token-order sum is kept without atomics by sorting
// the tokens by id first (a stable counting sort, core/scan.cuh); one thread block then sums each
// vocabulary row's tokens in token order, so the result is bitwise the CPU's.
// Out-of-range ids are an error naming the id, its position and V (usually a tokenizer or
// checkpoint whose vocabulary does not match the model) — on the CPU. On the GPU the ids cannot
// be read by the host without stalling it, so an out-of-range id gives a NaN output row instead
// (and adds nothing to dtable); the loss then turns NaN and the trainer's finite-loss check stops.
// Ids and table must be on one device.
// What it leaves out: padding_idx, max_norm, sparse gradients.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// ids (B, T) i32 (any shape works: (...)), table (V, C) f32/f64  ->  (B, T, C) (i.e. (..., C)).
Tensor embedding(const Tensor& ids, const Tensor& table);

// ---- raw kernels (contiguous buffers; T = float or double; ids already range-checked) --------
//   out (N, C)  <-  ids (N), table (V, C)
template <typename T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t V,
                       int64_t C);
//   dtable (V, C) (overwritten)  <-  dout (N, C), ids (N)
template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t V,
                        int64_t C);

// CUDA twins: ids on the device are not range-checked (see the top of this file).
MOE_CUDA_BEGIN
template <typename T>
void embedding_forward_cuda(T* out, const int32_t* ids, const T* table, int64_t N, int64_t V,
                            int64_t C) MOE_CUDA_STUB
template <typename T>
void embedding_backward_cuda(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t V,
                             int64_t C) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
