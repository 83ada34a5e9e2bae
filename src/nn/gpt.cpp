// gpt.cpp — the GPT model, dense and MoE (SPEC §2-3): parameters, initialisation and the forward
// pass, with the padding mask of right-padded batches for the MoE gates (SPEC §3 step 5a).
#include "nn/gpt.h"

#include <cmath>

#include "dist/dist.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/linear.h"
#include "ops/shape.h"
#include "ops/softmax_xent.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// initialisation helpers (all draw from one Rng in registration order, so a seed fixes the model)

static Tensor uniform(const Shape& shape, double bound, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>((2 * rng.uniform() - 1) * bound);
  return t;
}

static Tensor normal(const Shape& shape, double std, Rng& rng) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal() * std);
  return t;
}

// Xavier/Glorot uniform: U(+-gain * sqrt(6 / (fan_in + fan_out))).
static double xavier_bound(int64_t fan_in, int64_t fan_out, double gain) {
  return gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
}

Tensor sinusoidal_positions(int T, int C) {
  CHECK(C % 2 == 0 && C >= 4, "sinusoidal positions need an even --d-model >= 4, got ", C);
  const int half = C / 2;
  Tensor t = Tensor::empty({T, C});  // (T, C)
  float* p = t.data<float>();
  for (int pos = 0; pos < T; ++pos) {
    const double fairseq_pos = pos + 2;  // padding_idx (1) + 1 + t
    for (int k = 0; k < half; ++k) {
      const double freq = std::exp(-static_cast<double>(k) * std::log(10000.0) / (half - 1));
      p[pos * C + k] = static_cast<float>(std::sin(fairseq_pos * freq));
      p[pos * C + half + k] = static_cast<float>(std::cos(fairseq_pos * freq));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// construction

// Rows [first, first + n) of dim 0 of `full`, as a tensor of its own (the rest is freed).
static Tensor own_slice(const Tensor& full, int64_t first, int64_t n) {
  Shape shape = full.shape();
  shape[0] = n;
  Tensor out = Tensor::empty(shape, full.dtype());
  out.copy_from(full.slice_view(0, first, first + n));
  return out;
}

GPT::GPT(const GPTConfig& cfg, uint64_t seed, Device device, ExpertParallel ep)
    : cfg_(cfg), device_(device), ep_(ep) {
  cfg_.validate();
  if (cfg.is_moe())
    CHECK(ep.world >= 1 && cfg.moe_experts % ep.world == 0 && cfg.moe_experts >= ep.world,
          "expert parallelism: ", cfg.moe_experts, " experts cannot be split evenly over ",
          ep.world, " ranks (E % W must be 0 and E >= W). HINT: run with a number of ranks that "
          "divides --moe-experts");
  Rng rng(seed);
  const int C = cfg.d_model, H = cfg.d_ff(), V = cfg.vocab_size;
  const double lin_c = 1.0 / std::sqrt(static_cast<double>(C));  // U(+-1/sqrt(fan_in)), fan_in C
  const double lin_h = 1.0 / std::sqrt(static_cast<double>(H));  // fan_in H
  wte_ = params_.add("wte", normal({V, C}, std::pow(C, -0.5), rng));
  for (int l = 0; l < cfg.n_layer; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    BlockParams b;
    b.ln1_w = params_.add(pre + "ln1.weight", Tensor::full({C}, 1.0));
    b.ln1_b = params_.add(pre + "ln1.bias", Tensor::zeros({C}));
    // q, k, v are three (C, C) Xavier matrices with gain 1/sqrt(2), stacked into (3C, C).
    b.qkv_w = params_.add(pre + "attn.qkv.weight",
                          uniform({3 * C, C}, xavier_bound(C, C, 1.0 / std::sqrt(2.0)), rng));
    b.qkv_b = params_.add(pre + "attn.qkv.bias", uniform({3 * C}, lin_c, rng));
    b.proj_w = params_.add(pre + "attn.proj.weight", uniform({C, C}, xavier_bound(C, C, 1.0), rng));
    b.proj_b = params_.add(pre + "attn.proj.bias", Tensor::zeros({C}));
    b.ln2_w = params_.add(pre + "ln2.weight", Tensor::full({C}, 1.0));
    b.ln2_b = params_.add(pre + "ln2.bias", Tensor::zeros({C}));
    if (cfg.is_moe_layer(l)) {
      // The MoE counterpart: E experts of the dense FFN's shape, each with its own draws.
      b.is_moe = true;
      MoEParams m = moe_params_init(cfg.moe_experts, C, H, rng);  // all E, then this rank's
      if (ep.world > 1) {
        const int64_t first = ep.first_expert(cfg.moe_experts), n = ep.local_experts(cfg.moe_experts);
        m.w1 = own_slice(m.w1, first, n);
        m.b1 = own_slice(m.b1, first, n);
        m.w2 = own_slice(m.w2, first, n);
        m.b2 = own_slice(m.b2, first, n);
      }
      b.moe.wg = params_.add(pre + "moe.gate.weight", m.wg);
      b.moe.w1 = params_.add(pre + "moe.experts.w1", m.w1);
      b.moe.b1 = params_.add(pre + "moe.experts.b1", m.b1);
      b.moe.w2 = params_.add(pre + "moe.experts.w2", m.w2);
      b.moe.b2 = params_.add(pre + "moe.experts.b2", m.b2);
    } else {
      b.fc1_w = params_.add(pre + "ffn.fc1.weight", uniform({H, C}, lin_c, rng));
      b.fc1_b = params_.add(pre + "ffn.fc1.bias", uniform({H}, lin_c, rng));
      b.fc2_w = params_.add(pre + "ffn.fc2.weight", uniform({C, H}, lin_h, rng));
      b.fc2_b = params_.add(pre + "ffn.fc2.bias", uniform({C}, lin_h, rng));
    }
    blocks_.push_back(b);
  }
  lnf_w_ = params_.add("ln_f.weight", Tensor::full({C}, 1.0));
  lnf_b_ = params_.add("ln_f.bias", Tensor::zeros({C}));
  pos_table_ = sinusoidal_positions(cfg.seq_len, C);
  if (!device_.is_cpu()) move_to_device();
}

// Drawn on the CPU, then moved: every BlockParams handle is re-pointed at the device copy that
// the registry now holds (the registry and the blocks must share the same leaves).
void GPT::move_to_device() {
  params_.to(device_);
  wte_ = params_.get("wte");
  lnf_w_ = params_.get("ln_f.weight");
  lnf_b_ = params_.get("ln_f.bias");
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    BlockParams& b = blocks_[l];
    auto get = [&](const std::string& name) { return params_.get(pre + name); };
    b.ln1_w = get("ln1.weight");
    b.ln1_b = get("ln1.bias");
    b.qkv_w = get("attn.qkv.weight");
    b.qkv_b = get("attn.qkv.bias");
    b.proj_w = get("attn.proj.weight");
    b.proj_b = get("attn.proj.bias");
    b.ln2_w = get("ln2.weight");
    b.ln2_b = get("ln2.bias");
    if (b.is_moe) {
      b.moe.wg = get("moe.gate.weight");
      b.moe.w1 = get("moe.experts.w1");
      b.moe.b1 = get("moe.experts.b1");
      b.moe.w2 = get("moe.experts.w2");
      b.moe.b2 = get("moe.experts.b2");
    } else {
      b.fc1_w = get("ffn.fc1.weight");
      b.fc1_b = get("ffn.fc1.bias");
      b.fc2_w = get("ffn.fc2.weight");
      b.fc2_b = get("ffn.fc2.bias");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// forward

// Built once per (B, T) and kept on the device: a step adds it without any host work.
const Tensor& GPT::positions(int B, int T) {
  const int C = cfg_.d_model;
  if (pos_batch_.defined() && pos_batch_.size(0) == B && pos_batch_.size(1) == T) return pos_batch_;
  Tensor host = Tensor::empty({B, T, C});  // (B, T, C): the (T, C) table repeated per sequence
  for (int b = 0; b < B; ++b)
    host.slice_view(0, b, b + 1).view({T, C}).copy_from(pos_table_.slice_view(0, 0, T));
  pos_batch_ = host.to(device_);
  return pos_batch_;
}

Tensor GPT::block_forward(const Tensor& x, const BlockParams& p, bool training, CounterRng& rng,
                          const Tensor& token_mask) {
  const double pd = training ? cfg_.dropout : 0.0;
  // x = x + Dropout(Attn(LN1(x)))
  Tensor h = layernorm(x, p.ln1_w, p.ln1_b, 1e-5);                         // (B, T, C)
  Tensor qkv = linear(h, p.qkv_w, p.qkv_b);                                // (B, T, 3C)
  Tensor a = causal_self_attention(qkv, cfg_.n_head, pd, training, rng);   // (B, T, C)
  a = dropout(linear(a, p.proj_w, p.proj_b), pd, training, rng);           // (B, T, C)
  Tensor x1 = add(x, a);
  // x = x + Dropout(FFN(LN2(x)))   (the FFN is E experts in an MoE block)
  h = layernorm(x1, p.ln2_w, p.ln2_b, 1e-5);                               // (B, T, C)
  return add(x1, ffn_forward(h, p, training, rng, token_mask));
}

MoEConfig GPT::moe_config() const {
  MoEConfig mc;
  mc.num_experts = cfg_.moe_experts;
  mc.capacity_factor = cfg_.capacity_factor;
  mc.eval_capacity_fraction = cfg_.eval_capacity_fraction;
  mc.top2_policy = cfg_.top2_policy;
  mc.expert_dropout = cfg_.dropout;
  mc.ep = ep_;
  return mc;
}

std::string GPT::moe_capacity_rule(bool training) const {
  return cfg_.is_moe() ? moe::moe_capacity_rule(moe_config(), training) : std::string();
}

Tensor GPT::ffn_forward(const Tensor& h, const BlockParams& p, bool training, CounterRng& rng,
                        const Tensor& token_mask) {
  const double pd = training ? cfg_.dropout : 0.0;
  if (!p.is_moe) {
    Tensor f = gelu(linear(h, p.fc1_w, p.fc1_b));                         // (B, T, H)
    return dropout(linear(f, p.fc2_w, p.fc2_b), pd, training, rng);       // (B, T, C)
  }
  // Tokens are routed as N = B*T rows, batch-major then position (SPEC §3); the mask is in the
  // same order.
  MoEOutput o = moe_layer_forward(h, p.moe, moe_config(), training, rng, token_mask);  // y (B,T,C)
  aux_loss_ = aux_loss_.defined() ? add(aux_loss_, o.l_aux) : o.l_aux;
  moe_raw_stats_.emplace_back(o.raw_stats, o.capacity);
  return o.y;
}

// Under expert parallelism every field of the raw statistics is a count or a sum over tokens,
// so the sum over ranks gives the statistics of the whole global batch exactly; l_aux, a
// per-rank value, becomes the mean over ranks. Collective then: every rank calls it together.
std::vector<MoEStats> GPT::moe_stats() const {
  std::vector<MoEStats> out;
  for (const auto& [raw, cap] : moe_raw_stats_) {
    if (ep_.world <= 1) {
      out.push_back(moe_stats_from_tensor(raw, cap));
      continue;
    }
    std::vector<double> v = raw.to_f64_vector();
    dist_sum_inplace(v);
    v[kStatLAux] /= ep_.world;
    const Tensor sum = Tensor::from_f64(v, {static_cast<int64_t>(v.size())}).to(DType::F32);
    out.push_back(moe_stats_from_tensor(sum, cap));
  }
  return out;
}

std::vector<int> GPT::moe_layer_indices() const {
  std::vector<int> idx;
  for (int l = 0; l < cfg_.n_layer; ++l)
    if (cfg_.is_moe_layer(l)) idx.push_back(l);
  return idx;
}

int64_t GPT::active_param_count() const {
  int64_t active = 0;
  for (const auto& [name, t] : params_.all()) {
    if (is_expert_param(name)) active += t.numel() / t.size(0) * 2;  // 2 experts of E
    else active += t.numel();
  }
  return active;
}

int64_t GPT::param_count_all_ranks() const {
  int64_t n = 0;
  for (const auto& [name, t] : params_.all()) n += t.numel() * (is_expert_param(name) ? ep_.world : 1);
  return n;
}

bool GPT::is_expert_param(const std::string& name) {
  return name.find(".moe.experts.") != std::string::npos;
}

Tensor GPT::padding_mask(const Tensor& lengths, int B, int T) const {
  if (!lengths.defined()) return Tensor();
  CHECK(lengths.dim() == 1 && lengths.size(0) == B && lengths.dtype() == DType::I32,
        "lengths must be (B,) = (", B, ",) i32, the real tokens of each row of the batch, got ",
        lengths.desc(), ". HINT: pass one length per row of ids, or no lengths for a batch "
        "without padding");
  const std::vector<int32_t> len = lengths.to_i32_vector();  // host values (a copy if on a GPU)
  bool padded = false;
  for (int b = 0; b < B; ++b) {
    CHECK(len[b] >= 0 && len[b] <= T, "lengths[", b, "] = ", len[b], " is not in [0, ", T,
          "] for a batch of ", T, " positions. HINT: a row's length counts its real tokens, "
          "which come first (right padding)");
    padded = padded || len[b] < T;
  }
  if (!cfg_.is_moe() || !padded) return Tensor();  // nothing would change: skip the copy
  std::vector<int32_t> mask(static_cast<size_t>(B) * T);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) mask[static_cast<size_t>(b) * T + t] = t < len[b] ? 1 : 0;
  return Tensor::from_i32(mask, {static_cast<int64_t>(B) * T}).to(device_);
}

Tensor GPT::forward_hidden(const Tensor& ids_in, bool training, CounterRng& rng,
                           const Tensor& lengths) {
  CHECK(ids_in.dim() == 2, "model input must be (B, T) token ids, got ", ids_in.desc());
  const Tensor ids = ids_in.to(device_);  // a no-op when the batch is already on the device
  const int B = static_cast<int>(ids.size(0)), T = static_cast<int>(ids.size(1));
  CHECK(T <= cfg_.seq_len, "sequence of ", T, " tokens is longer than the model's context (",
        cfg_.seq_len, ")");
  const Tensor token_mask = padding_mask(lengths, B, T);  // (B*T) on the device, or undefined
  const double pd = training ? cfg_.dropout : 0.0;
  aux_loss_ = Tensor();
  moe_raw_stats_.clear();
  Tensor x = scale(embedding(ids, wte_), std::sqrt(static_cast<double>(cfg_.d_model)));  // (B, T, C)
  x = dropout(add(x, positions(B, T)), pd, training, rng);
  for (const BlockParams& p : blocks_) x = block_forward(x, p, training, rng, token_mask);
  return layernorm(x, lnf_w_, lnf_b_, 1e-5);  // (B, T, C)
}

Tensor GPT::forward_logits(const Tensor& ids, CounterRng& rng, const Tensor& lengths) {
  Tensor h = forward_hidden(ids, false, rng, lengths);               // (B, T, C)
  Tensor flat = reshape(h, {h.size(0) * h.size(1), cfg_.d_model});   // (N, C)
  return linear(flat, wte_, Tensor());                               // (N, V) tied weights
}

Tensor GPT::forward_loss(const Tensor& ids, const Tensor& targets, bool training, CounterRng& rng) {
  check_same_shape(ids, targets, "forward_loss: ids and targets");
  Tensor h = forward_hidden(ids, training, rng);                     // (B, T, C)
  Tensor flat = reshape(h, {h.size(0) * h.size(1), cfg_.d_model});   // (N, C)
  Tensor logits = linear(flat, wte_, Tensor());                      // (N, V)
  return softmax_cross_entropy(logits, targets.to(device_).contiguous().view({targets.numel()}));
}

}  // namespace moe
