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
// That is exactly an embedding lookup into x viewed as a (B*T, C) table at rows b*T + index[b],
// so the op is built from ops/embedding (whose backward is this scatter, deterministic with any
// thread count) rather than with kernels of its own.
// last_token(hidden, lengths) is gather_rows at index = lengths - 1, with the lengths checked
// (1 <= length <= T): a length of 0 would read position -1, a length > T would read past the row.
//
// Devices: the gather runs on x's device (the embedding op's CUDA kernel on the GPU, bitwise the
// CPU's copy). The index / lengths are read on the host — they are checked there and turned into
// flat row numbers — so callers keep them as host tensors (a batch's lengths are made on the
// host); only the (B,) row numbers travel to the device, a copy that does not wait for the GPU.
// A device index also works, but reading it back waits for the GPU: avoid it in a training loop.
// What it leaves out: gathering several positions per row, a kernel of its own.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace moe {

// x (B, T, C) f32/f64 on any device, index (B,) i32 (host) with 0 <= index[b] < T  ->  (B, C)
// on x's device. Gradient to x only.
Tensor gather_rows(const Tensor& x, const Tensor& index);

// hidden (B, T, C), lengths (B,) i32 (host) with 1 <= lengths[b] <= T  ->  (B, C): the state at
// the last real token of each right-padded sequence.
Tensor last_token(const Tensor& hidden, const Tensor& lengths);

}  // namespace moe
