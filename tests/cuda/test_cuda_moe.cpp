// CUDA twins of the MoE ops (cuda/moe/*.cu) against the CPU ops (src/moe/*.cpp), SPEC §3:
// the router, top-2 selection (bit for bit, all three policies, the same Philox draws on both
// devices), gate weights, the aux loss, dispatch, combine, the expert FFNs and the routing
// statistics — forward and every input gradient, at odd sizes (N in 1, 3, 7, 13, 65, > 1000;
// E in 2, 3, 7, 16, 64, and 600 for the ops that loop over E) — then the CPU tests' edge cases on
// the GPU (the worked example of notes/moe-gating.md, ties, an expert with no token, overflow,
// all tokens to one expert, Cap > N), the whole layer CPU vs GPU in training with expert dropout,
// and a bitwise run-to-run repeat on the GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "moe/dispatch.h"
#include "moe/experts.h"
#include "moe/gate.h"
#include "moe/moe_layer.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;

namespace {

const int64_t kTokens[] = {1, 3, 7, 13, 65, 1031};
const int64_t kExperts[] = {2, 3, 7, 16, 64};
const Top2Policy kPolicies[] = {Top2Policy::ALL, Top2Policy::SAMPLING, Top2Policy::RANDOM};

std::string at(int64_t N, int64_t E) {
  return " N=" + std::to_string(N) + " E=" + std::to_string(E);
}

// The same routing with its tensors on `dev`.
Routing routing_on(const Routing& r, Device dev) {
  Routing c = r;
  c.expert = r.expert.to(dev);
  c.loc = r.loc.to(dev);
  c.kept = r.kept.to(dev);
  c.slot_src = r.slot_src.to(dev);
  if (r.token_mask.defined()) c.token_mask = r.token_mask.to(dev);
  return c;
}

// P and logits (N, E) of a random router on the CPU, f32, off the tape.
struct GateIn {
  Tensor probs, logits;
};
GateIn random_gate(int64_t N, int64_t E, uint64_t seed) {
  NoGradGuard no_grad;
  RouterOutput r = router(random_f32({N, 8}, seed), random_f32({E, 8}, seed + 1, -2.0, 2.0));
  return {r.probs, r.logits};
}

// A CPU routing of random probabilities with Cap = factor * 2 * ceil(N / E).
Routing cpu_routing(int64_t N, int64_t E, double factor, uint64_t seed) {
  GateIn g = random_gate(N, E, seed);
  CounterRng rng(seed, 0);
  return top2_select(g.probs, g.logits, moe_capacity(N, static_cast<int>(E), factor, true, 0.0),
                     Top2Policy::ALL, rng);
}

void expect_same_routing(const Routing& gpu, const Routing& cpu, const std::string& what) {
  ASSERT_TRUE(gpu.expert.device().is_cuda() && gpu.loc.device().is_cuda() &&
              gpu.kept.device().is_cuda() && gpu.slot_src.device().is_cuda())
      << what << ": the routing must live on the probabilities' device";
  EXPECT_EQ(gpu.capacity, cpu.capacity) << what;
  EXPECT_EQ(gpu.expert.to_i32_vector(), cpu.expert.to_i32_vector()) << what << " expert";
  EXPECT_EQ(gpu.loc.to_i32_vector(), cpu.loc.to_i32_vector()) << what << " loc";
  EXPECT_EQ(gpu.kept.to_i32_vector(), cpu.kept.to_i32_vector()) << what << " kept";
  EXPECT_EQ(gpu.slot_src.to_i32_vector(), cpu.slot_src.to_i32_vector()) << what << " slot_src";
}

// top2_select on the CPU and on the GPU from the same P, logits and generator state.
Routing expect_top2_matches(const Tensor& P, const Tensor& L, int64_t cap, Top2Policy policy,
                            uint64_t seed, const std::string& what) {
  CounterRng on_cpu(seed, kTrainDropoutStream), on_gpu(seed, kTrainDropoutStream);
  Routing c = top2_select(P, L, cap, policy, on_cpu);
  Routing g = top2_select(P.to(cuda()), L.to(cuda()), cap, policy, on_gpu);
  EXPECT_EQ(on_gpu.offset, on_cpu.offset) << what << ": both devices take the same draws";
  expect_same_routing(g, c, what + " policy=" + top2_policy_name(policy));
  return g;
}

Tensor log_f32(const std::vector<float>& p, const Shape& shape) {
  std::vector<float> l(p.size());
  for (size_t i = 0; i < p.size(); ++i) l[i] = p[i] > 0 ? std::log(p[i]) : -1000.0f;
  return Tensor::from_f32(l, shape);
}

// The worked example of notes/moe-gating.md (N = 6, E = 3).
const std::vector<float> kP = {0.5f, 0.3f, 0.2f, 0.6f, 0.1f, 0.3f, 0.2f, 0.7f, 0.1f,
                               0.7f, 0.2f, 0.1f, 0.1f, 0.2f, 0.7f, 0.4f, 0.2f, 0.4f};

}  // namespace

// ---------------------------------------------------------------------------------------------
// router

TEST(CudaMoe, RouterMatchesCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  auto probs = [](const std::vector<Tensor>& in) { return router(in[0], in[1]).probs; };
  uint64_t seed = 1;
  for (int64_t N : kTokens)
    for (int64_t E : kExperts) {
      const int64_t C = 5 + 6 * (seed % 3);
      Tensor x = leaf_f32({N, C}, seed++), wg = leaf_f32({E, C}, seed++);
      expect_cuda_matches_cpu(probs, {x, wg}, tol::router, tol::gemm, "router" + at(N, E));
      std::vector<double> lg = router(x.to(cuda()), wg.to(cuda())).logits.to_f64_vector();
      expect_allclose(lg, router(x, wg).logits.to_f64_vector(), tol::gemm, "logits" + at(N, E));
    }
  // mixed requires-grad, and E = 600 (19 entries per lane of a row's warp)
  expect_cuda_matches_cpu(probs, {random_f32({13, 9}, 90), leaf_f32({7, 9}, 91)}, tol::router,
                          tol::gemm, "router, x constant");
  expect_cuda_matches_cpu(probs, {leaf_f32({13, 9}, 92), random_f32({7, 9}, 93)}, tol::router,
                          tol::gemm, "router, wg constant");
  expect_cuda_matches_cpu(probs, {leaf_f32({37, 16}, 94), leaf_f32({600, 16}, 95)}, tol::router,
                          tol::gemm, "router E=600");
}

// ---------------------------------------------------------------------------------------------
// top-2 selection: the same i32 routing on both devices

TEST(CudaMoe, Top2SelectMatchesCpuBitForBit) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 100;
  std::vector<int64_t> tokens(std::begin(kTokens), std::end(kTokens));
  tokens.push_back(2500);  // several chunks of the counting sort (1024 items each)
  for (int64_t N : tokens)
    for (int64_t E : kExperts)
      for (double factor : {1.0, 0.5, 3.0}) {  // some drops, many drops, Cap > N
        GateIn g = random_gate(N, E, seed++);
        const int64_t cap = moe_capacity(N, static_cast<int>(E), factor, true, 0.0);
        for (Top2Policy policy : kPolicies)
          expect_top2_matches(g.probs, g.logits, cap, policy, seed,
                              "top2" + at(N, E) + " Cap=" + std::to_string(cap));
      }
  for (Top2Policy policy : kPolicies) {  // E > 512, and one token
    GateIn g = random_gate(300, 600, 7);
    expect_top2_matches(g.probs, g.logits, 2, policy, 8, "top2 E=600");
    GateIn one = random_gate(1, 64, 9);
    expect_top2_matches(one.probs, one.logits, 2, policy, 10, "top2 N=1 E=64");
  }
}

TEST(CudaMoe, Top2SelectWorkedExampleOnGpu) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor P = Tensor::from_f32(kP, {6, 3}), L = log_f32(kP, {6, 3});
  // Cap 3 (test_gate.cpp, HandWorkedSlotsCapacity3): s5's top-1 and s2's, s4's top-2 dropped
  Routing r = expect_top2_matches(P, L, 3, Top2Policy::ALL, 0, "worked example Cap 3");
  EXPECT_EQ(r.expert.to_i32_vector(), (std::vector<int32_t>{0, 1, 0, 2, 1, 0, 0, 1, 2, 1, 0, 2}));
  EXPECT_EQ(r.loc.to_i32_vector(), (std::vector<int32_t>{0, 1, 1, 1, 0, 4, 2, 2, 0, 3, 3, 2}));
  EXPECT_EQ(r.kept.to_i32_vector(), (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1}));
  EXPECT_EQ(r.slot_src.to_i32_vector(), (std::vector<int32_t>{0, 2, 6, 4, 1, 7, 8, 3, 11}));
  // Cap 2: s3 and s5 lose both slots
  r = expect_top2_matches(P, L, 2, Top2Policy::ALL, 0, "worked example Cap 2");
  EXPECT_EQ(r.kept.to_i32_vector(), (std::vector<int32_t>{1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(r.slot_src.to_i32_vector(), (std::vector<int32_t>{0, 2, 4, 1, 8, 3}));
  // aux loss by hand: 1.125 (the same on the device, l_aux stays there)
  Tensor l_aux = load_balance_loss(P.to(cuda()), r);
  EXPECT_TRUE(l_aux.device().is_cuda());
  EXPECT_NEAR(l_aux.item(), 1.125, 1e-6);
}

TEST(CudaMoe, Top2SelectEdgeCasesOnGpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // ties go to the lowest index: all equal -> (0, 1); [.4 .2 .4] -> (0, 2); [.2 .4 .4] -> (1, 2)
  const std::vector<float> ties = {1.f / 3, 1.f / 3, 1.f / 3, 0.4f, 0.2f, 0.4f, 0.2f, 0.4f, 0.4f};
  Routing r = expect_top2_matches(Tensor::from_f32(ties, {3, 3}), log_f32(ties, {3, 3}), 8,
                                  Top2Policy::ALL, 0, "ties");
  EXPECT_EQ(r.expert.to_i32_vector(), (std::vector<int32_t>{0, 1, 0, 2, 1, 2}));
  // the second choice comes from the logits, not from P
  r = expect_top2_matches(Tensor::from_f32({0.5f, 0.2f, 0.3f}, {1, 3}),
                          Tensor::from_f32({0.0f, 5.0f, 1.0f}, {1, 3}), 2, Top2Policy::ALL, 0,
                          "second choice from the logits");
  EXPECT_EQ(r.expert.to_i32_vector(), (std::vector<int32_t>{0, 1}));
  // an expert that gets no token (P = 0, logit -1000: not even Gumbel noise lifts it into
  // anyone's top 2), and all tokens to one expert (expert 0 first for all 50 tokens at Cap 26:
  // 24 top-1 picks overflow)
  const int64_t N = 50, E = 4;
  std::vector<float> none, one;
  for (int64_t s = 0; s < N; ++s) {
    const float a = 0.05f + 0.004f * static_cast<float>(s);
    none.insert(none.end(), {0.5f - a, 0.3f, 0.2f + a, 0.0f});
    one.insert(one.end(), {0.7f, 0.1f + a, 0.2f - a, 0.0f});
  }
  for (Top2Policy policy : kPolicies) {
    r = expect_top2_matches(Tensor::from_f32(none, {N, E}), log_f32(none, {N, E}), 26, policy, 3,
                            "expert without tokens");
    std::vector<int32_t> src = r.slot_src.to_i32_vector();
    EXPECT_TRUE(std::all_of(src.begin() + 3 * 26, src.end(), [](int32_t a) { return a < 0; }));
    r = expect_top2_matches(Tensor::from_f32(one, {N, E}), log_f32(one, {N, E}), 26, policy, 4,
                            "all tokens to one expert");
    std::vector<int32_t> kept = r.kept.to_i32_vector();
    int64_t kept1 = 0;
    for (int64_t s = 0; s < N; ++s) kept1 += kept[s * 2];
    EXPECT_EQ(kept1, 26) << "expert 0 takes its first 26 top-1 picks, the rest overflow";
  }
  // RANDOM: g2 = 0.5 is always kept, g2 = 0 never (and takes no slot)
  const std::vector<float> p = {0.5f, 0.5f, 0.0f, 1.0f, 0.0f, 0.0f};
  for (uint64_t seed = 0; seed < 5; ++seed) {
    r = expect_top2_matches(Tensor::from_f32(p, {2, 3}), log_f32(p, {2, 3}), 4,
                            Top2Policy::RANDOM, seed, "random keep rule");
    EXPECT_EQ(r.kept.to_i32_vector(), (std::vector<int32_t>{1, 1, 1, 0}));
    EXPECT_EQ(r.loc.to_i32_vector()[3], -1);
  }
}

// ---------------------------------------------------------------------------------------------
// gate weights and the aux loss (routing fixed: selected on the CPU, copied to the device)

TEST(CudaMoe, GateWeightsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 200;
  for (int64_t N : kTokens)
    for (int64_t E : kExperts)
      for (double factor : {1.0, 0.5}) {
        const Routing r = cpu_routing(N, E, factor, seed++);
        auto f = [&r](const std::vector<Tensor>& in) {
          return gate_weights(in[0], routing_on(r, in[0].device()));
        };
        expect_cuda_matches_cpu(f, {leaf_f32({N, E}, seed++, 0.01, 1.0)}, tol::gate_weights,
                                tol::gate_weights, "gate_weights" + at(N, E));
      }
  // below the eps floor of the denominator: D is the constant 1.19e-7
  const Routing r = cpu_routing(5, 2, 3.0, 7);
  auto f = [&r](const std::vector<Tensor>& in) {
    return gate_weights(in[0], routing_on(r, in[0].device()));
  };
  expect_cuda_matches_cpu(f, {leaf_f32({5, 2}, 8, 1e-9, 2e-9)}, tol::gate_weights,
                          tol::gate_weights, "gate_weights below eps");
}

TEST(CudaMoe, LoadBalanceLossMatchesCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 300;
  std::vector<int64_t> tokens(std::begin(kTokens), std::end(kTokens));
  tokens.push_back(5000);  // several counting chunks and column-sum pieces
  for (int64_t N : tokens)
    for (int64_t E : {2, 3, 7, 16, 64, 600}) {
      const Routing r = cpu_routing(N, E, 1.0, seed++);
      auto f = [&r](const std::vector<Tensor>& in) {
        return load_balance_loss(in[0], routing_on(r, in[0].device()));
      };
      expect_cuda_matches_cpu(f, {leaf_f32({N, E}, seed++, 0.0, 2.0 / static_cast<double>(E))},
                              tol::load_balance, tol::load_balance, "load_balance" + at(N, E));
    }
}

// ---------------------------------------------------------------------------------------------
// dispatch and combine

TEST(CudaMoe, DispatchAndCombineMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 400;
  for (int64_t N : kTokens)
    for (int64_t E : kExperts)
      for (double factor : {1.0, 0.5, 3.0}) {
        const Routing r = cpu_routing(N, E, factor, seed++);
        const int64_t C = 1 + 6 * (seed % 4), Cap = r.capacity;
        const std::string what = at(N, E) + " Cap=" + std::to_string(Cap);
        auto disp = [&r](const std::vector<Tensor>& in) {
          return dispatch(in[0], routing_on(r, in[0].device()));
        };
        expect_cuda_matches_cpu(disp, {leaf_f32({N, C}, seed++)}, tol::exact, tol::exact,
                                "dispatch" + what);
        auto comb = [&r](const std::vector<Tensor>& in) {
          return combine(in[0], in[1], routing_on(r, in[0].device()));
        };
        Tensor out = leaf_f32({E, Cap, C}, seed++), gates = leaf_f32({N, 2}, seed++, 0.0, 1.0);
        expect_cuda_matches_cpu(comb, {out, gates}, tol::combine, tol::combine,
                                "combine" + what);
        expect_cuda_matches_cpu(comb, {out.detach(), gates}, tol::combine, tol::combine,
                                "combine, out constant" + what);
        expect_cuda_matches_cpu(comb, {out, gates.detach()}, tol::combine, tol::combine,
                                "combine, gates constant" + what);
      }
}

TEST(CudaMoe, EmptySlotsNeverReachTheOutputOnGpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // Cap > N: many empty slots. Poison them with NaN: y must not change (combine reads only
  // kept slots), and the backward must write zeros there.
  const Routing r = cpu_routing(13, 7, 3.0, 5);
  const int64_t C = 4, Cap = r.capacity;
  std::vector<float> out = random_f32({7, Cap, C}, 6).to_f32_vector();
  const std::vector<int32_t> src = r.slot_src.to_i32_vector();
  for (size_t slot = 0; slot < src.size(); ++slot)
    if (src[slot] < 0)
      for (int64_t c = 0; c < C; ++c) out[slot * C + c] = std::nanf("");
  Tensor o = Tensor::from_f32(out, {7, Cap, C}).to(cuda());
  o.set_requires_grad(true);
  const Routing rg = routing_on(r, cuda());
  Tensor y = combine(o, random_f32({13, 2}, 7).to(cuda()), rg);
  for (double v : y.to_f64_vector()) ASSERT_FALSE(std::isnan(v));
  backward(y, random_f32({13, C}, 8).to(cuda()));
  const std::vector<double> d = o.grad().to_f64_vector();
  for (size_t slot = 0; slot < src.size(); ++slot) {
    if (src[slot] >= 0) continue;
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(d[slot * C + c], 0.0) << "empty slot " << slot;
  }
}

// ---------------------------------------------------------------------------------------------
// expert FFNs

TEST(CudaMoe, ExpertFfnMatchesCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  auto f = [](const std::vector<Tensor>& in) {
    return expert_ffn(in[0], in[1], in[2], in[3], in[4]);
  };
  uint64_t seed = 500;
  for (int64_t E : {2, 3, 7, 16})
    for (int64_t Cap : {1, 5, 300}) {  // 300 rows: the bias gradients take two pieces
      const int64_t C = 3 + 4 * (seed % 3), H = 4 * C + 1;
      std::vector<Tensor> in = {leaf_f32({E, Cap, C}, seed),
                                leaf_f32({E, C, H}, seed + 1, -0.5, 0.5),
                                leaf_f32({E, H}, seed + 2),
                                leaf_f32({E, H, C}, seed + 3, -0.5, 0.5),
                                leaf_f32({E, C}, seed + 4)};
      seed += 5;
      const std::string what = "expert_ffn E=" + std::to_string(E) + " Cap=" + std::to_string(Cap);
      expect_cuda_matches_cpu(f, in, tol::gemm, tol::gemm, what);
      // one input at a time needs a gradient
      for (size_t k = 0; k < in.size(); ++k) {
        std::vector<Tensor> mixed;
        for (size_t j = 0; j < in.size(); ++j) mixed.push_back(j == k ? in[j] : in[j].detach());
        expect_cuda_matches_cpu(f, mixed, tol::gemm, tol::gemm,
                                what + " only input " + std::to_string(k));
      }
    }
}

// ---------------------------------------------------------------------------------------------
// routing statistics

namespace {
// Counts exactly, the entropy within one float ulp (both sum in double, in different orders),
// l_aux copied.
void expect_stats_match(const Tensor& gpu, const Tensor& cpu, Tolerance entropy,
                        const std::string& what) {
  ASSERT_TRUE(gpu.device().is_cuda()) << what;
  const std::vector<double> g = gpu.to_f64_vector(), c = cpu.to_f64_vector();
  ASSERT_EQ(g.size(), c.size()) << what;
  for (size_t i = 0; i < c.size(); ++i) {
    if (i == kStatEntropySum) {
      EXPECT_TRUE(within_tolerance(g[i], c[i], entropy)) << what << " entropy " << g[i] << " vs "
                                                         << c[i];
    } else if (i == kStatLAux) {
      EXPECT_TRUE(within_tolerance(g[i], c[i], tol::load_balance)) << what << " l_aux";
    } else {
      EXPECT_EQ(g[i], c[i]) << what << " field " << i;
    }
  }
}
}  // namespace

TEST(CudaMoe, RoutingStatisticsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 600;
  for (int64_t N : {1, 7, 65, 1031, 5000})
    for (int64_t E : {2, 7, 64, 600})
      for (Top2Policy policy : kPolicies) {
        GateIn g = random_gate(N, E, seed++);
        CounterRng a(seed, 0), b(seed, 0);
        const int64_t cap = moe_capacity(N, static_cast<int>(E), 0.5, true, 0.0);
        Routing rc = top2_select(g.probs, g.logits, cap, policy, a);
        Tensor pg = g.probs.to(cuda());
        Routing rg = top2_select(pg, g.logits.to(cuda()), cap, policy, b);
        Tensor l_aux = Tensor::full({}, 1.25, DType::F32);
        expect_stats_match(moe_routing_stats_tensor(pg, rg, l_aux.to(cuda())),
                           moe_routing_stats_tensor(g.probs, rc, l_aux), tol::sum,
                           "stats" + at(N, E) + " " + top2_policy_name(policy));
      }
  // by hand, the worked example at Cap 2: kept per expert (2, 2, 2), half the assignments dropped
  Tensor P = Tensor::from_f32(kP, {6, 3}).to(cuda());
  CounterRng rng(0, 0);
  Routing r = top2_select(P, log_f32(kP, {6, 3}).to(cuda()), 2, Top2Policy::ALL, rng);
  MoEStats st = moe_routing_stats(P, r);
  EXPECT_EQ(st.tokens_per_expert, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(st.fraction_dropped, 0.5);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top1, 2.0 / 6);
  EXPECT_DOUBLE_EQ(st.fraction_dropped_top2, 4.0 / 6);
  EXPECT_DOUBLE_EQ(st.fraction_tokens_dropped, 2.0 / 6);
  EXPECT_EQ(st.l_aux, 0.0);
}

// ---------------------------------------------------------------------------------------------
// the whole layer

namespace {

struct LayerRun {
  Tensor y, l_aux, stats;
  std::vector<Tensor> grads;  // of x, wg, w1, b1, w2, b2
};

// in = {x, wg, w1, b1, w2, b2}: the parameters themselves (leaves, their gradients wanted), or
// plain copies of them on `dev`.
MoEParams params_of(const std::vector<Tensor>& in) {
  MoEParams p;
  p.wg = in[1];
  p.w1 = in[2];
  p.b1 = in[3];
  p.w2 = in[4];
  p.b2 = in[5];
  return p;
}
MoEParams params_on(const std::vector<Tensor>& in, Device dev) {
  MoEParams p;
  p.wg = in[1].detach().to(dev);
  p.w1 = in[2].detach().to(dev);
  p.b1 = in[3].detach().to(dev);
  p.w2 = in[4].detach().to(dev);
  p.b2 = in[5].detach().to(dev);
  return p;
}

// Forward in training (capacity rule, expert dropout, policy draws from `seed`), then backward of
// sum(y * R) + 0.37 * l_aux. `in` = {x, wg, w1, b1, w2, b2}, leaves on one device.
LayerRun run_layer(const std::vector<Tensor>& in, const MoEConfig& cfg, uint64_t seed,
                   const Tensor& R) {
  CounterRng rng(seed, kTrainDropoutStream);
  MoEOutput o = moe_layer_forward(in[0], params_of(in), cfg, true, rng);
  backward(add(sum(mul(o.y, R)), scale(o.l_aux, 0.37)));
  LayerRun res{o.y, o.l_aux, o.raw_stats, {}};
  for (const Tensor& t : in) res.grads.push_back(t.grad());
  return res;
}

std::vector<Tensor> layer_inputs(const Shape& x_shape, int64_t E, int64_t H, uint64_t seed) {
  const int64_t C = x_shape.back();
  return {leaf_f32(x_shape, seed),          leaf_f32({E, C}, seed + 1, -1.5, 1.5),
          leaf_f32({E, C, H}, seed + 2, -0.5, 0.5), leaf_f32({E, H}, seed + 3, -0.3, 0.3),
          leaf_f32({E, H, C}, seed + 4, -0.5, 0.5), leaf_f32({E, C}, seed + 5, -0.3, 0.3)};
}

// The smallest margin by which any routing decision of this forward is taken (e1 against the
// runner-up, e2 against the next, the RANDOM draw against 2 P[e2]), on the CPU's f32 values. The
// GPU's P and logits differ from these by ~1e-7, so a margin far above that means both devices
// must decide alike.
double routing_margin(const Tensor& x, const Tensor& wg, Top2Policy policy, uint64_t seed) {
  NoGradGuard no_grad;
  RouterOutput r = router(x.dim() == 2 ? x : x.detach().view({-1, x.size(-1)}), wg);
  const int64_t N = r.probs.size(0), E = r.probs.size(1);
  const std::vector<double> l = r.logits.to_f64_vector(), p = r.probs.to_f64_vector();
  const PhiloxRange draw{seed, kTrainDropoutStream, 0};  // the layer's first draw
  double margin = 1e300;
  for (int64_t s = 0; s < N; ++s) {
    std::vector<double> v(l.begin() + s * E, l.begin() + (s + 1) * E);
    const int64_t e1 = std::max_element(v.begin(), v.end()) - v.begin();
    std::vector<double> w = v;  // the candidates for e2
    for (int64_t e = 0; e < E && policy == Top2Policy::SAMPLING; ++e) {
      const double noise = gumbel_from_bits(draw.bits(static_cast<uint64_t>(s * E + e)));
      w[e] = static_cast<float>(v[e]) + static_cast<float>(noise);  // as both devices add it
    }
    std::sort(v.rbegin(), v.rend());
    margin = std::min(margin, v[0] - v[1]);
    w[e1] = -1e300;
    const int64_t e2 = std::max_element(w.begin(), w.end()) - w.begin();
    std::sort(w.rbegin(), w.rend());
    if (E > 2) margin = std::min(margin, w[0] - w[1]);
    if (policy == Top2Policy::RANDOM)
      margin = std::min(margin, std::fabs(draw.uniform(s) - 2.0 * p[s * E + e2]));
  }
  return margin;
}

void expect_layer_matches_cpu(const std::vector<Tensor>& in, const MoEConfig& cfg, uint64_t seed,
                              const std::string& what) {
  ASSERT_GT(routing_margin(in[0], in[1], top2_policy_from_string(cfg.top2_policy), seed), 1e-4)
      << what << ": inputs too close to a routing tie to compare two devices";
  std::vector<Tensor> on_cpu, on_gpu;
  for (const Tensor& t : in) {
    on_cpu.push_back(leaf_copy(t, cpu()));
    on_gpu.push_back(leaf_copy(t, cuda()));
  }
  Tensor R = random_f32(in[0].shape(), seed + 99);
  LayerRun c = run_layer(on_cpu, cfg, seed, R);
  LayerRun g = run_layer(on_gpu, cfg, seed, R.to(cuda()));
  ASSERT_TRUE(g.y.device().is_cuda() && g.l_aux.device().is_cuda() && g.stats.device().is_cuda())
      << what << ": the layer's outputs must stay on the GPU";
  expect_allclose(g.y.to_f64_vector(), c.y.to_f64_vector(), tol::gemm, what + " y");
  expect_allclose(g.l_aux.to_f64_vector(), c.l_aux.to_f64_vector(), tol::load_balance,
                  what + " l_aux");
  expect_stats_match(g.stats, c.stats, tol::router, what + " stats");
  const char* names[] = {"x", "wg", "w1", "b1", "w2", "b2"};
  for (size_t k = 0; k < in.size(); ++k) {
    ASSERT_TRUE(g.grads[k].defined() && g.grads[k].device().is_cuda()) << what << names[k];
    expect_allclose(g.grads[k].to_f64_vector(), c.grads[k].to_f64_vector(), tol::gemm,
                    what + " d" + names[k]);
  }
}

MoEConfig layer_config(int E, const char* policy, double factor, double dropout) {
  MoEConfig cfg;
  cfg.num_experts = E;
  cfg.top2_policy = policy;
  cfg.capacity_factor = factor;
  cfg.expert_dropout = dropout;
  return cfg;
}

}  // namespace

TEST(CudaMoe, MoeLayerMatchesCpuEndToEnd) {
  MOE_SKIP_WITHOUT_CUDA();
  // (B, T, C) input, policy all, expert dropout on
  expect_layer_matches_cpu(layer_inputs({2, 33, 16}, 4, 24, 700), layer_config(4, "all", 1.0, 0.1),
                           11, "layer (2, 33, 16) E=4 all");
  // sampling and random policies, overflow (factor 0.5), an odd number of experts
  expect_layer_matches_cpu(layer_inputs({41, 12}, 7, 20, 710),
                           layer_config(7, "sampling", 0.5, 0.1), 12, "layer E=7 sampling");
  expect_layer_matches_cpu(layer_inputs({29, 10}, 3, 16, 720),
                           layer_config(3, "random", 1.0, 0.1), 13, "layer E=3 random");
  // one token
  expect_layer_matches_cpu(layer_inputs({1, 8}, 5, 12, 730), layer_config(5, "all", 1.0, 0.1), 14,
                           "layer N=1");
}

TEST(CudaMoe, MoeLayerEdgeCasesMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // Feature 0 of every token is 1 and outweighs the other seven (|sum| < 7 * 1.5 = 10.5):
  // wg[3, 0] = -30 keeps expert 3 out of everyone's top 2; then wg[0, 0] = +30 makes expert 0
  // everyone's top-1, so it overflows at the training capacity.
  const int64_t N = 24, C = 8, E = 4;
  std::vector<Tensor> in = layer_inputs({N, C}, E, 16, 740);
  float* x = in[0].data<float>();
  for (int64_t s = 0; s < N; ++s) x[s * C] = 1.0f;
  in[1].data<float>()[3 * C] = -30.0f;
  expect_layer_matches_cpu(in, layer_config(4, "all", 1.0, 0.1), 15, "layer, expert 3 unused");
  in[1].data<float>()[0] = 30.0f;
  expect_layer_matches_cpu(in, layer_config(4, "all", 1.0, 0.1), 16, "layer, all to expert 0");
  expect_layer_matches_cpu(in, layer_config(4, "all", 3.0, 0.1), 17, "layer, Cap > N");
  // Cap = ceil(0.1 * 2 * 6) = 2: most tokens lose both slots. The GPU gives them exactly zero rows
  // where the CPU does, and the same statistics.
  expect_layer_matches_cpu(in, layer_config(4, "all", 0.1, 0.0), 18, "layer, Cap 2");
  const MoEParams pc = params_on(in, cpu()), pg = params_on(in, cuda());
  const MoEConfig cfg = layer_config(4, "all", 0.1, 0.0);
  CounterRng a(18, kTrainDropoutStream), b(18, kTrainDropoutStream);
  MoEOutput oc = moe_layer_forward(in[0].detach(), pc, cfg, true, a);
  MoEOutput og = moe_layer_forward(in[0].detach().to(cuda()), pg, cfg, true, b);
  EXPECT_EQ(og.capacity, 2);
  EXPECT_GT(og.stats().fraction_tokens_dropped, 0.5);
  const std::vector<double> yc = oc.y.to_f64_vector(), yg = og.y.to_f64_vector();
  int64_t zero_rows = 0;
  for (int64_t s = 0; s < N; ++s) {
    const bool zero = std::all_of(yc.begin() + s * C, yc.begin() + (s + 1) * C,
                                  [](double v) { return v == 0.0; });
    if (!zero) continue;
    ++zero_rows;
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(yg[s * C + c], 0.0) << "token " << s;
  }
  EXPECT_EQ(static_cast<double>(zero_rows) / N, og.stats().fraction_tokens_dropped);
  // the unused expert: no kept assignment in the statistics of the first configuration
  CounterRng c(15, kTrainDropoutStream);
  std::vector<Tensor> first = layer_inputs({N, C}, E, 16, 740);
  for (int64_t s = 0; s < N; ++s) first[0].data<float>()[s * C] = 1.0f;
  first[1].data<float>()[3 * C] = -30.0f;
  MoEOutput of = moe_layer_forward(first[0].to(cuda()), params_on(first, cuda()),
                                   layer_config(4, "all", 1.0, 0.1), true, c);
  EXPECT_EQ(of.stats().tokens_per_expert[3], 0);
}

TEST(CudaMoe, MoeLayerRepeatsBitForBitOnGpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // Large enough that every kernel runs many blocks and the counting sort several chunks;
  // sampling and dropout on, so the device's random draws are part of what must repeat.
  const std::vector<Tensor> in = layer_inputs({2048, 16}, 8, 64, 800);
  const MoEConfig cfg = layer_config(8, "sampling", 1.0, 0.1);
  Tensor R = random_f32({2048, 16}, 801).to(cuda());
  std::vector<std::vector<float>> runs[2];
  for (int t = 0; t < 2; ++t) {
    std::vector<Tensor> on_gpu;
    for (const Tensor& v : in) on_gpu.push_back(leaf_copy(v, cuda()));
    LayerRun g = run_layer(on_gpu, cfg, 21, R);
    runs[t] = {g.y.to_f32_vector(), g.l_aux.to_f32_vector(), g.stats.to_f32_vector()};
    for (const Tensor& d : g.grads) runs[t].push_back(d.to_f32_vector());
  }
  for (size_t k = 0; k < runs[0].size(); ++k) EXPECT_EQ(runs[0][k], runs[1][k]) << "tensor " << k;
}

TEST(CudaMoe, MixedDevicesAreErrors) {
  MOE_SKIP_WITHOUT_CUDA();
  EXPECT_THROW(router(random_f32({4, 3}, 1).to(cuda()), random_f32({2, 3}, 2)), Error);
  const Routing r = cpu_routing(6, 3, 1.0, 3);
  EXPECT_THROW(dispatch(random_f32({6, 4}, 4).to(cuda()), r), Error);  // routing on the CPU
  EXPECT_THROW(gate_weights(random_f32({6, 3}, 5).to(cuda()), r), Error);
  EXPECT_THROW(expert_ffn(random_f32({3, 2, 4}, 6).to(cuda()), random_f32({3, 4, 5}, 7),
                          random_f32({3, 5}, 8), random_f32({3, 5, 4}, 9), random_f32({3, 4}, 10)),
               Error);
}
