// test_model_gradcheck.cpp — a whole-model gradient check: a tiny dense GPT and its tiny MoE
// counterpart, in double precision, every element of every parameter (SPEC §2-3; notes/design.md
// "Tests"; in the spirit of llm.c's whole-model test).
//
// Why a whole-model check when every op has its own: it catches what no op test can see — a
// gradient that an op computes correctly but the model wires wrongly (the tied embedding's two
// uses, the residual adds, the MoE aux loss joining the NLL, a parameter left off the tape).
//
// How. GPT builds f32 parameters and f32 position tables, so the f64 model here is the same
// forward written from the same ops, in the order of GPT::forward_hidden / block_forward /
// ffn_forward / forward_loss (src/nn/gpt.cpp), over f64 copies of a real GPT's initial
// parameters (so the shapes, names and initialisation are the real ones). That this is the same
// function is checked first: its loss equals GPT::forward_loss on the f32 parameters within f32
// rounding. Then for each parameter element x_i: the analytic dL/dx_i from one backward() is
// compared with (L(x_i + h) - L(x_i - h)) / 2h.
// The loss is the training loss of SPEC §3 step 10 with the aux weight raised to 1, so the
// load-balancing term's gradient is as visible as the NLL's: L = NLL + 1.0 * sum of l_aux.
//
// MoE routing is discrete: a perturbation that changed which experts a token picks would make
// the difference quotient meaningless. So the capacity is large enough that nothing can drop
// (Cap >= N), dropout is 0, and every evaluation records each token's (e1, e2) and checks that
// it matches the unperturbed routing; a change fails the test, naming the parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/philox.h"
#include "model_config.h"
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
#include "ops/softmax_xent.h"

namespace moe {
namespace {

using testing::gpt_config;

constexpr double kAuxWeight = 1.0;  // SPEC's 0.01, raised so that the aux gradient counts

// f64 leaves named as GPT registers them, plus what the forward needs besides parameters.
struct F64Model {
  GPTConfig cfg;
  std::vector<std::pair<std::string, Tensor>> params;  // registration order
  std::map<std::string, Tensor> by_name;
  Tensor pos;  // (B, T, C) f64 sinusoidal positions, not a parameter
  const Tensor& p(const std::string& name) const { return by_name.at(name); }
};

// f64 leaf copies of `gpt`'s parameters, and its position table repeated over B rows.
F64Model f64_copy(const GPT& gpt, int B, int T) {
  F64Model m;
  m.cfg = gpt.config();
  for (const auto& [name, t] : gpt.params().all()) {
    Tensor leaf = t.to(DType::F64);
    leaf.set_requires_grad(true);
    m.params.emplace_back(name, leaf);
    m.by_name[name] = leaf;
  }
  const int C = m.cfg.d_model;
  const std::vector<double> table = sinusoidal_positions(T, C).to_f64_vector();  // (T, C)
  std::vector<double> rows;
  for (int b = 0; b < B; ++b) rows.insert(rows.end(), table.begin(), table.end());
  m.pos = Tensor::from_f64(rows, {B, T, C});
  return m;
}

// One token's expert choices (e1, e2) in every MoE layer, in order: the routing signature.
using RoutingSig = std::vector<int32_t>;

// The experts the gate picks for h (N, C): the two largest logits (lowest index on ties), as
// top2_select's "all" policy does (SPEC §3 steps 3-4). Off the tape.
void record_routing(const Tensor& h_flat, const Tensor& wg, RoutingSig* sig) {
  NoGradGuard ng;
  const RouterOutput r = router(h_flat, wg);
  const std::vector<double> lg = r.logits.to_f64_vector();
  const int64_t N = r.logits.size(0), E = r.logits.size(1);
  for (int64_t s = 0; s < N; ++s) {
    int e1 = 0, e2 = -1;
    for (int e = 1; e < E; ++e)
      if (lg[s * E + e] > lg[s * E + e1]) e1 = e;
    for (int e = 0; e < E; ++e)
      if (e != e1 && (e2 < 0 || lg[s * E + e] > lg[s * E + e2])) e2 = e;
    sig->push_back(e1), sig->push_back(e2);
  }
}

// The training loss of the model (no dropout), following GPT::forward_loss step by step.
Tensor model_loss(const F64Model& m, const Tensor& ids, const Tensor& targets, RoutingSig* sig,
                  int64_t* dropped = nullptr) {
  const GPTConfig& c = m.cfg;
  const int B = static_cast<int>(ids.size(0)), T = static_cast<int>(ids.size(1));
  const int64_t N = static_cast<int64_t>(B) * T;
  CounterRng rng(0, 0);  // no dropout and the "all" policy: nothing is drawn
  Tensor aux;
  Tensor x = scale(embedding(ids, m.p("wte")), std::sqrt(static_cast<double>(c.d_model)));
  x = add(x, m.pos);                                                          // (B, T, C)
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    auto P = [&](const char* name) { return m.p(pre + name); };
    Tensor h = layernorm(x, P("ln1.weight"), P("ln1.bias"), 1e-5);
    Tensor qkv = linear(h, P("attn.qkv.weight"), P("attn.qkv.bias"));       // (B, T, 3C)
    Tensor a = causal_self_attention(qkv, c.n_head, 0.0, false, rng);        // (B, T, C)
    Tensor x1 = add(x, linear(a, P("attn.proj.weight"), P("attn.proj.bias")));
    h = layernorm(x1, P("ln2.weight"), P("ln2.bias"), 1e-5);
    Tensor f;
    if (c.is_moe_layer(l)) {
      MoEParams mp{P("moe.gate.weight"), P("moe.experts.w1"), P("moe.experts.b1"),
                   P("moe.experts.w2"), P("moe.experts.b2")};
      MoEConfig mc;
      mc.num_experts = c.moe_experts;
      mc.capacity_factor = c.capacity_factor;
      mc.eval_capacity_fraction = c.eval_capacity_fraction;
      mc.top2_policy = c.top2_policy;
      record_routing(reshape(h, {N, c.d_model}), mp.wg, sig);
      MoEOutput o = moe_layer_forward(h, mp, mc, false, rng);
      if (dropped) *dropped += o.stats().fraction_dropped > 0 ? 1 : 0;
      aux = aux.defined() ? add(aux, o.l_aux) : o.l_aux;
      f = o.y;
    } else {
      f = linear(gelu(linear(h, P("ffn.fc1.weight"), P("ffn.fc1.bias"))), P("ffn.fc2.weight"),
                 P("ffn.fc2.bias"));
    }
    x = add(x1, f);
  }
  Tensor hf = reshape(layernorm(x, m.p("ln_f.weight"), m.p("ln_f.bias"), 1e-5), {N, c.d_model});
  Tensor nll = softmax_cross_entropy(linear(hf, m.p("wte"), Tensor()),   // tied output embedding
                                     targets.contiguous().view({N}));
  return aux.defined() ? add(nll, scale(aux, kAuxWeight)) : nll;
}

double value_of(const Tensor& t) { return t.to_f64_vector().at(0); }

struct Batch {
  Tensor ids, targets;
};

Batch random_batch(int B, int T, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(B) * T), tg(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>(rng.below(V));
    tg[i] = static_cast<int32_t>(rng.below(V));
  }
  return {Tensor::from_i32(ids, {B, T}), Tensor::from_i32(tg, {B, T})};
}

// The f64 forward is GPT's forward: same loss (NLL, and the aux loss for MoE) as the f32 model.
void expect_same_function_as_gpt(GPT& gpt, const F64Model& m, const Batch& b) {
  CounterRng rng(0, 0);
  RoutingSig sig;
  const double nll32 = value_of(gpt.forward_loss(b.ids, b.targets, false, rng));
  const double aux32 = gpt.aux_loss().defined() ? value_of(gpt.aux_loss()) : 0.0;
  NoGradGuard ng;
  const double l64 = value_of(model_loss(m, b.ids, b.targets, &sig));
  EXPECT_NEAR(l64, nll32 + kAuxWeight * aux32, 1e-5 * (1 + std::fabs(l64)))
      << "the test's f64 forward is not GPT::forward_loss; update it from src/nn/gpt.cpp";
}

// Central differences against backward() for every element of every parameter.
void expect_model_gradients(F64Model& m, const Batch& b, double h, double atol, double rtol) {
  RoutingSig base_sig;
  int64_t dropped = 0;
  Tensor loss = model_loss(m, b.ids, b.targets, &base_sig, &dropped);
  ASSERT_EQ(dropped, 0) << "an MoE layer dropped assignments: raise the capacity factor";
  backward(loss);
  int64_t checked = 0;
  for (auto& [name, x] : m.params) {
    ASSERT_TRUE(x.grad().defined()) << name << " got no gradient: it is not on the tape";
    const std::vector<double> g = x.grad().to_f64_vector();
    double* xp = x.data<double>();
    int failures = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = xp[i];
      double lp, lm;
      RoutingSig sp, sm;
      {
        NoGradGuard ng;
        xp[i] = orig + h;
        lp = value_of(model_loss(m, b.ids, b.targets, &sp));
        xp[i] = orig - h;
        lm = value_of(model_loss(m, b.ids, b.targets, &sm));
      }
      xp[i] = orig;
      ASSERT_TRUE(sp == base_sig && sm == base_sig)
          << name << "[" << i << "]: the perturbation changed the routing; pick another seed";
      const double num = (lp - lm) / (2 * h);
      if (std::fabs(g[i] - num) > atol + rtol * std::fabs(num) && ++failures <= 5)
        ADD_FAILURE() << name << "[" << i << "]: backward " << g[i] << ", central difference "
                      << num;
    }
    EXPECT_EQ(failures, 0) << name << " " << shape_str(x.shape()) << ": " << failures << " of "
                           << x.numel() << " elements disagree";
    checked += x.numel();
  }
  EXPECT_EQ(checked, [&] {
    int64_t n = 0;
    for (const auto& kv : m.params) n += kv.second.numel();
    return n;
  }());
}

constexpr int kB = 2, kT = 5, kV = 13;

TEST(ModelGradcheck, TinyDenseEveryParameter) {
  GPTConfig cfg = gpt_config(2, 8, 2, kT, kV);  // L=2, C=8, NH=2, T=5, V=13
  cfg.dropout = 0.0;
  GPT gpt(cfg, 7);
  F64Model m = f64_copy(gpt, kB, kT);
  const Batch b = random_batch(kB, kT, kV, 11);
  expect_same_function_as_gpt(gpt, m, b);
  EXPECT_EQ(m.params.size(), 1u + 2 * 12 + 2);  // wte, 12 tensors per block, final LN
  expect_model_gradients(m, b, 1e-5, 1e-8, 1e-5);
}

TEST(ModelGradcheck, TinyMoEEveryParameter) {
  // Layer 1 is MoE (SPEC §2: (i+1) % 2 == 0) with E = 4. N = 10 tokens; Cap = ceil(factor * 2 *
  // ceil(N/E)) = 2 * 2 * 3 = 12 >= N, so no expert can overflow (SPEC §3 steps 2, 7).
  GPTConfig cfg = gpt_config(2, 8, 2, kT, kV, 4);
  cfg.dropout = 0.0;
  cfg.capacity_factor = 2.0;
  GPT gpt(cfg, 7);
  F64Model m = f64_copy(gpt, kB, kT);
  const Batch b = random_batch(kB, kT, kV, 11);
  expect_same_function_as_gpt(gpt, m, b);
  EXPECT_NE(m.by_name.count("blocks.1.moe.experts.w1"), 0u);
  EXPECT_NE(m.by_name.count("blocks.0.ffn.fc1.weight"), 0u);
  expect_model_gradients(m, b, 1e-5, 1e-8, 1e-5);
}

}  // namespace
}  // namespace moe
