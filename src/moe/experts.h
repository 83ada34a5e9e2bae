// experts.h — the E expert FFNs of an MoE layer, run together on their (E, Cap, C) buffers as
// batched GEMMs (SPEC §2 "an expert is a full FFN of the dense shape", SPEC §3 step 9).
//
// Artetxe et al. 2021, §2: each expert is the dense model's FFN, C -> H -> C with biases and GELU
// (tanh form), H = 4C. For expert e and its buffer rows X_e (Cap, C):
//   pre_e = X_e @ W1[e] + b1[e]        (Cap, H)
//   act_e = gelu(pre_e)                (Cap, H)
//   out_e = act_e @ W2[e] + b2[e]      (Cap, C)
// Layout: W1 (E, C, H) and W2 (E, H, C) — note y = x @ W1[e], *not* x @ W^T as in linear
// (ops/linear.h stores (out, in)). This "(in, out) per expert" layout makes the E products one
// gemm_batched call with a fixed stride, and keeps the experts of one rank — the contiguous range
// [r*E/W, (r+1)*E/W), SPEC §4 — a contiguous slice of every expert tensor.
//
// Derivatives (notes/ops-moe.md), per expert, dout_e (Cap, C):
//   dact_e = dout_e @ W2[e]^T          dW2[e] = act_e^T @ dout_e      db2[e] = sum_rows dout_e
//   dpre_e = dact_e * gelu'(pre_e)
//   dX_e   = dpre_e @ W1[e]^T          dW1[e] = X_e^T @ dpre_e        db1[e] = sum_rows dpre_e
// All Cap rows are computed, filled or not (fixed shapes, as the all-to-all of SPEC §4 needs);
// the empty ones cannot reach the layer output: Note [Empty expert slots never reach the output]
// in moe/dispatch.h.
//
// On CUDA (cuda/moe/experts.cu) the same steps run as cuBLAS strided-batched GEMMs over E, the
// GELU kernels of ops/activation.h, and a per-expert column sum for the bias gradients that adds
// rows in a fixed order (deterministic, no atomics).
//
// What it leaves out: dropout inside the expert (the layer applies the expert-output dropout of
// SPEC §2 to this op's result, moe/moe_layer.cpp; there is no activation dropout), grouped GEMMs
// over only the filled rows, other activations.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// buf (E, Cap, C), w1 (E, C, H), b1 (E, H), w2 (E, H, C), b2 (E, C) -> (E, Cap, C).
// All f32 or all f64, all on one device (the output too). Differentiable wrt all five.
Tensor expert_ffn(const Tensor& buf, const Tensor& w1, const Tensor& b1, const Tensor& w2,
                  const Tensor& b2);

// ---- raw kernels (contiguous row-major buffers; T = float or double on the CPU, float on CUDA) --
// Each has a CUDA twin below with the same name plus _cuda and the same arguments.

//   out (E, Cap, C), pre (E, Cap, H) and act (E, Cap, H) saved for backward
//   <-  buf (E, Cap, C), w1 (E, C, H), b1 (E, H), w2 (E, H, C), b2 (E, C)
template <typename T>
void expert_ffn_forward(T* out, T* pre, T* act, const T* buf, const T* w1, const T* b1,
                        const T* w2, const T* b2, int64_t E, int64_t Cap, int64_t C, int64_t H);

//   dbuf (E, Cap, C), dw1 (E, C, H), db1 (E, H), dw2 (E, H, C), db2 (E, C)
//   <-  dout (E, Cap, C), pre, act (E, Cap, H), buf, w1, w2
// Overwrites its outputs; a null output pointer skips that gradient. Reads only what the wanted
// gradients need: act for dw2; buf for dw1; w1 for dbuf; w2 and pre for anything before fc2.
template <typename T>
void expert_ffn_backward(T* dbuf, T* dw1, T* db1, T* dw2, T* db2, const T* dout, const T* pre,
                         const T* act, const T* buf, const T* w1, const T* w2, int64_t E,
                         int64_t Cap, int64_t C, int64_t H);

MOE_CUDA_BEGIN
template <typename T>
void expert_ffn_forward_cuda(T* out, T* pre, T* act, const T* buf, const T* w1, const T* b1,
                             const T* w2, const T* b2, int64_t E, int64_t Cap, int64_t C,
                             int64_t H) MOE_CUDA_STUB
template <typename T>
void expert_ffn_backward_cuda(T* dbuf, T* dw1, T* db1, T* dw2, T* db2, const T* dout,
                              const T* pre, const T* act, const T* buf, const T* w1, const T* w2,
                              int64_t E, int64_t Cap, int64_t C, int64_t H) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
