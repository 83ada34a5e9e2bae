// last_token.h — pick one position per sequence out of (B, T, C) hidden states, with autograd.
//
// SPEC §7: the classification head reads "the final hidden state (after the final LN) of the last
// non-padding token" of each sequence. Sequences of a batch have different lengths, so the
// position differs per row: out[b, :] = hidden[b, index[b], :]. That is a gather along T, and its
// backward is the matching scatter into zeros:
//
//   forward:   out[b, c] = x[b, index[b], c]                     x (B, T, C), index (B,) -> (B, C)
//   backward:  dx[b, t, c] = (t == index[b]) ? dout[b, c] : 0     (every other position gets 0)
//
// No two rows share an output row in either direction (row b of dx receives only row b of dout),
// so the scatter needs no accumulation and is deterministic with any thread count.
// last_token(hidden, lengths) is gather_rows at index = lengths - 1, with the lengths checked
// (1 <= length <= T): a length of 0 would read position -1, a length > T would read past the row.
//
// What it leaves out: gathering several positions per row, a CUDA kernel (the head is (B, C),
// tiny next to the model; the lead moves it to the GPU with the rest of the model).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace moe {

// x (B, T, C) f32/f64, index (B,) i32 with 0 <= index[b] < T  ->  (B, C). Gradient to x only.
Tensor gather_rows(const Tensor& x, const Tensor& index);

// hidden (B, T, C), lengths (B,) i32 with 1 <= lengths[b] <= T  ->  (B, C): the state at the
// last real token of each right-padded sequence.
Tensor last_token(const Tensor& hidden, const Tensor& lengths);

// ---- raw kernels (contiguous buffers; T = float or double; indices already range-checked) ----
//   out (B, C)  <-  x (B, Tn, C), index (B)
template <typename T>
void gather_rows_forward(T* out, const T* x, const int32_t* index, int64_t B, int64_t Tn,
                         int64_t C);
//   dx (B, Tn, C) (overwritten: zeros except the gathered rows)  <-  dout (B, C), index (B)
template <typename T>
void gather_rows_backward(T* dx, const T* dout, const int32_t* index, int64_t B, int64_t Tn,
                          int64_t C);

}  // namespace moe
