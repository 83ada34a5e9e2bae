// config.h — the model's shape and regularisation settings (SPEC §2).
//
// One struct for dense and MoE models: the MoE fields (SPEC §2-3) stay zero for a dense model.
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
  // The inverse, for a checkpoint's meta. Every number is parsed strictly and range-checked
  // (the ranges of the train flags) before anything uses it, and the result is validated, so a
  // damaged or forged entry (`n-layer=abc`, `n-layer=100000`) fails at once with a message naming
  // `source` (the checkpoint file) and the key, before any model is built.
  static GPTConfig from_meta(const std::vector<std::pair<std::string, std::string>>& meta,
                             const std::string& source = "");
  void validate() const;  // CHECK-fails with the offending flag named
};

// One checkpoint meta value parsed strictly (the whole string, a number in [lo, hi]); otherwise an
// error naming `source` (the file), the key and the value. For every number read from a
// checkpoint (the model shape here, the step and data cursor in the trainer).
int64_t parse_meta_int(const std::string& value, const std::string& key, int64_t lo, int64_t hi,
                       const std::string& source);
double parse_meta_double(const std::string& value, const std::string& key, double lo, double hi,
                         const std::string& source);

// Parameters of the model `c` describes (what GPT's constructor allocates), computed from the
// shape alone so that a size can be judged before anything is allocated.
int64_t param_count(const GPTConfig& c);

// A rough lower estimate of the memory, in bytes, that a model of shape `c` needs for a batch of
// `batch` sequences of `T` tokens: the f32 parameters, and when `training` also their gradients
// and both AdamW moments (16 bytes per parameter in all), plus the activations kept for the
// backward pass (per layer: ~16C values per token, the NH x T x T attention weights, the MoE
// layers' dispatched copies) and the (tokens x V) logits with their gradient. Inference keeps one
// layer's activations at a time. Used to refuse shapes that cannot fit before allocating them.
double estimated_bytes(const GPTConfig& c, int batch, int T, bool training = true);

// Training compute per token, SPEC §5: the paper's count (incl. activation recomputation)
//   F_tok = 96 L C^2 (1 + T/(6C)) + 6 C V,  plus 64 C^2 per MoE layer for top-2 routing
//   (the second expert's FFN, 16 C^2 forward x 4 for forward + recompute + backward; with MoE in
//   every other layer this is the paper's 32 L C^2),
// and the plain model-FLOPs count used for MFU: 6 * (active parameters) + 12 L T C (attention).
double paper_flops_per_token(const GPTConfig& c);
double model_flops_per_token(const GPTConfig& c, int64_t active_params);

}  // namespace moe
