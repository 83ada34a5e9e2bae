// config.cpp — GPTConfig validation, (de)serialisation to checkpoint metadata, compute formulas.
#include "nn/config.h"

#include "core/check.h"

namespace moe {

int GPTConfig::n_moe_layers() const {
  int n = 0;
  for (int i = 0; i < n_layer; ++i) n += is_moe_layer(i) ? 1 : 0;
  return n;
}

std::vector<std::pair<std::string, std::string>> GPTConfig::to_meta() const {
  return {{"n-layer", std::to_string(n_layer)},   {"d-model", std::to_string(d_model)},
          {"n-head", std::to_string(n_head)},     {"seq-len", std::to_string(seq_len)},
          {"vocab-size", std::to_string(vocab_size)},
          {"moe-experts", std::to_string(moe_experts)},
          {"moe-freq", std::to_string(moe_freq)},
          {"moe-capacity-factor", str_cat(capacity_factor)},
          {"moe-top2-policy", top2_policy}};
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
  // Dense checkpoints written before MoE existed carry no MoE keys.
  for (const auto& [k, v] : meta) {
    if (k == "moe-experts") c.moe_experts = std::stoi(v);
    if (k == "moe-freq") c.moe_freq = std::stoi(v);
    if (k == "moe-capacity-factor") c.capacity_factor = std::stod(v);
    if (k == "moe-top2-policy") c.top2_policy = v;
  }
  return c;
}

void GPTConfig::validate() const {
  CHECK(n_layer >= 1, "--n-layer must be at least 1, got ", n_layer);
  CHECK(n_head >= 1 && d_model % n_head == 0, "--d-model (", d_model,
        ") must be divisible by --n-head (", n_head, ")");
  CHECK(seq_len >= 2, "--seq-len must be at least 2, got ", seq_len);
  CHECK(vocab_size >= 2, "vocabulary too small: ", vocab_size);
  CHECK(dropout >= 0.0 && dropout < 1.0, "--dropout must be in [0, 1), got ", dropout);
  CHECK(moe_experts >= 0, "--moe-experts must be >= 0 (0 = dense), got ", moe_experts);
  CHECK(moe_experts != 1, "--moe-experts 1 cannot do top-2 routing. HINT: use 0 (dense) or >= 2");
  CHECK(moe_freq >= 1, "--moe-freq must be at least 1, got ", moe_freq);
  CHECK(!is_moe() || n_moe_layers() > 0, "--moe-freq ", moe_freq, " with --n-layer ", n_layer,
        " leaves no MoE layer. HINT: use --moe-freq <= --n-layer");
  CHECK(top2_policy == "all" || top2_policy == "sampling" || top2_policy == "random",
        "--moe-top2-policy must be all, sampling or random, got '", top2_policy, "'");
}

double paper_flops_per_token(const GPTConfig& c) {
  const double L = c.n_layer, C = c.d_model, T = c.seq_len, V = c.vocab_size;
  return 96.0 * L * C * C * (1.0 + T / (6.0 * C)) + 6.0 * C * V + 64.0 * C * C * c.n_moe_layers();
}

double model_flops_per_token(const GPTConfig& c, int64_t active_params) {
  return 6.0 * static_cast<double>(active_params) +
         12.0 * c.n_layer * static_cast<double>(c.seq_len) * c.d_model;
}

}  // namespace moe
