// config.cpp — GPTConfig validation, (de)serialisation to checkpoint metadata, compute formulas,
// and the parameter count and memory estimate used to refuse impossible shapes (notes/design.md
// "Hardening").
#include "nn/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

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

namespace {

// Where a meta value came from, for messages: "checkpoint 'x.bin'" or "the checkpoint metadata".
std::string meta_source(const std::string& source) {
  return source.empty() ? std::string("the checkpoint metadata")
                        : str_cat("checkpoint '", source, "'");
}

const std::string* find_meta(const std::vector<std::pair<std::string, std::string>>& meta,
                             const std::string& key) {
  for (const auto& [k, v] : meta)
    if (k == key) return &v;
  return nullptr;
}

[[noreturn]] void bad_meta(const std::string& source, const std::string& key,
                           const std::string& value, const std::string& why) {
  throw Error(str_cat(meta_source(source), ": meta entry '", key, "' is '", value, "', ", why,
                      ". HINT: the file was damaged or edited; use another checkpoint (or the "
                      "one the run wrote before it)"));
}

}  // namespace

int64_t parse_meta_int(const std::string& value, const std::string& key, int64_t lo, int64_t hi,
                       const std::string& source) {
  errno = 0;
  char* end = nullptr;
  const long long v = value.empty() ? 0 : std::strtoll(value.c_str(), &end, 10);
  if (value.empty() || end != value.c_str() + value.size() || std::isspace(uint8_t(value[0])))
    bad_meta(source, key, value, "not an integer");
  if (errno == ERANGE || v < lo || v > hi)
    bad_meta(source, key, value, str_cat("outside the range ", lo, "..", hi, " it may take"));
  return v;
}

double parse_meta_double(const std::string& value, const std::string& key, double lo, double hi,
                         const std::string& source) {
  char* end = nullptr;
  const double v = value.empty() ? 0 : std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || std::isspace(uint8_t(value[0])))
    bad_meta(source, key, value, "not a number");
  if (!std::isfinite(v) || v < lo || v > hi)
    bad_meta(source, key, value, str_cat("outside the range [", lo, ", ", hi, "]"));
  return v;
}

GPTConfig GPTConfig::from_meta(const std::vector<std::pair<std::string, std::string>>& meta,
                               const std::string& source) {
  GPTConfig c;
  // The train flags' ranges (io/flag_table.cpp); the vocabulary comes from a tokenizer instead.
  auto get = [&](const char* key, int64_t lo, int64_t hi, bool required, int fallback) -> int {
    const std::string* v = find_meta(meta, key);
    CHECK(v != nullptr || !required, meta_source(source), " has no meta entry '", key,
          "'. HINT: is this a moe-gpt pretraining checkpoint?");
    return v ? static_cast<int>(parse_meta_int(*v, key, lo, hi, source)) : fallback;
  };
  c.n_layer = get("n-layer", 1, 256, true, 0);
  c.d_model = get("d-model", 8, 65536, true, 0);
  c.n_head = get("n-head", 1, 1024, true, 0);
  c.seq_len = get("seq-len", 2, 65536, true, 0);
  c.vocab_size = get("vocab-size", 2, 1 << 22, true, 0);
  // Dense checkpoints written before MoE existed carry no MoE keys.
  c.moe_experts = get("moe-experts", 0, 4096, false, c.moe_experts);
  c.moe_freq = get("moe-freq", 1, 256, false, c.moe_freq);
  if (const std::string* v = find_meta(meta, "moe-capacity-factor"))
    c.capacity_factor = parse_meta_double(*v, "moe-capacity-factor", 1e-6, 64, source);
  if (const std::string* v = find_meta(meta, "moe-top2-policy")) c.top2_policy = *v;
  if (const std::string* v = find_meta(meta, "dropout"))
    c.dropout = parse_meta_double(*v, "dropout", 0, 0.999999, source);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(str_cat(meta_source(source), " describes a model this build cannot make: ",
                        e.what(), " HINT: the file was damaged or edited; use another checkpoint"));
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

namespace moe {

int64_t param_count(const GPTConfig& c) {
  const int64_t C = c.d_model, H = c.d_ff(), V = c.vocab_size, E = c.moe_experts;
  const int64_t attention = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C;  // ln1, qkv, proj, ln2
  const int64_t dense_ffn = H * C + H + C * H + C;
  const int64_t moe_ffn = E * C + E * (C * H + H + H * C + C);  // gate + E experts
  int64_t n = V * C + 2 * C;                                     // tied embedding, ln_f
  for (int i = 0; i < c.n_layer; ++i) n += attention + (c.is_moe_layer(i) ? moe_ffn : dense_ffn);
  return n;
}

double estimated_bytes(const GPTConfig& c, int batch, int T, bool training) {
  const double P = static_cast<double>(param_count(c));
  const double N = static_cast<double>(batch) * T, C = c.d_model, H = c.d_ff();
  // Kept for the backward pass per layer: ~8 C-wide and 2 H-wide values per token (layer norm
  // outputs, qkv, attention output, residuals, FFN pre- and post-activation) and the attention
  // weights P (B, NH, T, T) (ops/attention.h). Lower bounds: transient buffers are not counted.
  const double attn = static_cast<double>(batch) * c.n_head * T * T;
  const double dense_layer = N * (8.0 * C + 2.0 * H) + attn;
  // An MoE layer also holds its (E, Cap, .) dispatch buffers: ~2N capacity_factor slots.
  const double slots = 2.0 * N * std::max(1.0, c.capacity_factor);
  const double moe_layer = dense_layer + slots * (2.0 * C + 2.0 * H);
  const double logits = N * c.vocab_size * 2.0;
  double values = 0;
  if (training) {
    values = 4.0 * P + logits;  // weights, gradients, AdamW m and v
    for (int i = 0; i < c.n_layer; ++i) values += c.is_moe_layer(i) ? moe_layer : dense_layer;
  } else {
    values = P + std::max(c.is_moe() ? moe_layer : dense_layer, logits);
  }
  return 4.0 * values;  // f32
}

}  // namespace moe
