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
  double dropout = 0.1;   // embedding, attention, residual dropout (SPEC §2)

  int d_ff() const { return 4 * d_model; }
  int head_size() const { return d_model / n_head; }

  // The keys that must agree between a checkpoint and the model it is loaded into.
  std::vector<std::pair<std::string, std::string>> to_meta() const;
  static GPTConfig from_meta(const std::vector<std::pair<std::string, std::string>>& meta);
  void validate() const;  // CHECK-fails with the offending flag named
};

// Training compute per token, SPEC §5: the paper's count (incl. activation recomputation)
//   F_tok = 96 L C^2 (1 + T/(6C)) + 6 C V
// and the plain model-FLOPs count used for MFU: 6 * (active parameters) + 12 L T C (attention).
double paper_flops_per_token(const GPTConfig& c);
double model_flops_per_token(const GPTConfig& c, int64_t active_params);

}  // namespace moe
