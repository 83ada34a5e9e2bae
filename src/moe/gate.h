// gate.h — the router and top-2 gating of an MoE layer: which experts each token goes to, in
// which slot, with which weight, and the load-balancing loss (SPEC §3 steps 1-8).
//
// Artetxe et al. 2021, §2 ("Mixture of Experts"), following GShard (Lepikhin et al. 2020) top-2
// gating; the reference behaviour is fairseq's `top2gating` (fairseq/modules/moe/top2gate.py, moe
// branch). notes/moe-gating.md derives every formula below and works a small example by hand.
//
// The pipeline, for N tokens X (N, C) and E experts (letters: N tokens, C width, E experts,
// K = 2 choices per token, Cap slots per expert):
//   router            P (N, E) = softmax(X @ Wg^T)                        differentiable
//   top2_select       e1, e2, slot positions, kept masks  (a Routing)      not differentiable
//   load_balance_loss l_aux = E * sum_e me[e] * ce[e]                      differentiable wrt P
//   gate_weights      G (N, K) = renormalised P[s, e1], P[s, e2]            differentiable wrt P
// (dispatch, the experts and combine are in moe/dispatch.h and moe/experts.h; moe/moe_layer.h
// composes them all.)
//
// Padding (SPEC §3 step 5a): top2_select takes an optional token mask, fairseq's `input_mask`
// turned around (1 = real token, 0 = padding), so that right-padded evaluation and fine-tuning
// batches route their real tokens exactly as if the padding were not there. See Note [Padding
// takes no slot].
//
// What it leaves out (fairseq options the paper's runs do not use): batch-prioritized routing,
// normalising gate probabilities before dropping, prefix-token statistics, the Tutel fast path,
// and top-1 (Switch) gating.
//
// Note [Why router math is fp32]
// The router decides discrete things — argmaxes and slot ranks — from small differences between
// logits, and its softmax over E experts feeds the gate weights and the aux loss. In bf16 (8
// mantissa bits) two logits 0.4% apart can round to the same value, so half-precision
// routing flips expert choices on rounding noise and distorts P. fairseq therefore computes the
// gate in fp32 (`use_fp32`, `wg` kept in fp32) and so do we: the router, the softmax and every
// quantity derived from P here run in the dtype of the input, which is f32 in the model (f64 in
// gradient checks); a future bf16 GPU path must cast X to f32 before the router, never route in
// bf16.
//
// Devices. Every op here follows its inputs' device (core/dispatch.h): CPU tensors run the loops
// of gate.cpp in f32 or f64, CUDA tensors the kernels of cuda/moe/gate.cu in f32, with the same
// results (top2_select's i32 outputs bit for bit, the rest within tests/tolerances.h). A Routing
// lives on the device of the probabilities it was selected from, and on the GPU nothing here
// waits for the device: no value is read back to the host (l_aux stays a device scalar).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// Capacity (SPEC §3 step 2)

// Slots per expert. Training, and evaluation without an eval fraction:
//   Cap = ceil(capacity_factor * 2 * ceil(N / E))      (ceil(N/E) first, as fairseq; the outer
//                                                       ceil only matters when the factor != 1)
// Evaluation with eval_fraction f > 0:  Cap = ceil(f * N).
// Both products are computed in double exactly as fairseq's Python does, so e.g. f = 0.55,
// N = 100 gives ceil(55.00000000000001) = 56, as there.
// Needs N >= 1, E >= 1, capacity_factor > 0, f >= 0.
int64_t moe_capacity(int64_t N, int E, double capacity_factor, bool training,
                     double eval_fraction);

// ---------------------------------------------------------------------------------------------
// Router: P = softmax(X @ Wg^T)   (SPEC §3 step 1)

struct RouterOutput {
  Tensor probs;   // (N, E) P = softmax over E of the logits; on the tape (wrt x and wg)
  Tensor logits;  // (N, E) X @ Wg^T, detached: top2_select reads it for the second choice
};

// x (N, C), wg (E, C) (no bias), same floating dtype and device, E >= 2. P and the logits are on
// that device. See Note [Why router math is fp32].
// Backward: dlogits = P * (dP - rowsum(dP * P)); dx = dlogits @ Wg; dWg = dlogits^T @ X.
RouterOutput router(const Tensor& x, const Tensor& wg);

// ---------------------------------------------------------------------------------------------
// Top-2 selection with capacity (SPEC §3 steps 3-5, 7)

enum class Top2Policy {
  ALL,       // e2 = argmax of the logits with e1 masked out (the paper's runs; the default)
  SAMPLING,  // e2 = argmax of (logits + Gumbel noise) with e1 masked out
  RANDOM,    // e2 as ALL, then kept only with probability min(1, 2 * P[s, e2])
};
// "all" | "sampling" | "random"; anything else is a CHECK error naming the accepted values.
Top2Policy top2_policy_from_string(const std::string& name);
const char* top2_policy_name(Top2Policy p);

// Which expert and slot each of the 2N assignments got. Plain i32 tensors on the device of the
// probabilities: routing is discrete, it is never on the tape (the gradient reaches the router
// through the gate weights instead).
// An assignment (s, k) is token s's k-th choice, k = 0 (top-1) or 1 (top-2).
struct Routing {
  int64_t num_tokens = 0;   // N (padding included)
  int64_t num_experts = 0;  // E
  int64_t capacity = 0;     // Cap
  Tensor expert;    // (N, K) i32: [s, 0] = e1, [s, 1] = e2 (reported even when RANDOM skipped it
                    //   and for padding: the choices are made, they just take no slot)
  Tensor loc;       // (N, K) i32: rank of the assignment in its expert's queue, before the
                    //   capacity cut (so it may be >= Cap); -1 where RANDOM skipped the 2nd choice,
                    //   and -1 for both choices of a padding token. A real token's top-1 always
                    //   has a rank, so loc[s, 0] == -1 exactly when token s is padding.
  Tensor kept;      // (N, K) i32: 1 if the assignment has a slot (0 <= loc < Cap), else 0
  Tensor slot_src;  // (E, Cap) i32: s*K + k of the assignment filling that slot, -1 if empty.
                    //   Filled slots of an expert are always a prefix 0, 1, ..., fill_e - 1.
  Tensor token_mask;  // (N) i32 as given to top2_select (non-zero = real token), or undefined
                      //   when every token is real; load_balance_loss reads it for ce
};

// Picks e1, e2 and slots from P and the logits (both (N, E) on one device, detached reads, f32 or
// f64). The CPU and the GPU give identical routings for the same inputs and the same `rng` state.
// Random values come from `rng` (core/philox.h): SAMPLING takes N*E of them (value s*E + e is the
// Gumbel noise of logit (s, e), e1's included, as fairseq draws a full (N, E) noise tensor),
// RANDOM takes N (value s decides token s's second choice, whatever the outcome), ALL takes none.
// See Note [Slot order: every top-1 outranks every top-2] and Note [Token dropping at capacity].
// token_mask: (N) i32 on the probabilities' device, non-zero for a real token and 0 for padding,
// or undefined (every token real, the training case). Padding takes no slot and no rank: see
// Note [Padding takes no slot]. The draws do not depend on the mask (padding tokens still use
// theirs), so a mask never shifts the generator.
Routing top2_select(const Tensor& probs, const Tensor& logits, int64_t capacity,
                    Top2Policy policy, CounterRng& rng, const Tensor& token_mask = Tensor());
// How many random values top2_select takes for this policy (see above).
uint64_t top2_draw_count(Top2Policy policy, int64_t N, int64_t E);

// ---------------------------------------------------------------------------------------------
// Gate weights and aux loss (SPEC §3 steps 6, 8)

// The f32 machine epsilon (torch.finfo(float32).eps), the floor of the renormalising denominator.
// Used for f64 too (fairseq would use the f64 eps there), so f32 and f64 runs agree.
constexpr double kGateDenomEps = 1.1920928955078125e-07;

// G (N, K) from P (N, E): g_k = kept_k ? P[s, e_k] : 0;  G[s, k] = g_k / max(g_1 + g_2, eps).
// Differentiable wrt P (see Note [Gate renormalisation and its gradient] in gate.cpp).
Tensor gate_weights(const Tensor& probs, const Routing& r);

// l_aux () from P (N, E) and the top-1 choices (before dropping):
//   me[e] = mean_s P[s, e],  ce[e] = mean_s [e1(s) = e],  l_aux = E * sum_e me[e] * ce[e].
// Exactly 1 at perfect balance (P uniform, or top-1 counts equal and P matching them).
// Gradient through me only: dl_aux/dP[s, e] = E * ce[e] / N. l_aux is a () tensor on P's device.
// With a token mask in the routing (SPEC §3 step 5a), padding tokens count in no ce[e], while
// both means still divide by all N and me still averages P over all N rows (fairseq:
// `ce = mean(mask1)` after mask1's padding rows were zeroed); so sum_e ce[e] = real / N.
// notes/moe-gating.md §4 says why this denominator.
Tensor load_balance_loss(const Tensor& probs, const Routing& r);

// ---------------------------------------------------------------------------------------------
// Shared by the CPU loop and the CUDA kernel of top2_select, so both draw the same decisions.

// Standard Gumbel sample -log(-log(u)) from 32 random bits, in double; u is in (0, 1), never 0 or
// 1, so the logs stay finite (core/philox.h bits_to_open_uniform). The host's (glibc) and the
// device's double log may differ in the last bit; the result is rounded to f32 before it is added
// to a logit, which absorbs that unless the double lies within a few ulps of an f32 rounding
// boundary (~1e-8 per value), and even then a choice changes only on a near tie.
MOE_HD double gumbel_from_bits(uint32_t bits) { return -log(-log(bits_to_open_uniform(bits))); }
// The RANDOM policy's rule (fairseq: sampled = 2 * gates2_s > rand): keep token s's second
// choice iff u < 2 * P[s, e2], compared in double (u is an exact 24-bit float).
MOE_HD bool random_policy_keeps(float u, double p2) { return static_cast<double>(u) < 2.0 * p2; }

// ---- raw kernels (contiguous row-major buffers; T = float or double on the CPU, float on CUDA) --
// Backward kernels overwrite their outputs; a null output pointer means "not needed". Each has a
// CUDA twin below with the same name plus _cuda and the same arguments (cuda/moe/gate.cu).

//   probs, logits (N, E)  <-  x (N, C), wg (E, C)
template <typename T>
void router_forward(T* probs, T* logits, const T* x, const T* wg, int64_t N, int64_t C,
                    int64_t E);
//   dx (N, C), dwg (E, C)  <-  dprobs (N, E), probs (N, E), x, wg
template <typename T>
void router_backward(T* dx, T* dwg, const T* dprobs, const T* probs, const T* x, const T* wg,
                     int64_t N, int64_t C, int64_t E);

//   expert, loc, kept (N, K), slot_src (E, Cap)  <-  probs, logits (N, E), mask (N) or null
template <typename T>
void top2_select_forward(int32_t* expert, int32_t* loc, int32_t* kept, int32_t* slot_src,
                         const T* probs, const T* logits, const int32_t* mask, Top2Policy policy,
                         PhiloxRange draw, int64_t N, int64_t E, int64_t Cap);

//   gates (N, K)  <-  probs (N, E), expert, kept (N, K)
template <typename T>
void gate_weights_forward(T* gates, const T* probs, const int32_t* expert, const int32_t* kept,
                          int64_t N, int64_t E);
//   dprobs (N, E)  <-  dgates (N, K), probs, expert, kept
template <typename T>
void gate_weights_backward(T* dprobs, const T* dgates, const T* probs, const int32_t* expert,
                           const int32_t* kept, int64_t N, int64_t E);

//   loss (1), ce (E) saved for backward  <-  probs (N, E), expert (N, K), mask (N) or null
template <typename T>
void load_balance_loss_forward(T* loss, T* ce, const T* probs, const int32_t* expert,
                               const int32_t* mask, int64_t N, int64_t E);
//   dprobs (N, E)  <-  dloss (1: the incoming gradient, read where it lies, so the GPU never
//   copies it to the host), ce (E)
template <typename T>
void load_balance_loss_backward(T* dprobs, const T* dloss, const T* ce, int64_t N, int64_t E);

MOE_CUDA_BEGIN
template <typename T>
void router_forward_cuda(T* probs, T* logits, const T* x, const T* wg, int64_t N, int64_t C,
                         int64_t E) MOE_CUDA_STUB
template <typename T>
void router_backward_cuda(T* dx, T* dwg, const T* dprobs, const T* probs, const T* x,
                          const T* wg, int64_t N, int64_t C, int64_t E) MOE_CUDA_STUB
template <typename T>
void top2_select_forward_cuda(int32_t* expert, int32_t* loc, int32_t* kept, int32_t* slot_src,
                              const T* probs, const T* logits, const int32_t* mask,
                              Top2Policy policy, PhiloxRange draw, int64_t N, int64_t E,
                              int64_t Cap) MOE_CUDA_STUB
template <typename T>
void gate_weights_forward_cuda(T* gates, const T* probs, const int32_t* expert,
                               const int32_t* kept, int64_t N, int64_t E) MOE_CUDA_STUB
template <typename T>
void gate_weights_backward_cuda(T* dprobs, const T* dgates, const T* probs,
                                const int32_t* expert, const int32_t* kept, int64_t N,
                                int64_t E) MOE_CUDA_STUB
template <typename T>
void load_balance_loss_forward_cuda(T* loss, T* ce, const T* probs, const int32_t* expert,
                                    const int32_t* mask, int64_t N, int64_t E) MOE_CUDA_STUB
template <typename T>
void load_balance_loss_backward_cuda(T* dprobs, const T* dloss, const T* ce, int64_t N,
                                     int64_t E) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
