// Tests for moe/gate: the capacity formula, top-2 selection worked by hand (slots, drops, ties,
// the three policies), gate renormalisation and the aux loss by hand, and f64 gradient checks of
// the router, gate_weights and load_balance_loss. The hand-worked example is the one of
// notes/moe-gating.md ("A worked example").
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "gradcheck.h"
#include "moe/gate.h"

using namespace moe;
using namespace moe::testing;

namespace {

// The worked example: N = 6 tokens, E = 3 experts, P chosen so that every sum is easy by hand.
// logits = log P, so softmax(logits) = P and "argmax of the logits" = "argmax of P".
const std::vector<double> kP = {
    0.5, 0.3, 0.2,  // s0: e1 = 0, e2 = 1
    0.6, 0.1, 0.3,  // s1: e1 = 0, e2 = 2
    0.2, 0.7, 0.1,  // s2: e1 = 1, e2 = 0
    0.7, 0.2, 0.1,  // s3: e1 = 0, e2 = 1
    0.1, 0.2, 0.7,  // s4: e1 = 2, e2 = 1
    0.4, 0.2, 0.4,  // s5: tie between 0 and 2 -> e1 = 0 (lowest index), e2 = 2
};

Tensor log_of(const std::vector<double>& p, const Shape& shape) {
  std::vector<double> l(p.size());
  for (size_t i = 0; i < p.size(); ++i) l[i] = p[i] > 0 ? std::log(p[i]) : -1000.0;
  return Tensor::from_f64(l, shape);
}

Routing route(const std::vector<double>& p, int64_t E, int64_t cap, Top2Policy policy,
              uint64_t seed = 0) {
  const int64_t N = static_cast<int64_t>(p.size()) / E;
  CounterRng rng(seed, 0);
  return top2_select(Tensor::from_f64(p, {N, E}), log_of(p, {N, E}), cap, policy, rng);
}

std::vector<int32_t> ints(const Tensor& t) { return t.to_i32_vector(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// capacity

TEST(MoeCapacity, Formula) {
  EXPECT_EQ(moe_capacity(6, 3, 1.0, true, 0.0), 4);     // 2 * ceil(6/3)
  EXPECT_EQ(moe_capacity(7, 3, 1.0, true, 0.0), 6);     // 2 * ceil(7/3) = 2 * 3 (ceil first)
  EXPECT_EQ(moe_capacity(8, 3, 1.5, true, 0.0), 9);     // ceil(1.5 * 2 * 3)
  EXPECT_EQ(moe_capacity(7, 3, 1.25, true, 0.0), 8);    // ceil(1.25 * 6) = ceil(7.5)
  EXPECT_EQ(moe_capacity(5, 8, 1.0, true, 0.0), 2);     // E > N: still 2 * ceil(5/8) = 2
  EXPECT_EQ(moe_capacity(8, 2, 0.25, true, 0.0), 2);    // ceil(0.25 * 8)
  EXPECT_EQ(moe_capacity(10, 2, 1.0, true, 0.25), 10);  // training ignores the eval fraction
  EXPECT_EQ(moe_capacity(10, 2, 1.0, false, 0.0), 10);  // eval without a fraction: same formula
  EXPECT_EQ(moe_capacity(10, 2, 1.0, false, 0.25), 3);  // ceil(0.25 * 10) = ceil(2.5)
  EXPECT_EQ(moe_capacity(12, 2, 1.0, false, 0.25), 3);  // exactly 3
  EXPECT_EQ(moe_capacity(100, 2, 1.0, false, 0.55), 56);  // 0.55 * 100 = 55.00000000000001, as
                                                         // in fairseq's Python
}

TEST(MoeCapacity, BadArgumentsAreErrors) {
  EXPECT_THROW(moe_capacity(0, 2, 1.0, true, 0.0), Error);
  EXPECT_THROW(moe_capacity(4, 0, 1.0, true, 0.0), Error);
  EXPECT_THROW(moe_capacity(4, 2, 0.0, true, 0.0), Error);
  EXPECT_THROW(moe_capacity(4, 2, 1.0, false, -0.5), Error);
}

// ---------------------------------------------------------------------------------------------
// top-2 selection by hand

TEST(Top2Select, HandWorkedSlotsCapacity3) {
  Routing r = route(kP, 3, 3, Top2Policy::ALL);
  EXPECT_EQ(r.num_tokens, 6);
  EXPECT_EQ(r.capacity, 3);
  // (e1, e2) per token
  EXPECT_EQ(ints(r.expert), (std::vector<int32_t>{0, 1, 0, 2, 1, 0, 0, 1, 2, 1, 0, 2}));
  // top-1 picks: expert 0 <- s0 s1 s3 s5 (ranks 0 1 2 3), expert 1 <- s2, expert 2 <- s4.
  // top-2 picks start after all top-1 picks of their expert:
  //   expert 1 <- s0 s3 s4 : 1 + (0 1 2) = 1 2 3;  expert 2 <- s1 s5 : 1 + (0 1) = 1 2;
  //   expert 0 <- s2       : 4 + 0 = 4
  EXPECT_EQ(ints(r.loc), (std::vector<int32_t>{0, 1, 1, 1, 0, 4, 2, 2, 0, 3, 3, 2}));
  // Cap = 3: drop loc >= 3 -> s5's top-1, s2's and s4's top-2
  EXPECT_EQ(ints(r.kept), (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1}));
  // slot -> assignment s*2 + k
  EXPECT_EQ(ints(r.slot_src), (std::vector<int32_t>{0, 2, 6,     // expert 0: s0, s1, s3 (top-1)
                                                    4, 1, 7,     // expert 1: s2 top-1, s0, s3
                                                    8, 3, 11}));  // expert 2: s4 top-1, s1, s5
}

TEST(Top2Select, HandWorkedSlotsCapacity2) {
  Routing r = route(kP, 3, 2, Top2Policy::ALL);
  EXPECT_EQ(ints(r.loc), (std::vector<int32_t>{0, 1, 1, 1, 0, 4, 2, 2, 0, 3, 3, 2}));
  // Cap = 2: s3 and s5 lose both slots; s2 and s4 keep only their top-1
  EXPECT_EQ(ints(r.kept), (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(ints(r.slot_src), (std::vector<int32_t>{0, 2, 4, 1, 8, 3}));
}

TEST(Top2Select, TiesGoToTheLowestIndex) {
  // all equal -> (0, 1); [.4 .2 .4] -> (0, 2); [.5 .25 .25] -> (0, 1); [.2 .4 .4] -> (1, 2)
  Routing r = route({1. / 3, 1. / 3, 1. / 3, 0.4, 0.2, 0.4, 0.5, 0.25, 0.25, 0.2, 0.4, 0.4}, 3, 8,
                    Top2Policy::ALL);
  EXPECT_EQ(ints(r.expert), (std::vector<int32_t>{0, 1, 0, 2, 0, 1, 1, 2}));
}

TEST(Top2Select, SecondChoiceComesFromTheLogits) {
  // P and logits disagree on purpose: e1 follows P, e2 follows the logits (fairseq's rule).
  Tensor p = Tensor::from_f64({0.5, 0.2, 0.3}, {1, 3});
  Tensor l = Tensor::from_f64({0.0, 5.0, 1.0}, {1, 3});
  CounterRng rng(0, 0);
  Routing r = top2_select(p, l, 2, Top2Policy::ALL, rng);
  EXPECT_EQ(ints(r.expert), (std::vector<int32_t>{0, 1}));
}

// ---------------------------------------------------------------------------------------------
// gates and aux loss by hand

TEST(GateWeights, HandWorked) {
  Tensor P = Tensor::from_f64(kP, {6, 3});
  // Cap 3: s0 (0.5, 0.3) -> (5/8, 3/8); s1 (0.6, 0.3) -> (2/3, 1/3); s2, s4 keep top-1 only ->
  // (1, 0); s3 (0.7, 0.2) -> (7/9, 2/9); s5 lost its top-1, kept its top-2 -> (0, 1).
  std::vector<double> want3 = {5. / 8, 3. / 8, 2. / 3, 1. / 3, 1, 0, 7. / 9, 2. / 9, 1, 0, 0, 1};
  std::vector<double> got3 = gate_weights(P, route(kP, 3, 3, Top2Policy::ALL)).to_f64_vector();
  // Cap 2: s3 and s5 lost both slots -> (0, 0).
  std::vector<double> want2 = {5. / 8, 3. / 8, 2. / 3, 1. / 3, 1, 0, 0, 0, 1, 0, 0, 0};
  std::vector<double> got2 = gate_weights(P, route(kP, 3, 2, Top2Policy::ALL)).to_f64_vector();
  for (size_t i = 0; i < want3.size(); ++i) {
    EXPECT_NEAR(got3[i], want3[i], 1e-15) << "Cap 3, element " << i;
    EXPECT_NEAR(got2[i], want2[i], 1e-15) << "Cap 2, element " << i;
  }
}

TEST(GateWeights, DenominatorFloorsAtFloatEpsilon) {
  // One kept gate of 1e-9: G = 1e-9 / 1.19e-7 instead of 1 (fairseq's clamp).
  Tensor P = Tensor::from_f64({1e-9, 0.5}, {1, 2});
  Routing r = route({0.6, 0.4}, 2, 1, Top2Policy::ALL);  // e1 = 0 kept, e2 = 1 kept
  std::vector<double> g = gate_weights(P, r).to_f64_vector();
  EXPECT_NEAR(g[0], 1e-9 / (1e-9 + 0.5), 1e-15);  // the normal branch
  P = Tensor::from_f64({1e-9, 1e-9}, {1, 2});
  g = gate_weights(P, r).to_f64_vector();
  EXPECT_DOUBLE_EQ(g[0], 1e-9 / kGateDenomEps);
  EXPECT_DOUBLE_EQ(g[1], 1e-9 / kGateDenomEps);
}

TEST(LoadBalanceLoss, HandWorked) {
  // me = column means = (2.5, 1.7, 1.8) / 6; ce = top-1 counts / 6 = (4, 1, 1) / 6 (s5's top-1
  // counts although it is dropped at Cap 2: the aux loss comes before dropping);
  // l_aux = 3 * (2.5*4 + 1.7*1 + 1.8*1) / 36 = 1.125.
  Tensor P = Tensor::from_f64(kP, {6, 3});
  EXPECT_NEAR(load_balance_loss(P, route(kP, 3, 2, Top2Policy::ALL)).item(), 1.125, 1e-14);
  EXPECT_NEAR(load_balance_loss(P, route(kP, 3, 4, Top2Policy::ALL)).item(), 1.125, 1e-14);
}

TEST(LoadBalanceLoss, ExactlyOneAtPerfectBalance) {
  // (a) uniform P (every top-1 is expert 0 by the tie rule): E * (1/E) * 1 = 1.
  std::vector<double> uni(5 * 4, 0.25);
  Tensor P = Tensor::from_f64(uni, {5, 4});
  EXPECT_DOUBLE_EQ(load_balance_loss(P, route(uni, 4, 4, Top2Policy::ALL)).item(), 1.0);
  // (b) 8 tokens, each expert top-1 for two of them, and me uniform: 4 * 4 * (1/4 * 1/4) = 1.
  std::vector<double> bal;
  for (int s = 0; s < 8; ++s)
    for (int e = 0; e < 4; ++e) bal.push_back(e == s % 4 ? 0.4 : 0.2);
  P = Tensor::from_f64(bal, {8, 4});
  EXPECT_DOUBLE_EQ(load_balance_loss(P, route(bal, 4, 4, Top2Policy::ALL)).item(), 1.0);
  // (c) all top-1 on one expert with P = one-hot-ish: l_aux = E * me[0] = 4 * 0.97 > 1.
  std::vector<double> skew;
  for (int s = 0; s < 8; ++s)
    for (int e = 0; e < 4; ++e) skew.push_back(e == 0 ? 0.97 : 0.01);
  P = Tensor::from_f64(skew, {8, 4});
  EXPECT_NEAR(load_balance_loss(P, route(skew, 4, 4, Top2Policy::ALL)).item(), 3.88, 1e-14);
}

// ---------------------------------------------------------------------------------------------
// the other two policies

TEST(Top2Select, RandomPolicyKeepsWithProbabilityTwiceG2) {
  // s0: P = (0.5, 0.5, 0): g2 = 0.5, 2*g2 = 1 > u always -> kept.
  // s1: P = (1, 0, 0): e2 = 1 (tie at -1000, lowest), g2 = 0 -> never kept.
  // s2: P = (0.4, 0.6, 0): e1 = 1, e2 = 0, g2 = 0.4 -> kept (0.8 > u) unless u >= 0.8.
  const std::vector<double> p = {0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 0.4, 0.6, 0.0};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Routing r = route(p, 3, 4, Top2Policy::RANDOM, seed);
    std::vector<int32_t> loc = ints(r.loc), kept = ints(r.kept), ex = ints(r.expert);
    EXPECT_EQ(ex, (std::vector<int32_t>{0, 1, 0, 1, 1, 0}));
    EXPECT_EQ(kept[1], 1) << "g2 = 0.5 must always be kept";
    EXPECT_EQ(kept[3], 0) << "g2 = 0 must never be kept";
    EXPECT_EQ(loc[3], -1) << "a skipped second choice takes no slot";
    // expert 1's queue: s0's top-2 after the one top-1 pick of expert 1 (s2) -> loc 1
    EXPECT_EQ(loc[1], 1);
    // s2's top-2 goes to expert 0 after its two top-1 picks, or is skipped
    EXPECT_TRUE(loc[5] == 2 || loc[5] == -1) << loc[5];
    EXPECT_EQ(kept[5], loc[5] == 2 ? 1 : 0);
  }
  // Statistics: g2 = 0.2 is kept with probability 0.4.
  std::vector<double> many;
  for (int s = 0; s < 20000; ++s) many.insert(many.end(), {0.8, 0.2});
  Routing r = route(many, 2, 40000, Top2Policy::RANDOM, 7);
  std::vector<int32_t> kept = ints(r.kept);
  int64_t n2 = 0;
  for (int s = 0; s < 20000; ++s) n2 += kept[2 * s + 1];
  EXPECT_NEAR(n2 / 20000.0, 0.4, 0.01);
  // skipped ones take no slot: the kept top-2 picks of expert 1 (no top-1 picks) rank 0 .. n2-1
  std::vector<int32_t> loc = ints(r.loc);
  int32_t max_loc2 = -1;
  for (int s = 0; s < 20000; ++s) max_loc2 = std::max(max_loc2, loc[2 * s + 1]);
  EXPECT_EQ(max_loc2, n2 - 1);
}

TEST(Top2Select, SamplingPolicyFollowsGumbelMax) {
  // Expert 0 always wins top-1; the second choice among experts 1, 2 with logits log 0.25 and
  // log 0.75 must pick expert 2 about 75% of the time (Gumbel-max samples softmax).
  const int64_t N = 20000, E = 3;
  std::vector<double> lg, pr;
  for (int64_t s = 0; s < N; ++s) {
    lg.insert(lg.end(), {10.0, std::log(0.25), std::log(0.75)});
    pr.insert(pr.end(), {0.9, 0.025, 0.075});
  }
  Tensor P = Tensor::from_f64(pr, {N, E}), L = Tensor::from_f64(lg, {N, E});
  CounterRng rng(3, 0);
  Routing r = top2_select(P, L, 2 * N, Top2Policy::SAMPLING, rng);
  std::vector<int32_t> ex = ints(r.expert);
  int64_t to2 = 0;
  for (int64_t s = 0; s < N; ++s) {
    ASSERT_EQ(ex[2 * s], 0) << "noise must not touch the top-1 choice";
    ASSERT_NE(ex[2 * s + 1], 0);
    to2 += ex[2 * s + 1] == 2;
  }
  EXPECT_NEAR(static_cast<double>(to2) / N, 0.75, 0.01);
  // It took exactly N*E values (in whole Philox blocks of 4), and the same seed gives the same
  // routing.
  EXPECT_EQ(rng.offset, static_cast<uint64_t>((N * E + 3) / 4 * 4));
  CounterRng again(3, 0);
  EXPECT_EQ(ints(top2_select(P, L, 2 * N, Top2Policy::SAMPLING, again).expert), ex);
}

TEST(Top2Select, AllPolicyDrawsNothing) {
  CounterRng rng(11, 0);
  const uint64_t before = rng.offset;
  route(kP, 3, 3, Top2Policy::ALL);
  Tensor P = Tensor::from_f64(kP, {6, 3});
  top2_select(P, log_of(kP, {6, 3}), 3, Top2Policy::ALL, rng);
  EXPECT_EQ(rng.offset, before);
}

TEST(Top2Select, PolicyNames) {
  EXPECT_EQ(top2_policy_from_string("all"), Top2Policy::ALL);
  EXPECT_EQ(top2_policy_from_string("sampling"), Top2Policy::SAMPLING);
  EXPECT_EQ(top2_policy_from_string("random"), Top2Policy::RANDOM);
  try {
    top2_policy_from_string("top1");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("all, sampling, random"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// router

TEST(Router, ForwardMatchesNaive) {
  const int64_t N = 5, C = 3, E = 4;
  Tensor x = random_f64({N, C}, 1), wg = random_f64({E, C}, 2);
  RouterOutput out = router(x, wg);
  for (int64_t s = 0; s < N; ++s) {
    double l[E], mx = -1e300, z = 0;
    for (int64_t e = 0; e < E; ++e) {
      l[e] = 0;
      for (int64_t c = 0; c < C; ++c) l[e] += x.at({s, c}) * wg.at({e, c});
      mx = std::max(mx, l[e]);
    }
    for (int64_t e = 0; e < E; ++e) z += std::exp(l[e] - mx);
    for (int64_t e = 0; e < E; ++e) {
      EXPECT_NEAR(out.logits.at({s, e}), l[e], 1e-14);
      EXPECT_NEAR(out.probs.at({s, e}), std::exp(l[e] - mx) / z, 1e-14);
    }
  }
  EXPECT_FALSE(out.logits.requires_grad());
}

TEST(Router, GradCheck) {
  auto probs = [](const std::vector<Tensor>& in) { return router(in[0], in[1]).probs; };
  for (const Shape& s : {Shape{1, 1, 2}, Shape{5, 3, 4}, Shape{7, 6, 5}}) {
    const int64_t N = s[0], C = s[1], E = s[2];
    expect_gradcheck(probs, {param_f64({N, C}, 3), param_f64({E, C}, 4)});
    expect_gradcheck(probs, {random_f64({N, C}, 5), param_f64({E, C}, 6)});  // mixed
    expect_gradcheck(probs, {param_f64({N, C}, 7), random_f64({E, C}, 8)});
  }
}

TEST(Router, BadShapesAreErrors) {
  EXPECT_THROW(router(Tensor::zeros({4, 3}), Tensor::zeros({1, 3})), Error);  // E = 1
  EXPECT_THROW(router(Tensor::zeros({4, 3}), Tensor::zeros({2, 4})), Error);  // C differs
  EXPECT_THROW(router(Tensor::zeros({4, 3}), Tensor::zeros({2, 3}, DType::F64)), Error);
  try {
    router(Tensor::zeros({2, 4, 3}), Tensor::zeros({2, 3}));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 4, 3)"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// gradient checks of gate_weights and load_balance_loss (routing held fixed)

TEST(GateWeights, GradCheck) {
  // Cap 2 on the worked example: tokens with both, one and no slot.
  Routing r = route(kP, 3, 2, Top2Policy::ALL);
  auto f = [&r](const std::vector<Tensor>& in) { return gate_weights(in[0], r); };
  expect_gradcheck(f, {param_f64({6, 3}, 9, 0.05, 1.0)});
  // Random P, larger N and E, the capacity factor that drops some.
  const int64_t N = 13, E = 5;
  Tensor p = param_f64({N, E}, 10, 0.01, 1.0);
  Routing r2 = route(p.to_f64_vector(), E, 4, Top2Policy::ALL);
  auto f2 = [&r2](const std::vector<Tensor>& in) { return gate_weights(in[0], r2); };
  expect_gradcheck(f2, {p});
}

TEST(GateWeights, GradCheckBelowTheEpsilonFloor) {
  // g1 + g2 = 2e-9 < eps: the denominator is the constant eps. h must stay below the kink.
  Routing r = route({0.6, 0.4}, 2, 1, Top2Policy::ALL);
  auto f = [&r](const std::vector<Tensor>& in) { return gate_weights(in[0], r); };
  Tensor p = Tensor::from_f64({1e-9, 1e-9}, {1, 2});
  p.set_requires_grad(true);
  expect_gradcheck(f, {p}, 1e-6, 1e-5, 1e-12);
  // By hand: with D constant, dG1/dP[0] = 1/eps and dG1/dP[1] = 0.
  p.zero_grad();
  backward(gate_weights(p, r), Tensor::from_f64({1.0, 0.0}, {1, 2}));
  EXPECT_DOUBLE_EQ(p.grad().at({0, 0}), 1.0 / kGateDenomEps);
  EXPECT_DOUBLE_EQ(p.grad().at({0, 1}), 0.0);
}

TEST(LoadBalanceLoss, GradCheck) {
  Routing r = route(kP, 3, 2, Top2Policy::ALL);
  auto f = [&r](const std::vector<Tensor>& in) { return load_balance_loss(in[0], r); };
  expect_gradcheck(f, {param_f64({6, 3}, 11, 0.0, 1.0)});
  // The gradient is E * ce[e] / N for every token: (4, 1, 1) * 3 / 36.
  Tensor p = Tensor::from_f64(kP, {6, 3});
  p.set_requires_grad(true);
  backward(load_balance_loss(p, r));
  for (int64_t s = 0; s < 6; ++s) {
    EXPECT_NEAR(p.grad().at({s, 0}), 4.0 * 3 / 36, 1e-15);
    EXPECT_NEAR(p.grad().at({s, 1}), 1.0 * 3 / 36, 1e-15);
    EXPECT_NEAR(p.grad().at({s, 2}), 1.0 * 3 / 36, 1e-15);
  }
}

TEST(Top2Select, F32MatchesF64) {
  // The same decisions in both precisions when nothing is close to a tie.
  const int64_t N = 40, C = 8, E = 6;
  Tensor x = random_f64({N, C}, 21), wg = random_f64({E, C}, 22);
  RouterOutput r64 = router(x, wg), r32 = router(x.to(DType::F32), wg.to(DType::F32));
  CounterRng a(1, 0), b(1, 0);
  Routing q64 = top2_select(r64.probs, r64.logits, 10, Top2Policy::ALL, a);
  Routing q32 = top2_select(r32.probs, r32.logits, 10, Top2Policy::ALL, b);
  EXPECT_EQ(ints(q64.expert), ints(q32.expert));
  EXPECT_EQ(ints(q64.loc), ints(q32.loc));
  EXPECT_EQ(ints(q64.slot_src), ints(q32.slot_src));
  std::vector<double> g64 = gate_weights(r64.probs, q64).to_f64_vector();
  std::vector<double> g32 = gate_weights(r32.probs, q32).to_f64_vector();
  for (size_t i = 0; i < g64.size(); ++i) EXPECT_NEAR(g32[i], g64[i], 1e-6);
  EXPECT_NEAR(load_balance_loss(r32.probs, q32).item(), load_balance_loss(r64.probs, q64).item(),
              1e-6);
}
