// attention.h — causal multi-head self-attention on a fused qkv tensor (the core of Attn()).
//
// SPEC §2: dense causal attention, scores scaled by 1/sqrt(head_dim), dropout (0.1 by default)
// on the attention probabilities. The q, k, v projections and the output projection are linear
// layers (ops/linear) around this op; this op is everything in between:
//
//   qkv (B, T, 3C) = [q | k | v], each C wide; head h uses columns h*hs .. h*hs+hs-1 of each,
//   hs = C / NH (the layout of one x @ W_qkv^T with W_qkv = [W_q; W_k; W_v]).
//   S[b, h, t, u] = q[b, t, h] . k[b, u, h] / sqrt(hs)        for u <= t (causal), else -inf
//   P[b, h, t, :] = softmax_u(S[b, h, t, :])                  (B, NH, T, T), zero above diagonal
//   Pd            = P * M                                     M: dropout mask, 0 or 1/(1-p)
//   out[b, t, h]  = sum_u Pd[b, h, t, u] v[b, u, h]           heads concatenated -> (B, T, C)
//
// Saved for backward: qkv and P (B, NH, T, T) before dropout. The dropout mask M is never
// stored: entry (b, h, t, u) is a pure function of its index (ops/activation.h dropout_factor), so
// the backward recomputes it, and the CPU and the GPU draw the same mask. Memory is O(B NH T^2):
// fine for the contexts trained here; a flash-style kernel could later keep the same inputs and
// outputs.
//
// Devices: the op follows qkv's device (core/dispatch.h). The CUDA twins (cuda/ops/attention.cu)
// rearrange q, k, v into per-head contiguous blocks and run each product as one strided-batched
// cuBLAS call over the B*NH heads, with row kernels for the causal softmax and its backward.
//
// What it leaves out: padding masks (the model trains on full T-token blocks, SPEC §5),
// key/value caches for generation, sparse or banded attention (the paper uses dense), and
// flash-style recomputation.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "ops/activation.h"

namespace moe {

// qkv: (B, T, 3C) f32/f64 with C % NH == 0  ->  (B, T, C). Dropout on P with probability
// attn_dropout_p when training: B*NH*T*T values are taken from rng and entry (b, h, t, u) of the
// mask is value ((b*NH + h)*T + t)*T + u of that range (ops/activation.h dropout_factor), only
// the causal entries u <= t being used; identity on P otherwise.
Tensor causal_self_attention(const Tensor& qkv, int NH, double attn_dropout_p, bool training,
                             CounterRng& rng);

// ---- raw kernels (contiguous buffers; F is the float type, T the sequence length)
// `mask` describes the dropout draw (entry (b, h, t, u) is dropout_factor(*mask, ((b*NH + h)*T +
// t)*T + u)); null means no dropout. It is a host-side description, read by the launcher, on
// both devices.
//   out (B, T, C), P (B, NH, T, T)  <-  qkv (B, T, 3C), mask or null
template <typename F>
void attention_forward(F* out, F* P, const F* qkv, const DropoutMask* mask, int64_t B, int64_t T,
                       int64_t C, int64_t NH);
//   dqkv (B, T, 3C) (overwritten)  <-  dout (B, T, C), qkv, P, mask or null (the forward's)
template <typename F>
void attention_backward(F* dqkv, const F* dout, const F* qkv, const F* P, const DropoutMask* mask,
                        int64_t B, int64_t T, int64_t C, int64_t NH);

// CUDA twins (cuda/ops/attention.cu), same contracts; F = float.
MOE_CUDA_BEGIN
template <typename F>
void attention_forward_cuda(F* out, F* P, const F* qkv, const DropoutMask* mask, int64_t B,
                            int64_t T, int64_t C, int64_t NH) MOE_CUDA_STUB
template <typename F>
void attention_backward_cuda(F* dqkv, const F* dout, const F* qkv, const F* P,
                             const DropoutMask* mask, int64_t B, int64_t T, int64_t C,
                             int64_t NH) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
