// gpt.h — the dense GPT-3-style decoder of the paper (SPEC §2), built from the coarse ops.
//
//   x = Dropout(sqrt(C) * Embed(ids) + SinusoidalPos)                        (B, T, C)
//   for each of the L blocks (pre-LN):
//     x = x + Dropout(Attn(LN1(x)))                                          (B, T, C)
//     x = x + Dropout(FFN(LN2(x)))      FFN = fc2(GELU(fc1(.))), C -> 4C -> C
//   logits = LN_f(x) @ Embed^T          (tied output embedding, no bias)     (B*T, V)
//
// The MoE counterpart (SPEC §2-3) replaces the FFN of every other block; everything else here is
// shared, as in the paper, where each MoE model shares its dense counterpart's backbone.
// Right-padded batches (evaluation, fine-tuning) pass their row lengths, so that the MoE gates
// give padding no expert slot (SPEC §3 step 5a) and a row's scores do not depend on its batch.
// Initialisation follows fairseq (SPEC §2): embedding N(0, C^-1/2); q, k, v Xavier-uniform with
// gain 1/sqrt(2), output projection Xavier-uniform with zero bias; FFN weights and all other
// biases U(+-1/sqrt(fan_in)); layer norms (1, 0).
#pragma once
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "nn/config.h"
#include "moe/moe_layer.h"
#include "nn/params.h"

namespace moe {

struct BlockParams {
  Tensor ln1_w, ln1_b;    // (C,), (C,)
  Tensor qkv_w, qkv_b;    // (3C, C), (3C,)   q, k, v projections stacked
  Tensor proj_w, proj_b;  // (C, C), (C,)     attention output projection
  Tensor ln2_w, ln2_b;    // (C,), (C,)
  Tensor fc1_w, fc1_b;    // (H, C), (H,)          dense FFN (undefined in an MoE block)
  Tensor fc2_w, fc2_b;    // (C, H), (C,)
  bool is_moe = false;
  MoEParams moe;          // wg (E, C), w1 (E, C, H), b1 (E, H), w2 (E, H, C), b2 (E, C)
};

class GPT {
 public:
  // Parameters are drawn on the CPU from `seed` (so a seed gives the same model on every device)
  // and then live on `device`; every forward runs where they are (ids and targets may come from
  // any device and are moved there).
  //
  // `ep` spreads the experts over ranks (SPEC §4): the full model is drawn from `seed` on every
  // rank (so W ranks start from the same model as one process), and each rank keeps only its
  // experts [rank*E/W, (rank+1)*E/W) of every MoE layer; the registry then holds those (E/W, ...)
  // slices under the usual names. Checkpoints gather and re-slice them (train/trainer.cpp,
  // nn/gpt_io.h).
  GPT(const GPTConfig& cfg, uint64_t seed, Device device = cpu(), ExpertParallel ep = {});

  // ids, targets: (B, T) int32. Returns the mean next-token NLL (a scalar on the tape, on the
  // model's device). `training` turns dropout on; its random numbers come from `rng` (a counter
  // generator whose (seed, offset) checkpoints save).
  Tensor forward_loss(const Tensor& ids, const Tensor& targets, bool training, CounterRng& rng);
  // Logits (B*T, V) for evaluation (no dropout). `lengths` as for forward_hidden.
  Tensor forward_logits(const Tensor& ids, CounterRng& rng, const Tensor& lengths = Tensor());
  // Final hidden states after the last layer norm, (B, T, C) (fine-tuning heads read these).
  // lengths: (B,) i32, the number of real tokens at the start of each row of a right-padded batch
  // (0 .. T; read on the host, so pass it from there). Positions t >= lengths[b] are padding: the
  // MoE gates route them nowhere (SPEC §3 step 5a), so with a capacity where nothing drops the
  // real positions of a row are bitwise the same whatever else shares the batch, and routing
  // statistics count real tokens only. Undefined = no padding (training batches). The mask is
  // built on the host and copied to the device once per forward, and only for an MoE model that
  // has padding in the batch.
  Tensor forward_hidden(const Tensor& ids, bool training, CounterRng& rng,
                        const Tensor& lengths = Tensor());

  Device device() const { return device_; }
  const ExpertParallel& expert_parallel() const { return ep_; }
  // Scalars of the whole model, every rank's experts counted (params().count() is this rank's).
  int64_t param_count_all_ranks() const;

  // Sum over MoE layers of the load-balancing loss of the last forward (SPEC §3 step 10); an
  // undefined tensor for a dense model.
  const Tensor& aux_loss() const { return aux_loss_; }
  // Routing statistics of the last forward, one entry per MoE layer (in layer order). Reading
  // them copies from the device: call at logging steps, not every step. On W ranks they cover
  // every rank's tokens (a collective: all ranks call it together).
  std::vector<MoEStats> moe_stats() const;
  std::vector<int> moe_layer_indices() const;
  // Parameters one token touches: all but the experts, plus 2 of the E experts of each MoE
  // layer (top-2). What model FLOPs and MFU count (SPEC §5).
  int64_t active_param_count() const;
  // Evaluation capacity rule for MoE layers (SPEC §3): f > 0 gives Cap = ceil(f * N).
  void set_eval_capacity_fraction(double f) { cfg_.eval_capacity_fraction = f; }
  // The MoE capacity rule of a forward, in words, for the programs' output and results (SPEC §6:
  // "say which was used"); empty for a dense model.
  std::string moe_capacity_rule(bool training) const;
  // True for expert weights (not the gate): they get the SPEC §4 expert gradient scaling.
  static bool is_expert_param(const std::string& name);

  const GPTConfig& config() const { return cfg_; }
  ParamRegistry& params() { return params_; }
  const ParamRegistry& params() const { return params_; }

 private:
  // token_mask: (B*T) i32 on the device, 1 = real token, or undefined (no padding).
  Tensor block_forward(const Tensor& x, const BlockParams& p, bool training, CounterRng& rng,
                       const Tensor& token_mask);
  Tensor ffn_forward(const Tensor& h, const BlockParams& p, bool training, CounterRng& rng,
                     const Tensor& token_mask);
  MoEConfig moe_config() const;
  // The (B*T) token mask of a right-padded batch from its row lengths, on the device; undefined
  // when there is nothing to mask (no lengths, a dense model, or every row full).
  Tensor padding_mask(const Tensor& lengths, int B, int T) const;
  const Tensor& positions(int B, int T);
  void move_to_device();  // (B, T, C) sinusoidal table on the device, no grad

  GPTConfig cfg_;
  Device device_;
  ExpertParallel ep_;
  ParamRegistry params_;
  Tensor wte_;                       // (V, C) token embedding, tied with the output layer
  std::vector<BlockParams> blocks_;  // L blocks
  Tensor lnf_w_, lnf_b_;             // (C,), (C,)
  Tensor pos_table_;                 // (T, C) fairseq sinusoidal positions, on the CPU
  Tensor pos_batch_;                 // (B, T, C) the table repeated per row, on device_ (cached)
  Tensor aux_loss_;                  // scalar, set by the last forward (MoE only)
  std::vector<std::pair<Tensor, int64_t>> moe_raw_stats_;  // per MoE layer: raw stats, capacity
};

// fairseq's sinusoidal table for positions 0..T-1 (SPEC §2): channel k < C/2 holds
// sin(p * f_k), channel C/2 + k holds cos(p * f_k), f_k = exp(-k ln(10000) / (C/2 - 1)), where
// p = t + 2 is the fairseq position index of token t (padding_idx 1, positions start after it).
Tensor sinusoidal_positions(int T, int C);  // (T, C) f32

}  // namespace moe
