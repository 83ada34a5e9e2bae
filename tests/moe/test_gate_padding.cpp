// Tests for padding in the MoE gate (SPEC §3 step 5a; fairseq's `input_mask`): a token mask given
// to top2_select removes padding from the expert queues, so padding takes no slot, later real
// tokens move up, the aux loss's ce and the routing statistics count real tokens only, padding
// rows of the layer's output are exactly 0, and real tokens are routed exactly as if the padding
// rows were not there. CPU by hand and by property; then the CUDA twins against the CPU (bit for
// bit for the routing, all three policies), skipped without a GPU. The GPT-level consequences
// (batch size and order do not change scores) are tests/nn/test_padding_mask.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "gradcheck.h"
#include "moe/gate.h"
#include "moe/moe_layer.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;

namespace {

// The worked example of notes/moe-gating.md §7 (N = 6, E = 3; logits = log P).
const std::vector<double> kP = {
    0.5, 0.3, 0.2,  // s0: e1 = 0, e2 = 1
    0.6, 0.1, 0.3,  // s1: e1 = 0, e2 = 2   <- padding in these tests
    0.2, 0.7, 0.1,  // s2: e1 = 1, e2 = 0
    0.7, 0.2, 0.1,  // s3: e1 = 0, e2 = 1
    0.1, 0.2, 0.7,  // s4: e1 = 2, e2 = 1
    0.4, 0.2, 0.4,  // s5: e1 = 0 (tie, lowest index), e2 = 2
};
const std::vector<int32_t> kMaskS1 = {1, 0, 1, 1, 1, 1};

Tensor log_of(const std::vector<double>& p, const Shape& shape) {
  std::vector<double> l(p.size());
  for (size_t i = 0; i < p.size(); ++i) l[i] = p[i] > 0 ? std::log(p[i]) : -1000.0;
  return Tensor::from_f64(l, shape);
}

Routing route(const std::vector<double>& p, int64_t E, int64_t cap,
              const std::vector<int32_t>& mask, Top2Policy policy = Top2Policy::ALL) {
  const int64_t N = static_cast<int64_t>(p.size()) / E;
  CounterRng rng(0, 0);
  const Tensor m = mask.empty() ? Tensor() : Tensor::from_i32(mask, {N});
  return top2_select(Tensor::from_f64(p, {N, E}), log_of(p, {N, E}), cap, policy, rng, m);
}

std::vector<int32_t> ints(const Tensor& t) { return t.to_i32_vector(); }

// A mask with about `pad_share` of its N entries 0, drawn from `seed`.
std::vector<int32_t> random_mask(int64_t N, double pad_share, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> m(static_cast<size_t>(N));
  for (int32_t& v : m) v = rng.uniform() < pad_share ? 0 : 1;
  return m;
}

// The mask of a right-padded batch of rows of T positions holding lengths[b] real tokens.
std::vector<int32_t> right_padded(const std::vector<int>& lengths, int T) {
  std::vector<int32_t> m;
  for (int len : lengths)
    for (int t = 0; t < T; ++t) m.push_back(t < len ? 1 : 0);
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// top2_select by hand

TEST(Top2SelectPadding, HandWorkedPaddingTakesNoSlot) {
  // s1 is padding. Top-1 queues of the real tokens: expert 0 <- s0 s3 s5 (0 1 2), expert 1 <- s2,
  // expert 2 <- s4; real top-1 counts (3, 1, 1). Top-2 queues start after them: expert 1 <-
  // s0 s3 s4 (1 2 3), expert 2 <- s5 (1), expert 0 <- s2 (3 + 0 = 3).
  Routing r = route(kP, 3, 3, kMaskS1);
  EXPECT_EQ(ints(r.expert), (std::vector<int32_t>{0, 1, 0, 2, 1, 0, 0, 1, 2, 1, 0, 2}))
      << "padding still reports its choices";
  EXPECT_EQ(ints(r.loc), (std::vector<int32_t>{0, 1, -1, -1, 0, 3, 1, 2, 0, 3, 2, 1}));
  // Cap 3: s2's and s4's top-2 overflow; s5's top-1, dropped without the mask (loc 3, behind
  // s1), moved up to loc 2 and is kept.
  EXPECT_EQ(ints(r.kept), (std::vector<int32_t>{1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1}));
  EXPECT_EQ(ints(r.slot_src), (std::vector<int32_t>{0, 6, 10,     // expert 0: s0 s3 s5 (top-1)
                                                    4, 1, 7,      // expert 1: s2, s0 s3 (top-2)
                                                    8, 11, -1}));  // expert 2: s4, s5; one empty
  const Routing unmasked = route(kP, 3, 3, {});
  EXPECT_EQ(ints(unmasked.kept)[10], 0) << "without the mask s5's top-1 is dropped";
  EXPECT_EQ(ints(r.token_mask), kMaskS1);
}

TEST(Top2SelectPadding, AllOnesMaskIsBitwiseNoMask) {
  const int64_t N = 57, E = 5;
  const std::vector<double> p = random_f64({N, E}, 3, 0.0, 1.0).to_f64_vector();
  for (Top2Policy policy : {Top2Policy::ALL, Top2Policy::SAMPLING, Top2Policy::RANDOM}) {
    CounterRng a(9, 0), b(9, 0);
    Tensor P = Tensor::from_f64(p, {N, E}), L = log_of(p, {N, E});
    Routing plain = top2_select(P, L, 13, policy, a);
    Routing ones = top2_select(P, L, 13, policy, b,
                               Tensor::from_i32(std::vector<int32_t>(N, 1), {N}));
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(ints(ones.expert), ints(plain.expert)) << top2_policy_name(policy);
    EXPECT_EQ(ints(ones.loc), ints(plain.loc)) << top2_policy_name(policy);
    EXPECT_EQ(ints(ones.kept), ints(plain.kept)) << top2_policy_name(policy);
    EXPECT_EQ(ints(ones.slot_src), ints(plain.slot_src)) << top2_policy_name(policy);
  }
}

// The defining property: real tokens get exactly the slots they get when the padding rows are
// deleted from the batch (at the same Cap), and padding gets none.
TEST(Top2SelectPadding, RealTokensRouteAsIfThePaddingWereNotThere) {
  const int64_t N = 60, E = 4;
  const std::vector<double> p = random_f64({N, E}, 5, 0.0, 1.0).to_f64_vector();
  for (uint64_t seed : {1, 2, 3}) {
    const std::vector<int32_t> mask = random_mask(N, 0.35, seed);
    std::vector<double> real_p;
    std::vector<int64_t> full_index;  // row of the full batch of each real token
    for (int64_t s = 0; s < N; ++s) {
      if (!mask[s]) continue;
      full_index.push_back(s);
      real_p.insert(real_p.end(), p.begin() + s * E, p.begin() + (s + 1) * E);
    }
    for (int64_t cap : {4, 9, 30}) {
      const Routing m = route(p, E, cap, mask), alone = route(real_p, E, cap, {});
      const std::vector<int32_t> me = ints(m.expert), ml = ints(m.loc), mk = ints(m.kept);
      const std::vector<int32_t> ae = ints(alone.expert), al = ints(alone.loc),
                                 ak = ints(alone.kept);
      for (size_t j = 0; j < full_index.size(); ++j)
        for (int k = 0; k < 2; ++k) {
          const size_t a = j * 2 + k, f = static_cast<size_t>(full_index[j] * 2 + k);
          ASSERT_EQ(me[f], ae[a]) << "token " << full_index[j] << " choice " << k;
          ASSERT_EQ(ml[f], al[a]) << "token " << full_index[j] << " choice " << k;
          ASSERT_EQ(mk[f], ak[a]) << "token " << full_index[j] << " choice " << k;
        }
      std::vector<int32_t> src = ints(alone.slot_src);  // renumbered into full-batch indices
      for (int32_t& v : src)
        if (v >= 0) v = static_cast<int32_t>(full_index[v / 2] * 2 + v % 2);
      EXPECT_EQ(ints(m.slot_src), src) << "Cap " << cap;
      for (int64_t s = 0; s < N; ++s)
        if (!mask[s]) {
          EXPECT_EQ(ml[s * 2], -1);
          EXPECT_EQ(ml[s * 2 + 1], -1);
          EXPECT_EQ(mk[s * 2] + mk[s * 2 + 1], 0);
        }
    }
  }
}

TEST(Top2SelectPadding, BadMasksAreErrors) {
  Tensor P = Tensor::from_f64(kP, {6, 3}), L = log_of(kP, {6, 3});
  CounterRng rng(0, 0);
  EXPECT_THROW(top2_select(P, L, 3, Top2Policy::ALL, rng, Tensor::from_i32({1, 1, 1}, {3})),
               Error);
  EXPECT_THROW(top2_select(P, L, 3, Top2Policy::ALL, rng, Tensor::zeros({6})), Error);  // f32
  try {
    top2_select(P, L, 3, Top2Policy::ALL, rng, Tensor::from_i32({1, 1, 1, 1, 1, 1}, {2, 3}));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// gate weights, aux loss and statistics by hand

TEST(GateWeightsPadding, PaddingGetsZeroWeights) {
  // Cap 3 with s1 padding: s0 (5/8, 3/8), s1 (0, 0), s2 and s4 top-1 only (1, 0), s3 (7/9, 2/9),
  // s5 keeps both (0.4, 0.4) -> (1/2, 1/2).
  const std::vector<double> want = {5. / 8, 3. / 8, 0, 0, 1, 0, 7. / 9, 2. / 9, 1, 0, 0.5, 0.5};
  const std::vector<double> got =
      gate_weights(Tensor::from_f64(kP, {6, 3}), route(kP, 3, 3, kMaskS1)).to_f64_vector();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-15) << i;
}

TEST(LoadBalanceLossPadding, CeCountsRealTokensOverAllN) {
  // me keeps every row: column sums (2.5, 1.7, 1.8) / 6. ce counts the real top-1 picks
  // (3, 1, 1), divided by all N = 6 as fairseq's mean(mask1) does:
  //   l_aux = 3 * (2.5*3 + 1.7*1 + 1.8*1) / 36 = 11/12;
  // dl_aux/dP[s, :] = E * ce / N = 3 * (3, 1, 1) / 36 for every row, the padding row included.
  Tensor P = Tensor::from_f64(kP, {6, 3});
  P.set_requires_grad(true);
  const Routing r = route(kP, 3, 3, kMaskS1);
  Tensor l = load_balance_loss(P, r);
  EXPECT_NEAR(l.item(), 11.0 / 12, 1e-14);
  backward(l);
  for (int64_t s = 0; s < 6; ++s) {
    EXPECT_NEAR(P.grad().at({s, 0}), 0.25, 1e-15) << s;
    EXPECT_NEAR(P.grad().at({s, 1}), 1.0 / 12, 1e-15) << s;
    EXPECT_NEAR(P.grad().at({s, 2}), 1.0 / 12, 1e-15) << s;
  }
  auto f = [&r](const std::vector<Tensor>& in) { return load_balance_loss(in[0], r); };
  expect_gradcheck(f, {param_f64({6, 3}, 11, 0.0, 1.0)});
  // A batch of padding only: no top-1 counts, l_aux = 0, and every slot stays empty.
  const Routing none = route(kP, 3, 3, std::vector<int32_t>(6, 0));
  EXPECT_EQ(load_balance_loss(Tensor::from_f64(kP, {6, 3}), none).item(), 0.0);
  for (int32_t v : ints(none.slot_src)) EXPECT_EQ(v, -1);
}

TEST(MoeStatsPadding, StatisticsCountRealTokensOnly) {
  // Cap 3 with s1 padding: 5 top-1 and 5 top-2 assignments made; s2's and s4's top-2 dropped;
  // kept per expert (3, 3, 2); no real token lost both; entropy averaged over the 5 real rows.
  Tensor P = Tensor::from_f64(kP, {6, 3});
  const MoEStats st = moe_routing_stats(P, route(kP, 3, 3, kMaskS1));
  EXPECT_EQ(st.tokens_per_expert, (std::vector<int64_t>{3, 3, 2}));
  EXPECT_DOUBLE_EQ(st.fraction_dropped, 2.0 / 10);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top1, 0.0);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top2, 2.0 / 5);
  EXPECT_DOUBLE_EQ(st.fraction_tokens_dropped, 0.0);
  double h = 0;
  for (int64_t s = 0; s < 6; ++s)
    for (int64_t e = 0; e < 3; ++e)
      if (s != 1) h -= kP[s * 3 + e] * std::log(kP[s * 3 + e]);
  EXPECT_NEAR(st.router_entropy, h / 5, 1e-7);  // stored in f32
  // Cap 2: s5's top-1 (loc 2) and the top-2 of s2, s3, s4 (loc 3, 2, 3) drop, but every real
  // token keeps one slot (s5 its top-2 at loc 1); the padding token, which has none, must not be
  // counted as a token that lost both.
  const MoEStats st2 = moe_routing_stats(P, route(kP, 3, 2, kMaskS1));
  EXPECT_DOUBLE_EQ(st2.fraction_dropped_top1, 1.0 / 5);
  EXPECT_DOUBLE_EQ(st2.fraction_dropped_top2, 3.0 / 5);
  EXPECT_DOUBLE_EQ(st2.fraction_tokens_dropped, 0.0);
}

// ---------------------------------------------------------------------------------------------
// the layer

namespace {

struct LayerIn {
  Tensor x;
  MoEParams p;
};

LayerIn layer_in(int64_t N, int64_t C, int64_t H, int64_t E, uint64_t seed) {
  LayerIn in;
  in.x = param_f64({N, C}, seed);
  in.p.wg = param_f64({E, C}, seed + 1, -1.5, 1.5);
  in.p.w1 = param_f64({E, C, H}, seed + 2, -0.6, 0.6);
  in.p.b1 = param_f64({E, H}, seed + 3, -0.3, 0.3);
  in.p.w2 = param_f64({E, H, C}, seed + 4, -0.6, 0.6);
  in.p.b2 = param_f64({E, C}, seed + 5, -0.3, 0.3);
  return in;
}

// The rows of x whose mask entry is 1, as a new tensor.
Tensor real_rows(const Tensor& x, const std::vector<int32_t>& mask) {
  const int64_t C = x.size(1);
  const std::vector<double> v = x.to_f64_vector();
  std::vector<double> out;
  for (size_t s = 0; s < mask.size(); ++s)
    if (mask[s]) out.insert(out.end(), v.begin() + s * C, v.begin() + (s + 1) * C);
  return Tensor::from_f64(out, {static_cast<int64_t>(out.size()) / C, C});
}

// The smallest gap between the first and second, and second and third, logits of any token:
// routing cannot flip under a perturbation much smaller than this.
double routing_margin(const Tensor& x, const Tensor& wg) {
  NoGradGuard no_grad;
  const std::vector<double> l = router(x, wg).logits.to_f64_vector();
  const int64_t N = x.size(0), E = wg.size(0);
  double margin = 1e300;
  for (int64_t s = 0; s < N; ++s) {
    std::vector<double> v(l.begin() + s * E, l.begin() + (s + 1) * E);
    std::sort(v.rbegin(), v.rend());
    margin = std::min(margin, v[0] - v[1]);
    if (E > 2) margin = std::min(margin, v[1] - v[2]);
  }
  return margin;
}

MoEConfig eval_config(int E, double fraction) {
  MoEConfig cfg;
  cfg.num_experts = E;
  cfg.eval_capacity_fraction = fraction;
  return cfg;
}

}  // namespace

TEST(MoeLayerPadding, PaddingRowsAreZeroAndRealRowsMatchTheRealTokensAlone) {
  // Three right-padded rows of 5 (lengths 5, 2, 1). With the eval fraction 1.0 nothing drops in
  // either run, so every real row must come out bitwise as in a layer run on the real tokens only.
  const std::vector<int32_t> mask = right_padded({5, 2, 1}, 5);
  const int64_t N = 15, C = 4;
  LayerIn in = layer_in(N, C, 6, 3, 40);
  const MoEConfig cfg = eval_config(3, 1.0);
  CounterRng a(0, 0), b(0, 0);
  NoGradGuard no_grad;
  MoEOutput full = moe_layer_forward(in.x, in.p, cfg, false, a, Tensor::from_i32(mask, {N}));
  MoEOutput alone = moe_layer_forward(real_rows(in.x, mask), in.p, cfg, false, b);
  const std::vector<double> y = full.y.to_f64_vector(), ya = alone.y.to_f64_vector();
  size_t j = 0;
  for (int64_t s = 0; s < N; ++s)
    for (int64_t c = 0; c < C; ++c) {
      if (mask[s]) {
        EXPECT_EQ(y[s * C + c], ya[j * C + c]) << "real token " << s;
      } else {
        EXPECT_EQ(y[s * C + c], 0.0) << "padding token " << s;
      }
      if (mask[s] && c == C - 1) ++j;
    }
  // The same statistics (the aux loss differs: its me still averages over all N rows).
  const std::vector<double> rf = full.raw_stats.to_f64_vector();
  const std::vector<double> ra = alone.raw_stats.to_f64_vector();
  for (size_t i = 0; i < rf.size(); ++i) {
    if (i == kStatLAux) continue;
    EXPECT_EQ(rf[i], ra[i]) << "stat field " << i;
  }
  EXPECT_EQ(full.capacity, N) << "Cap counts the padding positions too";
}

TEST(MoeLayerPadding, GradCheckWithPaddingAndDrops) {
  // Training capacity 2 * ceil(12 / 3) * 0.5 = 4 with 4 padding tokens: some real assignments
  // still drop. Every gradient of sum(y * R) + 0.37 l_aux, then the padding rows of dx are
  // exactly 0 without the aux loss (no slot, constant zero gates).
  const std::vector<int32_t> mask = right_padded({4, 3, 1}, 4);
  LayerIn in = layer_in(12, 4, 6, 3, 60);
  MoEConfig cfg;
  cfg.num_experts = 3;
  cfg.capacity_factor = 0.5;
  const Tensor m = Tensor::from_i32(mask, {12});
  const Tensor R = random_f64({12, 4}, 61);
  auto loss = [&](const std::vector<Tensor>& v, double aux) {
    MoEParams p{v[1], v[2], v[3], v[4], v[5]};
    CounterRng rng(0, 0);
    MoEOutput o = moe_layer_forward(v[0], p, cfg, true, rng, m);
    return add(sum(mul(o.y, R)), scale(o.l_aux, aux));
  };
  ASSERT_GT(routing_margin(in.x, in.p.wg), 1e-4) << "too close to a routing tie for a gradcheck";
  std::vector<Tensor> v = {in.x, in.p.wg, in.p.w1, in.p.b1, in.p.w2, in.p.b2};
  expect_gradcheck([&](const std::vector<Tensor>& t) { return loss(t, 0.37); }, v);
  for (Tensor& t : v) t.zero_grad();
  backward(loss(v, 0.0));
  for (int64_t s = 0; s < 12; ++s) {
    if (mask[s]) continue;
    for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(in.x.grad().at({s, c}), 0.0) << "token " << s;
  }
}

TEST(MoeLayerPadding, WrongMaskShapeIsAnError) {
  LayerIn in = layer_in(6, 4, 6, 3, 70);
  CounterRng rng(0, 0);
  EXPECT_THROW(moe_layer_forward(in.x, in.p, eval_config(3, 0.0), false, rng,
                                 Tensor::from_i32({1, 1, 0}, {3})),
               Error);
}

TEST(MoeLayerPadding, CapacityRuleInWords) {
  MoEConfig cfg = eval_config(8, 0.25);
  const std::string eval = moe_capacity_rule(cfg, false), train = moe_capacity_rule(cfg, true);
  EXPECT_NE(eval.find("ceil(0.25 * N)"), std::string::npos) << eval;
  EXPECT_NE(train.find("2 * ceil(N / E)"), std::string::npos) << train;
  EXPECT_NE(eval.find("padding takes no slot"), std::string::npos) << eval;
  cfg.eval_capacity_fraction = 0.0;
  cfg.capacity_factor = 1.5;
  EXPECT_NE(moe_capacity_rule(cfg, false).find("ceil(1.5 * 2 * ceil(N / E))"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// CUDA twins with a mask (skipped without a GPU)

namespace {

Routing routing_on(const Routing& r, Device dev) {
  Routing c = r;
  for (Tensor* t : {&c.expert, &c.loc, &c.kept, &c.slot_src, &c.token_mask})
    if (t->defined()) *t = t->to(dev);
  return c;
}

// P and logits (N, E) of a random f32 router, off the tape.
std::pair<Tensor, Tensor> random_gate(int64_t N, int64_t E, uint64_t seed) {
  NoGradGuard no_grad;
  RouterOutput r = router(random_f32({N, 8}, seed), random_f32({E, 8}, seed + 1, -2.0, 2.0));
  return {r.probs, r.logits};
}

// Masks of N tokens: random, right-padded rows of 13, all padding, all real.
std::vector<std::vector<int32_t>> masks_for(int64_t N, uint64_t seed) {
  std::vector<int> lengths;
  Rng rng(seed);
  for (int64_t s = 0; s < N; s += 13) lengths.push_back(static_cast<int>(rng.uniform() * 14));
  std::vector<int32_t> rows = right_padded(lengths, 13);
  rows.resize(static_cast<size_t>(N));
  return {random_mask(N, 0.3, seed), rows, std::vector<int32_t>(N, 0),
          std::vector<int32_t>(N, 1)};
}

}  // namespace

TEST(CudaMoePadding, Top2SelectWithMaskMatchesCpuBitForBit) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 900;
  for (int64_t N : {1, 7, 65, 1031, 2500})
    for (int64_t E : {2, 7, 64})
      for (double factor : {1.0, 0.5}) {
        const auto [P, L] = random_gate(N, E, seed++);
        const int64_t cap = moe_capacity(N, static_cast<int>(E), factor, true, 0.0);
        for (const std::vector<int32_t>& mask : masks_for(N, seed++))
          for (Top2Policy policy : {Top2Policy::ALL, Top2Policy::SAMPLING, Top2Policy::RANDOM}) {
            const std::string what = "N=" + std::to_string(N) + " E=" + std::to_string(E) +
                                     " Cap=" + std::to_string(cap) + " " +
                                     top2_policy_name(policy);
            const Tensor m = Tensor::from_i32(mask, {N});
            CounterRng on_cpu(seed, kTrainDropoutStream), on_gpu(seed, kTrainDropoutStream);
            Routing c = top2_select(P, L, cap, policy, on_cpu, m);
            Routing g = top2_select(P.to(cuda()), L.to(cuda()), cap, policy, on_gpu, m.to(cuda()));
            ASSERT_TRUE(g.loc.device().is_cuda()) << what;
            EXPECT_EQ(on_gpu.offset, on_cpu.offset) << what;
            EXPECT_EQ(ints(g.expert), ints(c.expert)) << what;
            EXPECT_EQ(ints(g.loc), ints(c.loc)) << what;
            EXPECT_EQ(ints(g.kept), ints(c.kept)) << what;
            EXPECT_EQ(ints(g.slot_src), ints(c.slot_src)) << what;
          }
      }
  // the worked example by hand on the device
  std::vector<float> p32(kP.begin(), kP.end());
  Tensor P = Tensor::from_f32(p32, {6, 3}).to(cuda());
  CounterRng rng(0, 0);
  Routing r = top2_select(P, log_of(kP, {6, 3}).to(DType::F32).to(cuda()), 3, Top2Policy::ALL,
                          rng, Tensor::from_i32(kMaskS1, {6}).to(cuda()));
  EXPECT_EQ(ints(r.loc), (std::vector<int32_t>{0, 1, -1, -1, 0, 3, 1, 2, 0, 3, 2, 1}));
  EXPECT_EQ(ints(r.slot_src), (std::vector<int32_t>{0, 6, 10, 4, 1, 7, 8, 11, -1}));
  EXPECT_NEAR(load_balance_loss(P, r).item(), 11.0 / 12, 1e-6);
}

TEST(CudaMoePadding, LoadBalanceLossAndStatisticsWithMaskMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 1000;
  for (int64_t N : {1, 65, 1031, 5000})
    for (int64_t E : {2, 7, 64, 600})
      for (const std::vector<int32_t>& mask : masks_for(N, seed++)) {
        const std::string what = "N=" + std::to_string(N) + " E=" + std::to_string(E);
        const auto [P, L] = random_gate(N, E, seed++);
        CounterRng rng(seed, 0);
        const Routing r = top2_select(P, L, moe_capacity(N, static_cast<int>(E), 0.5, true, 0.0),
                                      Top2Policy::ALL, rng, Tensor::from_i32(mask, {N}));
        auto f = [&r](const std::vector<Tensor>& in) {
          return load_balance_loss(in[0], routing_on(r, in[0].device()));
        };
        expect_cuda_matches_cpu(f, {leaf_f32({N, E}, seed++, 0.0, 2.0 / static_cast<double>(E))},
                                tol::load_balance, tol::load_balance, "l_aux " + what);
        const Tensor l_aux = Tensor::full({}, 1.25, DType::F32);
        const std::vector<double> c = moe_routing_stats_tensor(P, r, l_aux).to_f64_vector();
        const std::vector<double> g =
            moe_routing_stats_tensor(P.to(cuda()), routing_on(r, cuda()), l_aux.to(cuda()))
                .to_f64_vector();
        for (size_t i = 0; i < c.size(); ++i) {
          if (i == kStatEntropySum) {
            EXPECT_TRUE(within_tolerance(g[i], c[i], tol::sum)) << what;
          } else {
            EXPECT_EQ(g[i], c[i]) << what << " stat field " << i;
          }
        }
      }
}

TEST(CudaMoePadding, LayerWithMaskMatchesCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // Rows of 11 with lengths 11, 4, 0, 7 (f32), training capacity with expert dropout, then the
  // backward of sum(y * R) + 0.37 l_aux. Inputs are drawn so that no routing decision is closer
  // than 1e-4 to a tie (the devices' P differ by ~1e-7).
  const std::vector<int32_t> mask = right_padded({11, 4, 0, 7}, 11);
  const int64_t N = 44, C = 12, E = 5, H = 20;
  const std::vector<Tensor> in = {leaf_f32({N, C}, 1100), leaf_f32({E, C}, 1101, -1.5, 1.5),
                                  leaf_f32({E, C, H}, 1102, -0.5, 0.5),
                                  leaf_f32({E, H}, 1103, -0.3, 0.3),
                                  leaf_f32({E, H, C}, 1104, -0.5, 0.5),
                                  leaf_f32({E, C}, 1105, -0.3, 0.3)};
  ASSERT_GT(routing_margin(in[0], in[1]), 1e-4)
      << "inputs too close to a routing tie to compare two devices";
  MoEConfig cfg;
  cfg.num_experts = E;
  cfg.expert_dropout = 0.1;
  const Tensor R = random_f32({N, C}, 1106);
  auto run = [&](Device dev) {
    std::vector<Tensor> v;
    for (const Tensor& t : in) v.push_back(leaf_copy(t, dev));
    CounterRng rng(7, kTrainDropoutStream);
    MoEOutput o = moe_layer_forward(v[0], MoEParams{v[1], v[2], v[3], v[4], v[5]}, cfg, true,
                                    rng, Tensor::from_i32(mask, {N}).to(dev));
    backward(add(sum(mul(o.y, R.to(dev))), scale(o.l_aux, 0.37)));
    std::vector<std::vector<double>> out = {o.y.to_f64_vector(), o.l_aux.to_f64_vector()};
    for (const Tensor& t : v) out.push_back(t.grad().to_f64_vector());
    return out;
  };
  const auto c = run(cpu()), g = run(cuda());
  expect_allclose(g[0], c[0], tol::gemm, "y");
  expect_allclose(g[1], c[1], tol::load_balance, "l_aux");
  for (size_t k = 2; k < c.size(); ++k)
    expect_allclose(g[k], c[k], tol::gemm, "gradient " + std::to_string(k - 2));
}
