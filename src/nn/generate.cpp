// generate.cpp — see generate.h. The layer math is GPT::block_forward's (src/nn/gpt.cpp); only
// the attention of a cached step differs in form, not in value:
//
// One new query q (1, C) against the t cached keys K (t, C) and values V (t, C), all heads at
// once, with plain ops and no per-head copies. Let M (NH, C) hold 1 in head h's columns of row h
// and 0 elsewhere. Then
//   Q   = (1_NH q) * M / sqrt(hs)      (NH, C)   row h: head h's query, zero outside its columns
//   P   = softmax_rows(Q K^T)          (NH, t)   row h: head h's attention weights (Q K^T puts
//                                                 q_h . k_h(u) / sqrt(hs) in entry (h, u))
//   O   = (P V) * M                    (NH, C)   row h keeps head h's columns of its mixture
//   out = 1^T O                        (1, C)    the heads side by side, as the full op returns
// The row softmax of Q K^T is exactly what the MoE router computes (softmax(x @ wg^T), src/moe/
// gate.h) with x = Q and wg = K, on both devices, so it is used for it. The products cost NH times
// the per-head ones; next to the (3C + C + 8C) x C weight products of a step this stays small
// for the head counts of the paper (NH <= 40).
#include "nn/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd.h"
#include "core/check.h"
#include "data/bpe.h"
#include "moe/gate.h"
#include "moe/moe_layer.h"
#include "nn/gpt.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/linear.h"
#include "ops/shape.h"

namespace moe {

namespace {

constexpr double kLnEps = 1e-5;  // GPT's layer norms

std::string block_name(int layer, const char* rest) {
  return "blocks." + std::to_string(layer) + "." + rest;
}

}  // namespace

KVCacheDecoder::KVCacheDecoder(GPT& model, uint64_t seed) : model_(model), rng_(seed, 0) {
  const GPTConfig& c = model_.config();
  const Device dev = model_.device();
  const int C = c.d_model, NH = c.n_head, T = c.seq_len, hs = c.head_size();
  for (int l = 0; l < c.n_layer; ++l) {
    k_cache_.push_back(Tensor::zeros({T, C}, DType::F32, dev));
    v_cache_.push_back(Tensor::zeros({T, C}, DType::F32, dev));
  }
  pos_ = sinusoidal_positions(T, C).to(dev);
  std::vector<float> mask(static_cast<size_t>(NH) * C, 0.0f), scaled = mask;
  for (int h = 0; h < NH; ++h)
    for (int j = h * hs; j < (h + 1) * hs; ++j) {
      mask[static_cast<size_t>(h) * C + j] = 1.0f;
      scaled[static_cast<size_t>(h) * C + j] = static_cast<float>(1.0 / std::sqrt(double(hs)));
    }
  head_mask_ = Tensor::from_f32(mask, {NH, C}).to(dev);
  head_mask_scaled_ = Tensor::from_f32(scaled, {NH, C}).to(dev);
  ones_col_ = Tensor::full({NH, 1}, 1.0).to(dev);
  ones_row_ = Tensor::full({1, NH}, 1.0).to(dev);
}

int KVCacheDecoder::capacity() const { return model_.config().seq_len; }

Tensor KVCacheDecoder::param(const std::string& name) const { return model_.params().get(name); }

// The FFN of block `layer` on h (..., C): the dense MLP, or the experts with a capacity that
// drops nothing (see generate.h).
Tensor KVCacheDecoder::ffn(int layer, const Tensor& h) {
  const GPTConfig& c = model_.config();
  if (!c.is_moe_layer(layer)) {
    const Tensor f = gelu(linear(h, param(block_name(layer, "ffn.fc1.weight")),
                                 param(block_name(layer, "ffn.fc1.bias"))));
    return linear(f, param(block_name(layer, "ffn.fc2.weight")),
                  param(block_name(layer, "ffn.fc2.bias")));
  }
  MoEParams p;
  p.wg = param(block_name(layer, "moe.gate.weight"));
  p.w1 = param(block_name(layer, "moe.experts.w1"));
  p.b1 = param(block_name(layer, "moe.experts.b1"));
  p.w2 = param(block_name(layer, "moe.experts.w2"));
  p.b2 = param(block_name(layer, "moe.experts.b2"));
  MoEConfig mc;
  mc.num_experts = c.moe_experts;
  mc.capacity_factor = c.capacity_factor;
  mc.eval_capacity_fraction = 1.0;  // Cap = N: no token is ever dropped
  mc.top2_policy = c.top2_policy;
  mc.expert_dropout = 0.0;
  mc.ep = model_.expert_parallel();  // W ranks: every rank decodes in step (same shapes)
  return moe_layer_forward(h, p, mc, false, rng_).y;
}

// One query (row `pos` of the window, whose k and v are already cached) against the cache.
Tensor KVCacheDecoder::attention_step(int layer, const Tensor& qkv, int pos) {
  const int C = model_.config().d_model;
  const Tensor q = slice(qkv, 1, 0, C);                                     // (1, C)
  const Tensor keys = k_cache_[layer].slice_view(0, 0, pos + 1);            // (t, C)
  const Tensor values = v_cache_[layer].slice_view(0, 0, pos + 1);          // (t, C)
  const Tensor Q = mul(matmul(ones_col_, q), head_mask_scaled_);            // (NH, C)
  const Tensor P = router(Q, keys).probs;                                   // (NH, t)
  const Tensor O = mul(matmul(P, values), head_mask_);                      // (NH, C)
  return matmul(ones_row_, O);                                              // (1, C)
}

// Block `layer` on x: (1, n, C) for a prefill of positions [0, n), or (1, C) for the single
// position first_pos (n = 1). Keys and values go into the cache rows of their positions.
Tensor KVCacheDecoder::block_step(int layer, const Tensor& x, int first_pos, int n) {
  const GPTConfig& c = model_.config();
  const int C = c.d_model;
  const Tensor h = layernorm(x, param(block_name(layer, "ln1.weight")),
                             param(block_name(layer, "ln1.bias")), kLnEps);
  const Tensor qkv = linear(h, param(block_name(layer, "attn.qkv.weight")),
                            param(block_name(layer, "attn.qkv.bias")));   // (..., 3C)
  const int last = qkv.dim() - 1;
  const Tensor k = slice(qkv, last, C, 2 * C).contiguous().view({n, C});
  const Tensor v = slice(qkv, last, 2 * C, 3 * C).contiguous().view({n, C});
  k_cache_[layer].slice_view(0, first_pos, first_pos + n).copy_from(k);
  v_cache_[layer].slice_view(0, first_pos, first_pos + n).copy_from(v);
  Tensor a = x.dim() == 3 ? causal_self_attention(qkv, c.n_head, 0.0, false, rng_)
                          : attention_step(layer, qkv, first_pos);
  a = linear(a, param(block_name(layer, "attn.proj.weight")),
             param(block_name(layer, "attn.proj.bias")));
  const Tensor x1 = add(x, a);
  const Tensor h2 = layernorm(x1, param(block_name(layer, "ln2.weight")),
                              param(block_name(layer, "ln2.bias")), kLnEps);
  return add(x1, ffn(layer, h2));
}

std::vector<float> KVCacheDecoder::logits_of_last(const Tensor& x_last) {
  const Tensor h = layernorm(x_last, param("ln_f.weight"), param("ln_f.bias"), kLnEps);  // (1, C)
  return linear(h, param("wte"), Tensor()).to(cpu()).to_f32_vector();                 // (V)
}

std::vector<float> KVCacheDecoder::prefill(const std::vector<int32_t>& tokens) {
  NoGradGuard no_grad;
  const GPTConfig& c = model_.config();
  const int n = static_cast<int>(tokens.size()), C = c.d_model;
  CHECK(n >= 1 && n <= c.seq_len, "prefill: ", n, " tokens for a context of ", c.seq_len);
  for (const int32_t t : tokens)
    CHECK(t >= 0 && t < c.vocab_size, "token id ", t, " is outside the model's vocabulary of ",
          c.vocab_size);
  window_ = tokens;
  const Tensor ids = Tensor::from_i32(tokens, {1, n}).to(model_.device());
  Tensor x = scale(embedding(ids, param("wte")), std::sqrt(static_cast<double>(C)));  // (1, n, C)
  x = add(x, pos_.slice_view(0, 0, n).view({1, n, C}));
  for (int l = 0; l < c.n_layer; ++l) x = block_step(l, x, 0, n);
  return logits_of_last(slice(x, 1, n - 1, n).contiguous().view({1, C}));
}

std::vector<float> KVCacheDecoder::step(int32_t token) {
  NoGradGuard no_grad;
  const GPTConfig& c = model_.config();
  CHECK(!window_.empty(), "step before prefill: the cache holds no context yet");
  CHECK(length() < c.seq_len, "the window is full (", c.seq_len, " tokens); prefill a shorter one");
  CHECK(token >= 0 && token < c.vocab_size, "token id ", token,
        " is outside the model's vocabulary of ", c.vocab_size);
  const int pos = length();
  window_.push_back(token);
  const Tensor ids = Tensor::from_i32({token}, {1}).to(model_.device());
  Tensor x = scale(embedding(ids, param("wte")), std::sqrt(static_cast<double>(c.d_model)));
  x = add(x, pos_.slice_view(0, pos, pos + 1));                                 // (1, C)
  for (int l = 0; l < c.n_layer; ++l) x = block_step(l, x, pos, 1);
  return logits_of_last(x);
}

// -------------------------------------------------------------------------------------------------
// sampling

int32_t sample_next_token(const std::vector<float>& logits, double temperature, int top_k,
                          Rng& rng) {
  CHECK(!logits.empty(), "no logits to sample from");
  CHECK(std::isfinite(temperature) && temperature >= 0, "--temperature must be >= 0, got ",
        temperature);
  for (const float l : logits)
    CHECK(std::isfinite(l), "the model's logits are not finite (", l, "). HINT: the checkpoint's "
          "weights are damaged or the training diverged; evaluate an earlier checkpoint");
  const int V = static_cast<int>(logits.size());
  // Candidates in order of preference: higher logit first, the lower id on ties.
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  const auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  if (temperature == 0.0) return *std::min_element(order.begin(), order.end(), better);
  const int k = (top_k > 0 && top_k < V) ? top_k : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
  order.resize(static_cast<size_t>(k));
  const double top = logits[order[0]] / temperature;
  std::vector<double> w(static_cast<size_t>(k));
  double z = 0.0;
  for (int i = 0; i < k; ++i) z += (w[i] = std::exp(logits[order[i]] / temperature - top));
  double u = rng.uniform() * z;
  for (int i = 0; i < k; ++i) {
    if (u < w[i]) return order[i];
    u -= w[i];
  }
  return order[static_cast<size_t>(k - 1)];  // u landed on the rounding slack at the very end
}

// -------------------------------------------------------------------------------------------------
// generation

std::vector<int32_t> generate_tokens(GPT& model, const std::vector<int32_t>& prompt,
                                     const GenerateConfig& cfg, const GenerateObserver& observer) {
  CHECK(!prompt.empty(), "generation needs at least one prompt token");
  CHECK(cfg.max_new_tokens >= 1, "--max-new-tokens must be at least 1, got ", cfg.max_new_tokens);
  CHECK(cfg.top_k >= 0, "--top-k must be >= 0, got ", cfg.top_k);
  KVCacheDecoder dec(model, cfg.seed);
  const int T = dec.capacity(), keep = (T + 1) / 2;
  std::vector<int32_t> context = prompt;  // everything so far; the window is its tail
  std::vector<float> logits = dec.prefill(std::vector<int32_t>(
      context.end() - std::min<ptrdiff_t>(T, static_cast<ptrdiff_t>(context.size())),
      context.end()));
  Rng rng(cfg.seed);
  std::vector<int32_t> out;
  while (true) {
    if (observer) observer(dec.window(), logits);
    const int32_t next = sample_next_token(logits, cfg.temperature, cfg.top_k, rng);
    out.push_back(next);
    context.push_back(next);
    if (static_cast<int>(out.size()) == cfg.max_new_tokens) break;
    if (dec.length() < T) logits = dec.step(next);
    else logits = dec.prefill(std::vector<int32_t>(context.end() - keep, context.end()));
  }
  return out;
}

std::vector<int32_t> encode_prompt(const BpeTokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids{tok.eos_id()};
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = std::min(text.find('\n', start), text.size());
    const std::vector<int32_t> part = tok.encode(text.substr(start, nl - start));
    ids.insert(ids.end(), part.begin(), part.end());
    if (nl == text.size()) break;
    ids.push_back(tok.eos_id());
    start = nl + 1;
  }
  return ids;
}

std::string generate_text(GPT& model, const BpeTokenizer& tok, const GenerateConfig& cfg) {
  return tok.decode(generate_tokens(model, encode_prompt(tok, cfg.prompt), cfg));
}

}  // namespace moe
