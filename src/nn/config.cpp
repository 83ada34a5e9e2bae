// config.cpp — GPTConfig validation, (de)serialisation to checkpoint metadata, compute formulas.
#include "nn/config.h"

#include "core/check.h"

namespace moe {

std::vector<std::pair<std::string, std::string>> GPTConfig::to_meta() const {
  return {{"n-layer", std::to_string(n_layer)},   {"d-model", std::to_string(d_model)},
          {"n-head", std::to_string(n_head)},     {"seq-len", std::to_string(seq_len)},
          {"vocab-size", std::to_string(vocab_size)}};
}

GPTConfig GPTConfig::from_meta(const std::vector<std::pair<std::string, std::string>>& meta) {
  GPTConfig c;
  auto get = [&](const char* key) -> int {
    for (const auto& [k, v] : meta)
      if (k == key) return std::stoi(v);
    CHECK(false, "checkpoint metadata has no '", key, "'. HINT: is this a moe-gpt checkpoint?");
    return 0;
  };
  c.n_layer = get("n-layer");
  c.d_model = get("d-model");
  c.n_head = get("n-head");
  c.seq_len = get("seq-len");
  c.vocab_size = get("vocab-size");
  return c;
}

void GPTConfig::validate() const {
  CHECK(n_layer >= 1, "--n-layer must be at least 1, got ", n_layer);
  CHECK(n_head >= 1 && d_model % n_head == 0, "--d-model (", d_model,
        ") must be divisible by --n-head (", n_head, ")");
  CHECK(seq_len >= 2, "--seq-len must be at least 2, got ", seq_len);
  CHECK(vocab_size >= 2, "vocabulary too small: ", vocab_size);
  CHECK(dropout >= 0.0 && dropout < 1.0, "--dropout must be in [0, 1), got ", dropout);
}

double paper_flops_per_token(const GPTConfig& c) {
  const double L = c.n_layer, C = c.d_model, T = c.seq_len, V = c.vocab_size;
  return 96.0 * L * C * C * (1.0 + T / (6.0 * C)) + 6.0 * C * V;
}

double model_flops_per_token(const GPTConfig& c, int64_t active_params) {
  return 6.0 * static_cast<double>(active_params) +
         12.0 * c.n_layer * static_cast<double>(c.seq_len) * c.d_model;
}

}  // namespace moe
