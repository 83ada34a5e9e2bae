// Expert and data parallelism against one process (SPEC §4; notes/distributed.md "Tests").
//
// W ranks each take their B/W rows of one global batch. The reference is one process holding
// the whole model that runs each rank's rows as a separate forward — so each share is gated
// separately, with the same per-rank capacity — and minimises the mean of the shares' losses.
// The two must agree on the losses, the aux losses, every gradient (replicated ones averaged,
// expert ones in place on their owner) and the parameters after a few AdamW steps. Tolerance:
// float32 sums in another order (the all-reduce adds rank by rank, the reference accumulates
// share by share), so 1e-5 relative on losses and gradients, and 1e-5 + 1e-4 relative on
// parameters after 3 steps of lr 1e-3. Runs at whatever W mpirun gave (make test: 1, 2, 4), once
// per transport this machine has.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "dist/grad_sync.h"
#include "mpi_test_util.h"
#include "nn/gpt.h"
#include "ops/elementwise.h"
#include "optim/adamw.h"

using namespace moe;
using moe::testing::transports_here;

namespace {

constexpr double kAuxWeight = 0.01;

GPTConfig tiny_config(int experts) {
  GPTConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 8;
  c.vocab_size = 40;
  c.dropout = 0.0;  // dropout masks are drawn per rank: equivalence is for the deterministic model
  c.moe_experts = experts;
  c.moe_freq = 2;   // block 1 is the MoE one
  c.capacity_factor = 1.0;  // small capacity: some tokens drop, per rank as in the reference
  return c;
}

// The global batch of step `step`: (B, T) ids and targets, the same on every rank.
void global_batch(int B, int T, int V, int step, Tensor* x, Tensor* y) {
  std::vector<int32_t> ids(static_cast<size_t>(B) * T), tgt(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>((i * 7 + static_cast<size_t>(step) * 13 + i * i) % V);
    tgt[i] = static_cast<int32_t>((i * 5 + static_cast<size_t>(step) * 3 + 1) % V);
  }
  *x = Tensor::from_i32(ids, {B, T});
  *y = Tensor::from_i32(tgt, {B, T});
}

Tensor rows(const Tensor& t, int q, int b) { return t.slice_view(0, q * b, (q + 1) * b).clone(); }

// loss of one share: NLL + w * aux.
Tensor share_loss(GPT& m, const Tensor& x, const Tensor& y, Tensor* nll, Tensor* aux) {
  CounterRng rng;
  *nll = m.forward_loss(x, y, true, rng);
  Tensor loss = *nll;
  if (m.aux_loss().defined()) {
    *aux = m.aux_loss().detach();
    loss = add(loss, scale(m.aux_loss(), kAuxWeight));
  }
  return loss;
}

void expect_close(const Tensor& got, const Tensor& want, double rel, double abs,
                  const std::string& what) {
  const std::vector<double> a = got.to(cpu()).to_f64_vector(), b = want.to(cpu()).to_f64_vector();
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], abs + rel * std::fabs(b[i])) << what << " [" << i << "] on rank "
                                                         << dist().rank;
}

// This rank's part of a reference tensor: its expert slice for an expert tensor, else all of it.
Tensor my_part(const std::string& name, const Tensor& full, int E) {
  if (!GPT::is_expert_param(name)) return full;
  const int W = dist().world, n = E / W;
  return full.slice_view(0, dist().rank * n, (dist().rank + 1) * n).clone();
}

// Trains both for `steps` steps and compares everything. scaling: "lr" (expert gradients exact:
// the owner's sum times 1/W) or "gradient" (times 1/sqrt(W): sqrt(W) times the exact gradient).
void run_equivalence(int experts, const std::string& scaling, const std::string& transport,
                     Device dev) {
  const int W = dist().world, B = 4, steps = 3;
  ASSERT_EQ(B % W, 0);
  const int b = B / W;
  const GPTConfig cfg = tiny_config(experts);
  std::unique_ptr<Transport> t = make_transport(transport, dev);
  GPT ep_model(cfg, 5, dev, ExpertParallel{dist().rank, W, t.get()});
  GPT ref(cfg, 5, dev);  // the whole model, one process
  AdamWConfig ac;
  // The key bias's gradient is zero in exact arithmetic (softmax ignores a shift common to all
  // keys), so in f32 it is rounding noise that differs with the order of the sums; with eps 1e-8
  // Adam would turn that noise into full-size, sign-random updates. A larger eps keeps noise-level
  // gradients from moving the parameters while real gradients still take Adam steps.
  ac.eps = 1e-4;
  AdamW ep_opt(ep_model.params(), ac), ref_opt(ref.params(), ac);
  std::vector<bool> sharded;
  for (const auto& [name, p] : ep_model.params().all())
    sharded.push_back(W > 1 && GPT::is_expert_param(name));
  const double expert_scale = scaling == "lr" ? 1.0 / W : 1.0 / std::sqrt(double(W));
  GradSync sync(ep_model.params().all(), *t, W, sharded, expert_scale);
  if (W > 1 && experts > 0)
    ep_opt.set_sharded(sharded, dist().rank, W, [&t](Tensor& v) { t->all_reduce(v, 1.0); });
  for (int step = 0; step < steps; ++step) {
    Tensor x, y;
    global_batch(B, cfg.seq_len, cfg.vocab_size, step, &x, &y);
    // W ranks: this rank's rows.
    Tensor nll, aux;
    // backward with the gradient exchange started from the leaf hook (overlapped on cuda-ipc)
    sync.backward(share_loss(ep_model, rows(x, dist().rank, b).to(dev),
                             rows(y, dist().rank, b).to(dev), &nll, &aux));
    // Routing statistics cover every rank's tokens: the sum of the shares' counts.
    std::vector<int64_t> ep_counts;
    if (experts > 0) ep_counts = ep_model.moe_stats()[0].tokens_per_expert;
    std::vector<int64_t> ref_counts(static_cast<size_t>(experts), 0);
    // The reference: every share separately, loss = mean over shares.
    Tensor total, ref_nll_mine, ref_aux_mine;
    for (int q = 0; q < W; ++q) {
      Tensor n, a;
      Tensor l = scale(share_loss(ref, rows(x, q, b).to(dev), rows(y, q, b).to(dev), &n, &a),
                       1.0 / W);
      total = total.defined() ? add(total, l) : l;
      if (experts > 0) {
        const std::vector<int64_t> c = ref.moe_stats()[0].tokens_per_expert;
        for (int e = 0; e < experts; ++e) ref_counts[e] += c[e];
      }
      if (q == dist().rank) {
        ref_nll_mine = n.detach();
        ref_aux_mine = a;
      }
    }
    backward(total);
    const std::string at = " at step " + std::to_string(step) + " (" + transport + ", " +
                           scaling + ")";
    expect_close(nll, ref_nll_mine, 1e-5, 1e-6, "NLL" + at);
    if (experts > 0) {
      EXPECT_EQ(ep_counts, ref_counts) << "tokens per expert, all ranks" << at;
    }
    if (experts > 0) expect_close(aux, ref_aux_mine, 1e-5, 1e-6, "aux loss" + at);
    const double expert_factor = scaling == "lr" ? 1.0 : std::sqrt(double(W));
    for (const auto& [name, p] : ep_model.params().all()) {
      const Tensor want = my_part(name, ref.params().get(name).grad(), experts);
      const double f = GPT::is_expert_param(name) ? expert_factor : 1.0;
      expect_close(p.grad(), scale(want, f), 1e-4, 1e-6, "gradient of " + name + at);
      if (::testing::Test::HasFatalFailure()) return;
    }
    if (expert_factor != 1.0) {  // put the reference on the same footing for the update
      for (const auto& [name, p] : ref.params().all())
        if (GPT::is_expert_param(name)) {
          Tensor g = p.grad();
          scale_inplace(g, expert_factor);
        }
    }
    ep_opt.step(1e-3);
    ref_opt.step(1e-3);
    ep_model.params().zero_grad();
    ref.params().zero_grad();
  }
  for (const auto& [name, p] : ep_model.params().all())
    expect_close(p, my_part(name, ref.params().get(name), experts), 1e-4, 1e-5,
                 "parameter " + name + " after " + std::to_string(steps) + " steps");
}

}  // namespace

TEST(ExpertParallel, MatchesOneProcessGatingEachShare) {
  for (const auto& [name, dev] : transports_here()) {
    run_equivalence(4, "lr", name, dev);
    if (HasFatalFailure()) return;
  }
}

TEST(ExpertParallel, GradientScalingIsSqrtWTimesTheExactGradient) {
  run_equivalence(4, "gradient", "host", cpu());
}

TEST(DataParallel, DenseModelMatchesOneRankOnTheGlobalBatch) {
  for (const auto& [name, dev] : transports_here()) {
    run_equivalence(0, "lr", name, dev);
    if (HasFatalFailure()) return;
  }
}

TEST(ExpertParallel, UnevenSplitIsAClearError) {
  const int W = dist().world;
  if (W == 1) GTEST_SKIP() << "needs several ranks";
  std::unique_ptr<Transport> t = make_transport("host", cpu());
  GPTConfig cfg = tiny_config(W + 1);  // E % W != 0
  try {
    GPT m(cfg, 1, cpu(), ExpertParallel{dist().rank, W, t.get()});
    FAIL() << "E = " << W + 1 << " on " << W << " ranks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("E % W must be 0"), std::string::npos) << e.what();
  }
}
