// Tests for moe/moe_layer: the composed layer against a naive per-token reference written here
// (output, aux loss, and every gradient by finite differences of the reference), f64 gradient
// checks of the whole layer on its six inputs in the edge cases SPEC §3 / notes/design.md name (an
// expert with no token, capacity overflow, a token dropped by both choices, all tokens to one
// expert, expert dropout, a (B, T, C) input), routing statistics by hand, f32 against f64, the
// same bits with 1 and 2 threads, parameter init, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "moe/moe_layer.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;

namespace {

// ---------------------------------------------------------------------------------------------
// The naive reference: plain double loops over tokens, written from SPEC §3 without the ops.

struct Dims {
  int64_t N, C, H, E;
};

struct NaiveParams {  // flat row-major copies of MoEParams
  std::vector<double> wg, w1, b1, w2, b2;
};

double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

// FFN_e(x) for one token x (C) -> (C).
std::vector<double> naive_ffn(const double* x, int64_t e, const NaiveParams& p, const Dims& d) {
  std::vector<double> a(d.H), y(d.C);
  for (int64_t h = 0; h < d.H; ++h) {
    double v = p.b1[e * d.H + h];
    for (int64_t c = 0; c < d.C; ++c) v += x[c] * p.w1[(e * d.C + c) * d.H + h];
    a[h] = gelu_ref(v);
  }
  for (int64_t c = 0; c < d.C; ++c) {
    double v = p.b2[e * d.C + c];
    for (int64_t h = 0; h < d.H; ++h) v += a[h] * p.w2[(e * d.H + h) * d.C + c];
    y[c] = v;
  }
  return y;
}

// y (N*C) and l_aux for x (N*C); `cap` slots per expert; policy "all".
std::vector<double> naive_moe(const std::vector<double>& x, const NaiveParams& p, const Dims& d,
                              int64_t cap, double* l_aux) {
  const int64_t N = d.N, E = d.E, C = d.C;
  std::vector<double> P(N * E), L(N * E);
  std::vector<int64_t> e1(N), e2(N);
  for (int64_t s = 0; s < N; ++s) {
    double mx = -1e300, z = 0;
    for (int64_t e = 0; e < E; ++e) {
      double v = 0;
      for (int64_t c = 0; c < C; ++c) v += x[s * C + c] * p.wg[e * C + c];
      L[s * E + e] = v;
      mx = std::max(mx, v);
    }
    for (int64_t e = 0; e < E; ++e) z += std::exp(L[s * E + e] - mx);
    for (int64_t e = 0; e < E; ++e) P[s * E + e] = std::exp(L[s * E + e] - mx) / z;
    e1[s] = 0;
    for (int64_t e = 1; e < E; ++e) if (P[s * E + e] > P[s * E + e1[s]]) e1[s] = e;
    e2[s] = e1[s] == 0 ? 1 : 0;
    for (int64_t e = 0; e < E; ++e)
      if (e != e1[s] && L[s * E + e] > L[s * E + e2[s]]) e2[s] = e;
  }
  // ranks: all top-1 picks in token order, then all top-2 picks after them
  std::vector<int64_t> n1(E, 0), n2(E, 0), loc1(N), loc2(N);
  for (int64_t s = 0; s < N; ++s) loc1[s] = n1[e1[s]]++;
  for (int64_t s = 0; s < N; ++s) loc2[s] = n2[e2[s]]++;
  for (int64_t s = 0; s < N; ++s) loc2[s] += n1[e2[s]];
  // aux loss: E * sum_e mean_s P[s, e] * (fraction of top-1 picks of e)
  *l_aux = 0;
  for (int64_t e = 0; e < E; ++e) {
    double me = 0;
    for (int64_t s = 0; s < N; ++s) me += P[s * E + e] / N;
    *l_aux += E * me * static_cast<double>(n1[e]) / N;
  }
  std::vector<double> y(N * C, 0.0);
  for (int64_t s = 0; s < N; ++s) {
    const double g1 = loc1[s] < cap ? P[s * E + e1[s]] : 0.0;
    const double g2 = loc2[s] < cap ? P[s * E + e2[s]] : 0.0;
    const double den = std::max(g1 + g2, 1.1920928955078125e-07);
    if (g1 > 0) {
      std::vector<double> f = naive_ffn(&x[s * C], e1[s], p, d);
      for (int64_t c = 0; c < C; ++c) y[s * C + c] += g1 / den * f[c];
    }
    if (g2 > 0) {
      std::vector<double> f = naive_ffn(&x[s * C], e2[s], p, d);
      for (int64_t c = 0; c < C; ++c) y[s * C + c] += g2 / den * f[c];
    }
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
// helpers

MoEParams params_f64(const Dims& d, uint64_t seed) {
  MoEParams p;
  p.wg = param_f64({d.E, d.C}, seed);
  p.w1 = param_f64({d.E, d.C, d.H}, seed + 1, -0.6, 0.6);
  p.b1 = param_f64({d.E, d.H}, seed + 2, -0.3, 0.3);
  p.w2 = param_f64({d.E, d.H, d.C}, seed + 3, -0.6, 0.6);
  p.b2 = param_f64({d.E, d.C}, seed + 4, -0.3, 0.3);
  return p;
}

MoEParams from_inputs(const std::vector<Tensor>& in) {  // in = {x, wg, w1, b1, w2, b2}
  MoEParams p;
  p.wg = in[1];
  p.w1 = in[2];
  p.b1 = in[3];
  p.w2 = in[4];
  p.b2 = in[5];
  return p;
}

// Smallest gap between the sorted logits of any token: routing cannot flip under perturbations
// much smaller than this, which is what lets finite differences see a fixed routing.
double min_logit_gap(const Tensor& x, const Tensor& wg) {
  const int64_t N = x.size(0), C = x.size(1), E = wg.size(0);
  double gap = 1e300;
  for (int64_t s = 0; s < N; ++s) {
    std::vector<double> l(E, 0.0);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t c = 0; c < C; ++c) l[e] += x.at({s, c}) * wg.at({e, c});
    std::sort(l.begin(), l.end());
    for (int64_t e = 1; e < E; ++e) gap = std::min(gap, l[e] - l[e - 1]);
  }
  return gap;
}

// The scalar every gradient test differentiates: sum(y * R) + aux_weight * l_aux.
Tensor layer_loss(const std::vector<Tensor>& in, const MoEConfig& cfg, const Tensor& R,
                  double aux_weight, bool training = true, uint64_t seed = 5) {
  CounterRng rng(seed, 0);  // reseeded per call: the same dropout mask on every call
  MoEOutput o = moe_layer_forward(in[0], from_inputs(in), cfg, training, rng);
  return add(sum(mul(o.y, R)), scale(o.l_aux, aux_weight));
}

void expect_layer_gradcheck(const Tensor& x, const MoEParams& p, const MoEConfig& cfg,
                            double aux_weight = 0.37) {
  ASSERT_GT(min_logit_gap(x.dim() == 2 ? x : x.detach().view({-1, x.size(-1)}), p.wg), 1e-4)
      << "inputs too close to a routing tie for finite differences";
  Tensor R = random_f64(x.shape(), 99);
  expect_gradcheck(
      [&](const std::vector<Tensor>& in) { return layer_loss(in, cfg, R, aux_weight); },
      {x, p.wg, p.w1, p.b1, p.w2, p.b2});
}

MoEConfig config(int E, double factor = 1.0) {
  MoEConfig c;
  c.num_experts = E;
  c.capacity_factor = factor;
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// equivalence with the naive reference

TEST(MoeLayer, MatchesNaiveReferenceInOutputAndAllGradients) {
  const Dims d{10, 4, 6, 3};
  for (double factor : {1.0, 0.5}) {  // Cap 8 (few or no drops) and Cap 4 (certain drops)
    Tensor x = param_f64({d.N, d.C}, 1);
    MoEParams p = params_f64(d, 2);
    ASSERT_GT(min_logit_gap(x, p.wg), 1e-4);
    MoEConfig cfg = config(3, factor);
    const int64_t cap = static_cast<int64_t>(std::ceil(factor * 2 * ((d.N + d.E - 1) / d.E)));
    Tensor R = random_f64({d.N, d.C}, 3);
    const double aux_w = 0.37;
    // autograd
    std::vector<Tensor> in = {x, p.wg, p.w1, p.b1, p.w2, p.b2};
    CounterRng rng(0, 0);
    MoEOutput o = moe_layer_forward(x, p, cfg, true, rng);
    EXPECT_EQ(o.stats().capacity, cap);
    if (factor < 1.0) {
      EXPECT_GT(o.stats().fraction_dropped, 0.0);  // the drops are exercised
    }
    backward(add(sum(mul(o.y, R)), scale(o.l_aux, aux_w)));
    // reference forward
    std::vector<std::vector<double>> v;
    for (const Tensor& t : in) v.push_back(t.to_f64_vector());
    auto ref_loss = [&](const std::vector<std::vector<double>>& w, std::vector<double>* y_out) {
      NaiveParams np{w[1], w[2], w[3], w[4], w[5]};
      double l_aux = 0;
      std::vector<double> y = naive_moe(w[0], np, d, cap, &l_aux);
      if (y_out) *y_out = y;
      double acc = aux_w * l_aux;
      const std::vector<double> r = R.to_f64_vector();
      for (size_t i = 0; i < y.size(); ++i) acc += y[i] * r[i];
      return std::make_pair(acc, l_aux);
    };
    std::vector<double> y_ref;
    const double l_aux_ref = ref_loss(v, &y_ref).second;
    std::vector<double> y = o.y.to_f64_vector();
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], y_ref[i], 1e-13) << "y[" << i << "]";
    EXPECT_NEAR(o.l_aux.item(), l_aux_ref, 1e-14);
    // reference gradients by central differences, every element of every input
    for (size_t k = 0; k < in.size(); ++k) {
      std::vector<double> g = in[k].grad().to_f64_vector();
      int bad = 0;
      for (size_t i = 0; i < v[k].size(); ++i) {
        const double orig = v[k][i], h = 1e-6;
        v[k][i] = orig + h;
        const double lp = ref_loss(v, nullptr).first;
        v[k][i] = orig - h;
        const double lm = ref_loss(v, nullptr).first;
        v[k][i] = orig;
        const double num = (lp - lm) / (2 * h);
        if (std::fabs(g[i] - num) > 1e-7 + 1e-5 * std::fabs(num) && ++bad <= 3)
          ADD_FAILURE() << "factor " << factor << " input " << k << " [" << i << "]: autograd "
                        << g[i] << " vs reference " << num;
      }
      EXPECT_EQ(bad, 0) << "input " << k;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// gradient checks of the whole layer, including the edge cases

TEST(MoeLayer, GradCheck) {
  const Dims d{12, 5, 8, 4};
  expect_layer_gradcheck(param_f64({d.N, d.C}, 10), params_f64(d, 11), config(4));
}

TEST(MoeLayer, GradCheckExpertWithNoToken) {
  // Feature 0 of every token is 1 and wg[3, 0] = -8: expert 3 is never in anyone's top 2.
  const Dims d{10, 4, 6, 4};
  Tensor x = param_f64({d.N, d.C}, 20);
  for (int64_t s = 0; s < d.N; ++s) x.data<double>()[s * d.C] = 1.0;
  MoEParams p = params_f64(d, 21);
  p.wg.data<double>()[3 * d.C] = -8.0;
  CounterRng rng(0, 0);
  MoEStats st = moe_layer_forward(x, p, config(4), true, rng).stats();
  EXPECT_EQ(st.tokens_per_expert[3], 0);
  expect_layer_gradcheck(x, p, config(4));
}

TEST(MoeLayer, GradCheckCapacityOverflow) {
  const Dims d{12, 5, 7, 3};
  Tensor x = param_f64({d.N, d.C}, 30);
  MoEParams p = params_f64(d, 31);
  CounterRng rng(0, 0);
  MoEStats st = moe_layer_forward(x, p, config(3, 0.5), true, rng).stats();
  EXPECT_EQ(st.capacity, 4);  // 12 slots for 24 assignments
  EXPECT_GT(st.fraction_dropped, 0.0);
  expect_layer_gradcheck(x, p, config(3, 0.5));
}

TEST(MoeLayer, TokenDroppedByBothChoicesPassesThrough) {
  // Every token ranks expert 0 first and expert 1 second (wg[0, 0] = 8, wg[1, 0] = 4, x[:, 0] = 1)
  // and Cap = ceil(0.25 * 2 * ceil(8/3)) = 2: tokens 0, 1 fill both queues, tokens 2..7 are
  // dropped twice. Their output rows are exactly 0 (the residual carries them), and without the
  // aux loss their gradient wrt x is exactly 0; with it, x still gets the router's aux gradient.
  const Dims d{8, 4, 5, 3};
  Tensor x = param_f64({d.N, d.C}, 40);
  for (int64_t s = 0; s < d.N; ++s) x.data<double>()[s * d.C] = 1.0;
  MoEParams p = params_f64(d, 41);
  p.wg.data<double>()[0] = 8.0;
  p.wg.data<double>()[d.C] = 4.0;
  MoEConfig cfg = config(3, 0.25);
  CounterRng rng(0, 0);
  MoEOutput o = moe_layer_forward(x, p, cfg, true, rng);
  EXPECT_EQ(o.stats().capacity, 2);
  EXPECT_DOUBLE_EQ(o.stats().fraction_tokens_dropped, 6.0 / 8);
  for (int64_t s = 2; s < d.N; ++s)
    for (int64_t c = 0; c < d.C; ++c) EXPECT_EQ(o.y.at({s, c}), 0.0) << "token " << s;
  backward(sum(mul(o.y, random_f64({d.N, d.C}, 42))));
  for (int64_t s = 2; s < d.N; ++s)
    for (int64_t c = 0; c < d.C; ++c) EXPECT_EQ(x.grad().at({s, c}), 0.0) << "token " << s;
  expect_layer_gradcheck(x, p, cfg, 0.0);
  expect_layer_gradcheck(x, p, cfg, 0.37);
  x.zero_grad();
  CounterRng rng2(0, 0);
  backward(moe_layer_forward(x, p, cfg, true, rng2).l_aux);
  EXPECT_NE(x.grad().at({5, 1}), 0.0);  // the aux loss still reaches dropped tokens' x
}

TEST(MoeLayer, GradCheckAllTokensToOneExpert) {
  const Dims d{8, 4, 5, 3};
  Tensor x = param_f64({d.N, d.C}, 50);
  for (int64_t s = 0; s < d.N; ++s) x.data<double>()[s * d.C] = 1.0;
  MoEParams p = params_f64(d, 51);
  p.wg.data<double>()[0] = 8.0;
  MoEConfig cfg = config(3, 3.0);  // Cap = 18 >= N: nothing dropped
  CounterRng rng(0, 0);
  MoEOutput o = moe_layer_forward(x, p, cfg, true, rng);
  EXPECT_EQ(o.stats().fraction_dropped, 0.0);
  EXPECT_GT(o.l_aux.item(), 2.5);  // ce = (1, 0, 0), so l_aux = 3 * me[0], me[0] near 1
  int64_t top_total = 0;
  for (int64_t n : o.stats().tokens_per_expert) top_total += n;
  EXPECT_EQ(top_total, 2 * d.N);
  EXPECT_GE(o.stats().tokens_per_expert[0], d.N);  // every top-1 on expert 0
  expect_layer_gradcheck(x, p, cfg);
}

TEST(MoeLayer, GradCheckWithExpertDropout) {
  const Dims d{9, 4, 6, 3};
  MoEConfig cfg = config(3);
  cfg.expert_dropout = 0.3;
  expect_layer_gradcheck(param_f64({d.N, d.C}, 60), params_f64(d, 61), cfg);
}

TEST(MoeLayer, GradCheckBatchTimeInput) {
  // x (B, T, C) = (2, 3, 4): tokens s = b*T + t; y comes back as (2, 3, 4).
  const Dims d{6, 4, 5, 3};
  Tensor x = param_f64({2, 3, d.C}, 70);
  MoEParams p = params_f64(d, 71);
  CounterRng rng(0, 0);
  EXPECT_EQ(moe_layer_forward(x, p, config(3), true, rng).y.shape(), (Shape{2, 3, d.C}));
  expect_layer_gradcheck(x, p, config(3));
}

// ---------------------------------------------------------------------------------------------
// statistics, modes, precision, threads

TEST(MoeLayer, RoutingStatisticsByHand) {
  // The worked example at Cap 2 (test_gate.cpp): kept per expert (2, 2, 2); 2 of 6 top-1 and
  // 4 of 6 top-2 assignments dropped; tokens 3 and 5 lost both.
  const std::vector<double> P = {0.5, 0.3, 0.2, 0.6, 0.1, 0.3, 0.2, 0.7, 0.1,
                                 0.7, 0.2, 0.1, 0.1, 0.2, 0.7, 0.4, 0.2, 0.4};
  std::vector<double> L(P.size());
  for (size_t i = 0; i < P.size(); ++i) L[i] = std::log(P[i]);
  CounterRng rng(0, 0);
  Tensor probs = Tensor::from_f64(P, {6, 3});
  Routing r = top2_select(probs, Tensor::from_f64(L, {6, 3}), 2, Top2Policy::ALL, rng);
  MoEStats st = moe_routing_stats(probs, r);
  EXPECT_EQ(st.tokens_per_expert, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(st.fraction_dropped, 0.5);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top1, 2.0 / 6);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top2, 4.0 / 6);
  EXPECT_DOUBLE_EQ(st.fraction_tokens_dropped, 2.0 / 6);
  EXPECT_EQ(st.capacity, 2);
  double h = 0;
  for (double v : P) h -= v * std::log(v);
  EXPECT_NEAR(st.router_entropy, h / 6, 1e-7);  // the raw statistics are stored in f32
  // uniform P: entropy ln E, the maximum
  std::vector<double> U(4 * 5, 0.2);
  Tensor pu = Tensor::from_f64(U, {4, 5});
  Routing ru = top2_select(pu, pu, 4, Top2Policy::ALL, rng);
  EXPECT_NEAR(moe_routing_stats(pu, ru).router_entropy, std::log(5.0), 1e-6);
}

TEST(MoeLayer, EvalUsesTheEvalCapacityAndNoDropout) {
  const Dims d{10, 4, 6, 3};
  Tensor x = random_f64({d.N, d.C}, 80);
  MoEParams p = params_f64(d, 81);
  MoEConfig cfg = config(3);
  cfg.eval_capacity_fraction = 0.25;
  cfg.expert_dropout = 0.5;
  CounterRng a(1, 0), b(2, 0);
  MoEOutput o1 = moe_layer_forward(x, p, cfg, false, a);
  MoEOutput o2 = moe_layer_forward(x, p, cfg, false, b);
  EXPECT_EQ(o1.stats().capacity, 3);  // ceil(0.25 * 10)
  EXPECT_EQ(o1.y.to_f64_vector(), o2.y.to_f64_vector());  // no dropout, no draws
  CounterRng c(1, 0);
  EXPECT_EQ(moe_layer_forward(x, p, cfg, true, c).stats().capacity, 8);  // 2 * ceil(10/3)
}

TEST(MoeLayer, F32MatchesF64) {
  const Dims d{24, 8, 16, 4};
  Tensor x64 = param_f64({d.N, d.C}, 90);
  MoEParams p64 = params_f64(d, 91);
  ASSERT_GT(min_logit_gap(x64, p64.wg), 1e-3);
  std::vector<Tensor> in64 = {x64, p64.wg, p64.w1, p64.b1, p64.w2, p64.b2}, in32;
  for (const Tensor& t : in64) in32.push_back(t.detach().to(DType::F32).set_requires_grad(true));
  Tensor R = random_f64({d.N, d.C}, 92);
  MoEConfig cfg = config(4, 0.75);
  Tensor l64 = layer_loss(in64, cfg, R, 0.37), l32 = layer_loss(in32, cfg, R.to(DType::F32), 0.37);
  EXPECT_NEAR(l32.item(), l64.item(), 1e-5 * (1 + std::fabs(l64.item())));
  backward(l64);
  backward(l32);
  for (size_t k = 0; k < in64.size(); ++k) {
    std::vector<double> g = in64[k].grad().to_f64_vector(), h = in32[k].grad().to_f64_vector();
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(h[i], g[i], 2e-5 + 1e-4 * std::fabs(g[i])) << "input " << k << " [" << i << "]";
  }
}

TEST(MoeLayer, SameBitsWithOneAndTwoThreads) {
  // Large enough that every parallel_for in the layer splits (N = 2048 tokens, E*Cap = 4096
  // slots); sampling policy and dropout on, so the rng stream is part of what must match.
  const Dims d{2048, 16, 64, 8};
  const int old = num_threads();
  std::vector<std::vector<float>> res[2];
  std::vector<double> stats[2];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t + 1);
    MoEParams p64 = params_f64(d, 100);
    std::vector<Tensor> in;
    for (const Tensor& v : {random_f64({d.N, d.C}, 101), p64.wg, p64.w1, p64.b1, p64.w2, p64.b2})
      in.push_back(v.detach().to(DType::F32).set_requires_grad(true));
    MoEConfig cfg = config(8);
    cfg.top2_policy = "sampling";
    cfg.expert_dropout = 0.1;
    CounterRng rng(7, 0);
    MoEOutput o = moe_layer_forward(in[0], from_inputs(in), cfg, true, rng);
    backward(add(sum(mul(o.y, random_f64({d.N, d.C}, 102).to(DType::F32))), o.l_aux));
    res[t].push_back(o.y.to_f32_vector());
    for (const Tensor& v : in) res[t].push_back(v.grad().to_f32_vector());
    stats[t] = {o.stats().l_aux, o.stats().fraction_dropped, o.stats().router_entropy};
  }
  set_num_threads(old);
  for (size_t k = 0; k < res[0].size(); ++k) EXPECT_EQ(res[0][k], res[1][k]) << "tensor " << k;
  EXPECT_EQ(stats[0], stats[1]);
}

// ---------------------------------------------------------------------------------------------
// init and errors

TEST(MoeParamsInit, ShapesBoundsAndDistinctExperts) {
  const int E = 4, C = 16, H = 64;
  Rng rng(1);
  MoEParams p = moe_params_init(E, C, H, rng);
  EXPECT_EQ(p.wg.shape(), (Shape{E, C}));
  EXPECT_EQ(p.w1.shape(), (Shape{E, C, H}));
  EXPECT_EQ(p.b1.shape(), (Shape{E, H}));
  EXPECT_EQ(p.w2.shape(), (Shape{E, H, C}));
  EXPECT_EQ(p.b2.shape(), (Shape{E, C}));
  auto max_abs = [](const Tensor& t) {
    double m = 0;
    for (float v : t.to_f32_vector()) m = std::max(m, std::fabs(static_cast<double>(v)));
    return m;
  };
  // U(+-1/sqrt(fan_in)): inside the bound, and with this many draws close to it.
  for (const Tensor* t : {&p.wg, &p.w1, &p.b1}) {
    EXPECT_LE(max_abs(*t), 0.25 + 1e-7);
    EXPECT_GT(max_abs(*t), 0.2);
  }
  for (const Tensor* t : {&p.w2, &p.b2}) {
    EXPECT_LE(max_abs(*t), 0.125 + 1e-7);
    EXPECT_GT(max_abs(*t), 0.1);
  }
  EXPECT_TRUE(p.w1.requires_grad() && p.wg.requires_grad() && p.b2.requires_grad());
  std::vector<float> w = p.w1.to_f32_vector();
  EXPECT_FALSE(std::equal(w.begin(), w.begin() + C * H, w.begin() + C * H))
      << "experts 0 and 1 must get their own draws";
  Rng again(1);
  EXPECT_EQ(moe_params_init(E, C, H, again).w2.to_f32_vector(), p.w2.to_f32_vector());
}

TEST(MoeLayer, BadConfigurationsAreErrors) {
  const Dims d{4, 3, 5, 2};
  MoEParams p = params_f64(d, 110);
  Tensor x = random_f64({d.N, d.C}, 111);
  CounterRng rng(0, 0);
  EXPECT_THROW(moe_layer_forward(x, p, config(1), true, rng), Error);
  EXPECT_THROW(moe_layer_forward(x, p, config(3), true, rng), Error);  // wg has 2 rows
  MoEConfig bad = config(2);
  bad.top2_policy = "best";
  EXPECT_THROW(moe_layer_forward(x, p, bad, true, rng), Error);
  bad = config(2);
  bad.expert_dropout = 1.0;
  EXPECT_THROW(moe_layer_forward(x, p, bad, true, rng), Error);
  EXPECT_THROW(moe_layer_forward(random_f64({d.N, 4}, 112), p, config(2), true, rng), Error);
}
