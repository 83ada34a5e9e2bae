// generate.h — text generation from a trained GPT with a key/value cache (notes/design.md
// "Hardening" "Text generation"; the model is SPEC §2, the MoE layers SPEC §3).
//
// Autoregressive sampling: the prompt is run through the model once (prefill), then every new
// token costs one position. For that, each layer keeps the keys and values of the positions it has
// seen (the KV cache): a new token's query attends to them, and nothing before it is recomputed.
// The forward pass here mirrors GPT's own layer by layer (src/nn/gpt.cpp), built only from the
// public parameters (model.params().get(name)) and the ops, so a cached step gives the logits a
// full forward_logits over the same window gives (tests/nn/test_generate.cpp checks it, dense
// and MoE, at every step).
//
// MoE layers: every token is routed on its own, with an evaluation capacity of ceil(1.0 * N)
// slots per expert, so no assignment is ever dropped. A token's output then depends on that token
// alone, which is what a cache needs: with the training capacity rule a token could be dropped or
// kept depending on which other tokens shared its call. (A full forward with
// --eval-capacity-fraction 1 routes identically.) The top-2 policy is the model's; the paper's
// "all" draws nothing, the other two draw from a generator seeded by the sampling seed.
//
// Context: positions are absolute (sinusoidal, SPEC §2) and the model has T of them. When the
// window is full, the cache is rebuilt from the last ceil(T/2) tokens (one prefill) and
// generation goes on: each token still sees at least T/2 tokens of context, and the rebuild costs
// one prefill per T/2 new tokens.
//
// Prompts: the text is encoded as eval encodes prompts (SPEC §5: a newline is </s>), after one
// </s> that marks the document start; an empty prompt samples from the document start. The
// continuation is decoded with </s> shown as a newline.
//
// Sampling: temperature 0 is greedy (the most likely token; ties to the lowest id). Otherwise
// logits / temperature, restricted to the top_k most likely tokens when top_k > 0 (ties broken
// by the lower id, so exactly k survive), softmax in double, one uniform draw from moe::Rng
// seeded by `seed`: the same seed gives the same text on every machine and device that gives the
// same logits.
//
// Left out: batched generation of several prompts, beam search, nucleus (top-p) sampling,
// repetition penalties, stop strings (a newline is an ordinary token here).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace moe {

class BpeTokenizer;
class GPT;

struct GenerateConfig {
  std::string prompt;        // text to continue ("" = from the document start)
  int max_new_tokens = 64;   // >= 1
  double temperature = 1.0;  // 0 = greedy
  int top_k = 0;             // 0 = the whole vocabulary
  uint64_t seed = 1;
};

// The model's forward pass one position at a time, over a window of at most T tokens.
class KVCacheDecoder {
 public:
  // `seed` feeds the MoE top-2 policy's draws (none for the paper's "all").
  explicit KVCacheDecoder(GPT& model, uint64_t seed = 0);
  // Start a new window: run `tokens` (1..T of them) through the model, keep every layer's keys
  // and values, and return the logits (V) that predict the token after the last one.
  std::vector<float> prefill(const std::vector<int32_t>& tokens);
  // Append one token to the window (length() < T) and return the logits that predict the next.
  std::vector<float> step(int32_t token);

  int length() const { return static_cast<int>(window_.size()); }
  int capacity() const;  // T
  const std::vector<int32_t>& window() const { return window_; }

 private:
  Tensor block_step(int layer, const Tensor& x, int first_pos, int n);
  Tensor attention_step(int layer, const Tensor& qkv, int pos);
  Tensor ffn(int layer, const Tensor& h);
  std::vector<float> logits_of_last(const Tensor& x_last);
  Tensor param(const std::string& name) const;

  GPT& model_;
  std::vector<Tensor> k_cache_, v_cache_;  // per layer (T, C) on the model's device
  Tensor pos_;                             // (T, C) sinusoidal positions on the device
  Tensor head_mask_, head_mask_scaled_;    // (NH, C): 1 (or 1/sqrt(hs)) inside head h's columns
  Tensor ones_col_, ones_row_;             // (NH, 1) and (1, NH)
  std::vector<int32_t> window_;
  CounterRng rng_;  // the MoE top-2 policy's draws (none for "all")
};

// The next token from a row of logits (see the file comment). CHECK-fails on non-finite logits.
int32_t sample_next_token(const std::vector<float>& logits, double temperature, int top_k,
                          Rng& rng);

// Called with the window the logits were computed on (the context the model saw) and the logits,
// before each token is chosen; tests compare them with a full recomputation.
using GenerateObserver =
    std::function<void(const std::vector<int32_t>& window, const std::vector<float>& logits)>;

// Token level: `max_new_tokens` tokens after `prompt` (non-empty; its last T tokens are used).
std::vector<int32_t> generate_tokens(GPT& model, const std::vector<int32_t>& prompt,
                                     const GenerateConfig& cfg,
                                     const GenerateObserver& observer = nullptr);

// The prompt as the model sees it: </s>, then the text with every '\n' as </s>.
std::vector<int32_t> encode_prompt(const BpeTokenizer& tok, const std::string& text);

// Text level: the continuation of cfg.prompt (without the prompt), </s> shown as '\n'.
std::string generate_text(GPT& model, const BpeTokenizer& tok, const GenerateConfig& cfg);

}  // namespace moe
