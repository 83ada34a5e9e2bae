// moe_layer.cpp — composing the MoE layer from its ops, parameter init, routing statistics
// (see moe_layer.h; SPEC §2-3). The layer runs on the device of x and its parameters: every op it
// composes dispatches by device and nothing here reads device data on the host (the statistics
// stay a device tensor; cuda/moe/moe_layer.cu computes them there).
#include "moe/moe_layer.h"

#include <cmath>

#include "core/autograd.h"
#include "dist/comm_ops.h"
#include "moe/dispatch.h"
#include "moe/experts.h"
#include "ops/activation.h"
#include "ops/shape.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// init

// Fill `t` (contiguous f32) from offset `begin`, `n` values U(-bound, bound), in order.
static void fill_uniform(Tensor& t, int64_t begin, int64_t n, double bound, Rng& rng) {
  float* p = t.data<float>() + begin;
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
}

MoEParams moe_params_init(int E, int C, int H, Rng& rng) {
  CHECK(E >= 2 && C >= 1 && H >= 1, "moe_params_init: need E >= 2, C >= 1, H >= 1; got E = ", E,
        ", C = ", C, ", H = ", H);
  MoEParams p;
  p.wg = Tensor::empty({E, C});     // (E, C)
  p.w1 = Tensor::empty({E, C, H});  // (E, C, H)
  p.b1 = Tensor::empty({E, H});     // (E, H)
  p.w2 = Tensor::empty({E, H, C});  // (E, H, C)
  p.b2 = Tensor::empty({E, C});     // (E, C)
  const double bound_c = 1.0 / std::sqrt(static_cast<double>(C));  // fan_in of gate and fc1
  const double bound_h = 1.0 / std::sqrt(static_cast<double>(H));  // fan_in of fc2
  fill_uniform(p.wg, 0, int64_t{E} * C, bound_c, rng);
  for (int64_t e = 0; e < E; ++e) {  // each expert its own draws, expert by expert
    fill_uniform(p.w1, e * C * H, int64_t{C} * H, bound_c, rng);
    fill_uniform(p.b1, e * H, H, bound_c, rng);
    fill_uniform(p.w2, e * H * C, int64_t{H} * C, bound_h, rng);
    fill_uniform(p.b2, e * C, C, bound_h, rng);
  }
  for (Tensor* t : {&p.wg, &p.w1, &p.b1, &p.w2, &p.b2}) t->set_requires_grad(true);
  return p;
}

// ---------------------------------------------------------------------------------------------
// statistics

// CPU: counts from the routing, entropy from P, all in double, stored as f32. Padding tokens
// (loc[s, 0] == -1, gate.h) make no assignment and are left out of every field.
static void routing_stats_cpu(float* out, const Tensor& probs, const Routing& r) {
  const int64_t N = r.num_tokens, E = r.num_experts;
  const std::vector<int32_t> expert = r.expert.to_i32_vector(), loc = r.loc.to_i32_vector(),
                             kept = r.kept.to_i32_vector();
  std::vector<double> per_expert(static_cast<size_t>(E), 0.0);
  double made[2] = {0, 0}, dropped[2] = {0, 0}, lost_both = 0;
  for (int64_t s = 0; s < N; ++s) {
    for (int k = 0; k < 2; ++k) {
      const size_t a = static_cast<size_t>(s * 2 + k);
      if (loc[a] < 0) continue;  // the "random" policy made no second assignment
      ++made[k];
      if (kept[a]) ++per_expert[expert[a]];
      else ++dropped[k];
    }
    if (loc[s * 2] >= 0 && !kept[s * 2] && !kept[s * 2 + 1]) ++lost_both;
  }
  // router entropy: sum over real tokens s of -sum_e P log P, with 0 log 0 = 0
  const std::vector<double> p = probs.to_f64_vector();
  double h = 0.0;
  for (int64_t s = 0; s < N; ++s) {
    if (loc[static_cast<size_t>(s * 2)] < 0) continue;  // padding
    for (int64_t e = 0; e < E; ++e) {
      const double v = p[static_cast<size_t>(s * E + e)];
      h -= v > 0.0 ? v * std::log(v) : 0.0;
    }
  }
  out[kStatMade1] = static_cast<float>(made[0]);
  out[kStatMade2] = static_cast<float>(made[1]);
  out[kStatDropped1] = static_cast<float>(dropped[0]);
  out[kStatDropped2] = static_cast<float>(dropped[1]);
  out[kStatLostBoth] = static_cast<float>(lost_both);
  out[kStatEntropySum] = static_cast<float>(h);
  out[kStatLAux] = 0.0f;
  for (int64_t e = 0; e < E; ++e) out[kMoEStatFields + e] = static_cast<float>(per_expert[e]);
}

Tensor moe_routing_stats_tensor(const Tensor& probs_in, const Routing& r, const Tensor& l_aux) {
  const int64_t N = r.num_tokens, E = r.num_experts;
  check_shape(probs_in, {N, E}, "moe_routing_stats: probs");
  check_same_device(probs_in.device(), {&r.expert, &r.loc, &r.kept, &l_aux}, "moe_routing_stats");
  CHECK(!l_aux.defined() || (l_aux.numel() == 1 && l_aux.dtype() == probs_in.dtype()),
        "moe_routing_stats: l_aux must be a scalar of P's dtype, got ", l_aux.desc());
  Tensor probs = probs_in.contiguous();
  Tensor raw = Tensor::empty({kMoEStatFields + E}, DType::F32, probs.device());
  dispatch_op(probs, "moe_routing_stats", [&](auto z, auto on) {
    using T = decltype(z);
    if constexpr (is_cuda(on)) {  // on the device, nothing read back (see MoEOutput::raw_stats)
      moe_routing_stats_cuda(raw.data<float>(true), probs.data<T>(true),
                             r.expert.data<int32_t>(true), r.loc.data<int32_t>(true),
                             r.kept.data<int32_t>(true),
                             l_aux.defined() ? l_aux.data<T>(true) : nullptr, N, E);
    } else {
      routing_stats_cpu(raw.data<float>(), probs, r);
      if (l_aux.defined()) raw.data<float>()[kStatLAux] = static_cast<float>(l_aux.item());
    }
  });
  return raw;
}

MoEStats moe_stats_from_tensor(const Tensor& raw_stats, int64_t capacity) {
  const std::vector<double> v = raw_stats.to_f64_vector();  // one copy from the device
  ASSERT_INTERNAL(v.size() > static_cast<size_t>(kMoEStatFields), "raw MoE stats too short");
  const int64_t E = static_cast<int64_t>(v.size()) - kMoEStatFields;
  MoEStats st;
  st.capacity = capacity;
  st.tokens_per_expert.resize(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e)
    st.tokens_per_expert[e] = static_cast<int64_t>(std::llround(v[kMoEStatFields + e]));
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  const double made1 = v[kStatMade1], made2 = v[kStatMade2];
  st.fraction_dropped = ratio(v[kStatDropped1] + v[kStatDropped2], made1 + made2);
  st.fraction_dropped_top1 = ratio(v[kStatDropped1], made1);
  st.fraction_dropped_top2 = ratio(v[kStatDropped2], made2);
  st.fraction_tokens_dropped = ratio(v[kStatLostBoth], made1);  // made1 = N: every token picks
  st.router_entropy = ratio(v[kStatEntropySum], made1);
  st.l_aux = v[kStatLAux];
  return st;
}

MoEStats moe_routing_stats(const Tensor& probs, const Routing& r) {
  return moe_stats_from_tensor(moe_routing_stats_tensor(probs, r, Tensor()), r.capacity);
}

MoEStats MoEOutput::stats() const { return moe_stats_from_tensor(raw_stats, capacity); }

// ---------------------------------------------------------------------------------------------
// the layer

static std::string shape_of(const Tensor& t) {
  return t.defined() ? shape_str(t.shape()) : std::string("undefined");
}

static void check_moe_inputs(const Tensor& x, const MoEParams& p, const MoEConfig& cfg) {
  CHECK(cfg.num_experts >= 2, "MoE layer: num_experts must be >= 2 for top-2 gating, got ",
        cfg.num_experts, ". HINT: with a single expert use a dense FFN");
  CHECK(cfg.expert_dropout >= 0.0 && cfg.expert_dropout < 1.0,
        "MoE layer: expert dropout must be in [0, 1), got ", cfg.expert_dropout);
  CHECK(x.defined() && x.dim() >= 1 && x.numel() > 0,
        "MoE layer: x must be a non-empty (..., C), got ", shape_of(x));
  CHECK(p.wg.defined() && p.wg.dim() == 2 && p.wg.size(0) == cfg.num_experts &&
        p.wg.size(1) == x.size(-1), "MoE layer: wg must be (E, C) = (", cfg.num_experts, ", ",
        x.size(-1), "), got ", shape_of(p.wg));
  const ExpertParallel& ep = cfg.ep;
  CHECK(ep.world >= 1 && ep.rank >= 0 && ep.rank < ep.world, "MoE layer: rank ", ep.rank,
        " of a world of ", ep.world);
  CHECK(cfg.num_experts % ep.world == 0 && cfg.num_experts >= ep.world, "expert parallelism: ",
        cfg.num_experts, " experts cannot be split evenly over ", ep.world, " ranks (E % W must "
        "be 0 and E >= W). HINT: run with a number of ranks that divides --moe-experts");
  CHECK(ep.world == 1 || ep.transport != nullptr, "MoE layer: ", ep.world, " ranks need a "
        "transport for the all-to-all");
  CHECK(p.w1.defined() && p.w1.dim() == 3 && p.w1.size(0) == ep.local_experts(cfg.num_experts),
        "MoE layer: w1 must hold this rank's ", ep.local_experts(cfg.num_experts), " of ",
        cfg.num_experts, " experts, (E/W, C, H), got ", shape_of(p.w1));
  // The other expert tensors are checked, with their shapes in the message, by expert_ffn.
}

// The experts of SPEC §4 on W ranks (moe_layer.h): buf (E, Cap, C) -> out (E, Cap, C), each row
// processed by its expert on the rank that owns it.
static Tensor experts_across_ranks(const Tensor& buf, const MoEParams& p, const ExpertParallel& ep) {
  const int64_t E = buf.size(0), Cap = buf.size(1), C = buf.size(2), W = ep.world, El = E / W;
  Tensor recv = all_to_all(reshape(buf, {W, El, Cap, C}), *ep.transport);  // (W, El, Cap, C)
  Tensor mine = reshape(transpose(recv, 0, 1), {El, W * Cap, C});          // (El, W*Cap, C)
  Tensor out = expert_ffn(mine, p.w1, p.b1, p.w2, p.b2);                   // (El, W*Cap, C)
  Tensor back = transpose(reshape(out, {El, W, Cap, C}), 0, 1);            // (W, El, Cap, C)
  return reshape(all_to_all(back, *ep.transport), {E, Cap, C});            // (E, Cap, C)
}

std::string moe_capacity_rule(const MoEConfig& cfg, bool training) {
  std::string rule;
  if (!training && cfg.eval_capacity_fraction > 0.0)
    rule = str_cat("eval capacity fraction ", cfg.eval_capacity_fraction, ": Cap = ceil(",
                   cfg.eval_capacity_fraction, " * N)");
  else if (cfg.capacity_factor == 1.0)
    rule = "Cap = 2 * ceil(N / E)";
  else
    rule = str_cat("Cap = ceil(", cfg.capacity_factor, " * 2 * ceil(N / E))");
  return str_cat(rule, " slots per expert with E = ", cfg.num_experts,
                 ", N = all B*T positions of the batch; padding takes no slot, real tokens of "
                 "other sequences in the batch compete for the slots (SPEC §3)");
}

MoEOutput moe_layer_forward(const Tensor& x_in, const MoEParams& p, const MoEConfig& cfg,
                            bool training, CounterRng& rng, const Tensor& token_mask) {
  check_moe_inputs(x_in, p, cfg);
  const Top2Policy policy = top2_policy_from_string(cfg.top2_policy);
  const int64_t C = x_in.size(-1), N = x_in.numel() / C;
  Tensor x = x_in.dim() == 2 ? x_in : reshape(x_in, {N, C});  // (N, C)
  // Cap counts every position, padding included (SPEC §3 step 5a, as fairseq's num_tokens).
  const int64_t cap = moe_capacity(N, cfg.num_experts, cfg.capacity_factor, training,
                                   cfg.eval_capacity_fraction);

  RouterOutput rt = router(x, p.wg);                                  // P (N, E), on the tape
  Routing routing = top2_select(rt.probs, rt.logits, cap, policy, rng, token_mask);
  Tensor l_aux = load_balance_loss(rt.probs, routing);                // ()
  Tensor gates = gate_weights(rt.probs, routing);                     // (N, K)
  Tensor buf = dispatch(x, routing);                                  // (E, Cap, C)
  Tensor out = cfg.ep.world == 1 ? expert_ffn(buf, p.w1, p.b1, p.w2, p.b2)  // (E, Cap, C)
                                 : experts_across_ranks(buf, p, cfg.ep);
  out = dropout(out, cfg.expert_dropout, training, rng);              // (E, Cap, C)
  Tensor y = combine(out, gates, routing);                            // (N, C)

  MoEOutput res;
  res.y = x_in.dim() == 2 ? y : reshape(y, x_in.shape());             // like x
  res.l_aux = l_aux;
  res.raw_stats = moe_routing_stats_tensor(rt.probs.detach(), routing, l_aux.detach());
  res.capacity = cap;
  return res;
}

}  // namespace moe
