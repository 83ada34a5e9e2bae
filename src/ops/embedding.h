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
// Out-of-range ids are an error naming the id, its position and V (usually a tokenizer or
// checkpoint whose vocabulary does not match the model).
// What it leaves out: padding_idx, max_norm, sparse gradients.
#pragma once
#include <cstdint>

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

}  // namespace moe
