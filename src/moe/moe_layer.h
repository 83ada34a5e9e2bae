// moe_layer.h — the MoE feed-forward layer: router, top-2 gating with capacity, dispatch, the E
// expert FFNs, combine, and the load-balancing loss, composed from the ops of gate.h, dispatch.h
// and experts.h, plus the routing statistics SPEC §3 asks to report.
//
// Artetxe et al. 2021, §2 (the MoE counterpart of the dense FFN in every other layer); SPEC §2
// (expert = dense FFN, expert-output dropout, init) and §3 (top-2 gating, steps 1-10). The
// composed forward (N tokens, C width, H expert width, E experts, K = 2, Cap slots per expert):
//
//   P (N, E)        = router(x, wg)                   softmax(x @ wg^T), f32 (f64 in tests)
//   routing         = top2_select(P, logits, Cap)     e1, e2, slots, drops — not differentiable
//   l_aux ()        = load_balance_loss(P, routing)   E * sum_e me[e] ce[e]
//   G (N, K)        = gate_weights(P, routing)        renormalised after dropping
//   buf (E, Cap, C) = dispatch(x, routing)
//   out (E, Cap, C) = dropout(expert_ffn(buf, w1, b1, w2, b2), expert_dropout)
//   y (N, C)        = combine(out, G, routing)        y_s = g1 out[e1, loc1] + g2 out[e2, loc2]
//
// Gradients reach x twice — through the router (P -> G and P -> l_aux) and through dispatch — and
// the tape adds them. The caller adds the residual (h + y) and the aux loss to the training loss
// (SPEC §3 step 10: loss = NLL + 0.01 * sum over MoE layers of l_aux).
//
// Padding (SPEC §3 step 5a): an optional token mask (1 = real, 0 = padding) goes to top2_select,
// so padding of a right-padded batch takes no slot, gets an exactly-zero output row and counts in
// no statistic (Note [Padding takes no slot] in gate.cpp). Cap still counts every position.
//
// Expert parallelism (SPEC §4; notes/distributed.md): on W ranks, each rank holds E/W experts
// (w1, b1, w2, b2 are its slices, (E/W, ...)), gates its own N tokens with its own Cap, and the
// dispatch buffer travels to the experts' owners and back:
//   buf (E, Cap, C) = (W, E/W, Cap, C)  --all_to_all-->  (W, E/W, Cap, C), slot q from rank q
//   --transpose-->  (E/W, W*Cap, C): each local expert's rows from every rank
//   expert_ffn on the E/W local experts, the transpose back, the reverse all_to_all
//   out (E, Cap, C): this rank's rows, processed by their experts wherever they live
// Both exchanges and both transposes are ops on the tape, so backward mirrors them; the expert
// gradients end up on their owner summed over every rank's tokens (never all-reduced).
//
// What it leaves out: expert-gradient scaling (the trainer's job, SPEC §4).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "moe/gate.h"

namespace moe {
class Transport;  // dist/transport.h
}

namespace moe {

// Where the experts of a layer live (SPEC §4): rank `rank` of `world` holds experts
// [rank*E/world, (rank+1)*E/world), and `transport` carries the two all-to-alls (unused when
// world == 1). Every rank must run every MoE forward and backward together, with the same shapes.
struct ExpertParallel {
  int rank = 0;
  int world = 1;
  Transport* transport = nullptr;
  int local_experts(int E) const { return E / world; }
  int first_expert(int E) const { return rank * (E / world); }
};

struct MoEConfig {
  int num_experts = 0;                  // E, e.g. 16 (512 in the paper's largest models)
  double capacity_factor = 1.0;         // Cap = ceil(factor * 2 * ceil(N / E)); 1.0 in the paper
  double eval_capacity_fraction = 0.0;  // f > 0: Cap = ceil(f * N) in evaluation; 0 = off
  std::string top2_policy = "all";      // "all" (paper) | "sampling" | "random" (SPEC §3 step 4)
  double expert_dropout = 0.0;          // dropout on each expert's output, e.g. 0.1 (SPEC §2)
  ExpertParallel ep;                    // where the experts live; one rank by default
};

// One MoE layer's parameters. The expert tensors are (E, ...) so that the experts of one rank are
// a contiguous slice (SPEC §4); note W1/W2 are stored (in, out) per expert: moe/experts.h.
struct MoEParams {
  Tensor wg;  // (E, C)    gate, no bias: logits = x @ wg^T
  Tensor w1;  // (E, C, H) expert fc1: pre = x @ w1[e] + b1[e]
  Tensor b1;  // (E, H)
  Tensor w2;  // (E, H, C) expert fc2: out = gelu(pre) @ w2[e] + b2[e]
  Tensor b2;  // (E, C)
};

// What a forward reports about its routing (SPEC §3, last line), plain numbers, off the tape.
// Every field counts real tokens only: padding (token mask 0) makes no assignment and is left out
// of the entropy and of every denominator (SPEC §3 step 5a).
struct MoEStats {
  std::vector<int64_t> tokens_per_expert;  // (E) kept assignments per expert, top-1 and top-2
  double fraction_dropped = 0.0;       // dropped / made, over all assignments made (one top-1 per
                                       //   real token, plus the top-2 ones the "random" policy
                                       //   did not skip)
  double fraction_dropped_top1 = 0.0;  // the same over top-1 assignments (fairseq's
  double fraction_dropped_top2 = 0.0;  //   overflow_expert1/2, as fractions) and over top-2 ones
  double fraction_tokens_dropped = 0.0;  // real tokens that lost both slots (they pass on the
                                         //   residual)
  double router_entropy = 0.0;         // mean over real tokens of -sum_e P log P, in nats
                                       //   (at most ln E)
  double l_aux = 0.0;                  // the value of the load-balancing loss
  int64_t capacity = 0;                // Cap used in this forward
};

// The routing statistics of one forward as one small tensor on the layer's device, so that a
// training step never waits for the GPU to report them: the trainer reads them (one copy) only
// at logging steps. Layout, f32, (kMoEStatFields + E,):
enum MoEStatField : int {
  kStatMade1 = 0,     // top-1 assignments made (the real tokens: N without a mask)
  kStatMade2,         // top-2 assignments made (as many, fewer with the "random" policy)
  kStatDropped1,      // top-1 assignments that found no slot
  kStatDropped2,      // top-2 assignments that found no slot
  kStatLostBoth,      // real tokens that lost both slots
  kStatEntropySum,    // sum over real tokens of -sum_e P log P (nats)
  kStatLAux,          // the load-balancing loss
  kMoEStatFields      // then E entries: kept assignments per expert
};

struct MoEOutput {
  Tensor y;          // like x: (..., C); on the tape
  Tensor l_aux;      // () load-balancing loss, on the tape (gradient into wg and x through P)
  Tensor raw_stats;  // (kMoEStatFields + E,) f32 on x's device, off the tape
  int64_t capacity = 0;
  MoEStats stats() const;  // reads raw_stats back to the host (a device sync on the GPU)
};

// Fairseq init (SPEC §2): every weight and bias U(-1/sqrt(fan_in), +1/sqrt(fan_in)) — the gate
// and fc1 with fan_in = C, fc2 with fan_in = H. Every expert gets its own draws: the tensors are
// filled in the order wg, then expert 0 (w1, b1, w2, b2), expert 1, ... from `rng`. f32 leaves
// with requires_grad set.
MoEParams moe_params_init(int E, int C, int H, Rng& rng);

// x (..., C) f32/f64 (leading dims are flattened into N tokens; tokens ordered batch-major, then
// position, as SPEC §3 requires). `training` selects the capacity rule and enables the expert
// dropout. `rng` feeds, in this order: the top-2 policy's draws (gate.h), then the dropout mask.
// token_mask: (N) i32 on x's device, 1 for a real token and 0 for padding, in the same flattened
// order; undefined = every token real (training batches, and the bitwise-unchanged default).
// Padding rows of y are exactly 0; Cap still counts all N positions.
MoEOutput moe_layer_forward(const Tensor& x, const MoEParams& p, const MoEConfig& cfg,
                            bool training, CounterRng& rng, const Tensor& token_mask = Tensor());

// The capacity rule a forward with these settings uses, in words, for the programs' output and
// results files (SPEC §6: "say which was used"), e.g. "eval capacity fraction 0.25: Cap =
// ceil(0.25 * N) slots per expert with E = 8, N = all B*T positions of the batch; padding takes
// no slot, real tokens of other sequences in the batch compete for the slots (SPEC §3)".
std::string moe_capacity_rule(const MoEConfig& cfg, bool training);

// The statistics of one routing, probs (N, E) on any device -> raw stats (see MoEStatField) on
// the same device; l_aux (a () tensor or undefined for 0) is copied into its field.
Tensor moe_routing_stats_tensor(const Tensor& probs, const Routing& r, const Tensor& l_aux);
// Host view of raw stats (one device-to-host copy).
MoEStats moe_stats_from_tensor(const Tensor& raw_stats, int64_t capacity);
// Both at once (tests and tools): host statistics of one routing, l_aux left 0.
MoEStats moe_routing_stats(const Tensor& probs, const Routing& r);

MOE_CUDA_BEGIN
// raw (kMoEStatFields + E)  <-  probs (N, E), expert, loc, kept (N, K), l_aux (1) or null (= 0)
void moe_routing_stats_cuda(float* raw, const float* probs, const int32_t* expert,
                            const int32_t* loc, const int32_t* kept, const float* l_aux,
                            int64_t N, int64_t E) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
