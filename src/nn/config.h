// config.h — the model's shape and regularisation settings (SPEC §2).
//
// One struct for dense and MoE models: the MoE fields (issue 3) stay zero for a dense model.
// Filled from the flags (train), or from a checkpoint's metadata (eval, finetune), so a model can
// always be rebuilt from what its checkpoint says about it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace moe {

struct GPTConfig {
  int n_layer = 4;        // L: transformer blocks, e.g. 4 for tiny, 12 for 125m
  int d_model = 128;      // C: model width; FFN width is H = 4C
  int n_head = 4;         // NH: attention heads; head size hs = C / NH
  int seq_len = 64;       // T: context length in tokens (2048 in the paper)
  int vocab_size = 2048;  // V: from the tokenizer (GPT-2: 50257 + </s>)
  double dropout = 0.1;   // embedding, attention, residual and expert-output dropout (SPEC §2)

  // Mixture of Experts (SPEC §3). moe_experts = 0 is the dense model; E > 0 replaces the FFN of
  // every layer i with (i+1) % moe_freq == 0 by E experts with top-2 routing.
  int moe_experts = 0;                 // E, e.g. 8 for tiny, 512 in the paper's largest models
  int moe_freq = 2;                    // every other layer, so the last layer is MoE
  double capacity_factor = 1.0;        // training capacity 2*ceil(N/E) times this
  double eval_capacity_fraction = 0;   // > 0: evaluation capacity ceil(f*N)
  std::string top2_policy = "all";     // all | sampling | random

  bool is_moe() const { return moe_experts > 0; }
  bool is_moe_layer(int i) const { return moe_experts > 0 && (i + 1) % moe_freq == 0; }
  int n_moe_layers() const;

  int d_ff() const { return 4 * d_model; }
  int head_size() const { return d_model / n_head; }

  // The keys that must agree between a checkpoint and the model it is loaded into.
  std::vector<std::pair<std::string, std::string>> to_meta() const;
  static GPTConfig from_meta(const std::vector<std::pair<std::string, std::string>>& meta);
  void validate() const;  // CHECK-fails with the offending flag named
};

// Training compute per token, SPEC §5: the paper's count (incl. activation recomputation)
//   F_tok = 96 L C^2 (1 + T/(6C)) + 6 C V,  plus 64 C^2 per MoE layer for top-2 routing
//   (the second expert's FFN, 16 C^2 forward x 4 for forward + recompute + backward; with MoE in
//   every other layer this is the paper's 32 L C^2),
// and the plain model-FLOPs count used for MFU: 6 * (active parameters) + 12 L T C (attention).
double paper_flops_per_token(const GPTConfig& c);
double model_flops_per_token(const GPTConfig& c, int64_t active_params);

}  // namespace moe
