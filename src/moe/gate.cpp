// gate.cpp — CPU forward/backward pairs for the router, top-2 selection, the gate weights and the
// load-balancing loss (see gate.h; SPEC §3 steps 1-8; derivations in notes/moe-gating.md), and
// their Tensor wrappers, which pick these loops or the CUDA twins (cuda/moe/gate.cu) by device.
#include "moe/gate.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/gemm.h"

namespace moe {

static constexpr int64_t K = 2;  // top-k, fixed at 2 (SPEC §3)

// ---------------------------------------------------------------------------------------------
// capacity

int64_t moe_capacity(int64_t N, int E, double capacity_factor, bool training,
                     double eval_fraction) {
  CHECK(N >= 1, "moe_capacity: need at least one token, got N = ", N);
  CHECK(E >= 1, "moe_capacity: need at least one expert, got E = ", E);
  CHECK(capacity_factor > 0.0, "moe_capacity: capacity factor must be > 0, got ",
        capacity_factor);
  CHECK(eval_fraction >= 0.0, "moe_capacity: eval capacity fraction must be >= 0 (0 = off), got ",
        eval_fraction);
  // ASSIGNMENT 4 BEGIN moe_capacity
  if (!training && eval_fraction > 0.0)
    return static_cast<int64_t>(std::ceil(eval_fraction * static_cast<double>(N)));
  const int64_t per_expert = (N + E - 1) / E;  // ceil(N / E), in integers
  return static_cast<int64_t>(std::ceil(capacity_factor * 2.0 * static_cast<double>(per_expert)));
  // ASSIGNMENT 4 END
}

// ---------------------------------------------------------------------------------------------
// router: logits = X @ Wg^T, P = softmax(logits)

template <typename T>
void router_forward(T* probs, T* logits, const T* x, const T* wg, int64_t N, int64_t C,
                    int64_t E) {
  // logits (N, E) = x (N, C) @ wg^T (C, E)
  gemm<T>(false, true, N, E, C, T(1), x, C, wg, C, T(0), logits, E);
  // P[s, :] = softmax(logits[s, :]), max-shifted; std::exp, not exp_fast: the router is tiny
  // (N*E) and its values decide argmaxes, see Note [Why router math is fp32] in gate.h.
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      const T* l = logits + s * E;
      T* p = probs + s * E;
      T mx = l[0];
      for (int64_t e = 1; e < E; ++e) mx = l[e] > mx ? l[e] : mx;
      T total = T(0);
      for (int64_t e = 0; e < E; ++e) {
        p[e] = std::exp(l[e] - mx);
        total += p[e];
      }
      for (int64_t e = 0; e < E; ++e) p[e] /= total;
    }
  }, 256);
}

template <typename T>
void router_backward(T* dx, T* dwg, const T* dprobs, const T* probs, const T* x, const T* wg,
                     int64_t N, int64_t C, int64_t E) {
  // forward: P = softmax(logits)  =>  dlogits = P * (dP - sum_e dP[e] P[e])   (row by row)
  std::vector<T> dlogits(static_cast<size_t>(N * E));  // (N, E)
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      const T* p = probs + s * E;
      const T* dp = dprobs + s * E;
      T dot = T(0);
      for (int64_t e = 0; e < E; ++e) dot += dp[e] * p[e];
      for (int64_t e = 0; e < E; ++e) dlogits[s * E + e] = p[e] * (dp[e] - dot);
    }
  }, 256);
  // forward: logits = x @ wg^T  =>  dx (N, C) = dlogits (N, E) @ wg (E, C)
  if (dx != nullptr)
    gemm<T>(false, false, N, C, E, T(1), dlogits.data(), E, wg, C, T(0), dx, C);
  //                                 dwg (E, C) = dlogits^T (E, N) @ x (N, C)
  if (dwg != nullptr)
    gemm<T>(true, false, E, C, N, T(1), dlogits.data(), E, x, C, T(0), dwg, C);
}

// ---------------------------------------------------------------------------------------------
// top-2 selection
//
// Note [Slot order: every top-1 outranks every top-2]
// Each expert has Cap slots, handed out in one fixed order (fairseq's cumsum over the token axis):
// first all top-1 assignments, in token order, then all top-2 assignments, in token order. So
//   loc1[s] = #{ t < s : e1(t) = e1(s) }
//   loc2[s] = #{ t < s : e2(t) = e2(s), t's 2nd choice not skipped } + #{ all t : e1(t) = e2(s) }
// Every top-1 assignment outranks every top-2 assignment, and within each kind earlier tokens
// win. Nothing is ordered by gate value (fairseq's "batch prioritized routing" would; we leave it
// out, as the paper's runs do). Since ranks count up from 0 with no gaps, the slots an expert
// actually fills are always the prefix 0 .. min(queue length, Cap) - 1.
//
// Note [Token dropping at capacity]
// An assignment whose rank is >= Cap is dropped: it gets no slot, its gate weight is 0, and the
// token's other weight is renormalised to 1 (gate_weights). A token that loses both assignments
// gets G = (0, 0): its MoE output row is exactly zero, so through the residual connection
// y = h + MoE(LN(h)) it passes through the layer unchanged. Dropping happens *after* the aux loss
// is computed (the aux loss counts every top-1 choice, SPEC §3 step 6) and before the gates are
// renormalised (step 8). Slots that no assignment fills stay empty: dispatch writes zero rows
// there and combine never reads them (moe/dispatch.h).
//
// Note [Padding takes no slot]
// Evaluation and fine-tuning batches are right-padded to their longest row. If padding were
// routed like text, its assignments would queue ahead of later real tokens and push them past
// Cap, so a sequence's scores would depend on what else shares its batch (SPEC §3 step 5a). With
// a token mask, a padding token s still gets its choices e1, e2 (they are reported, and its
// random draws are consumed, so nothing downstream shifts), but both its assignments are removed
// from the queues before any rank is taken, as fairseq zeroes mask1/mask2 before the cumsum:
//   loc1[s] = loc2[s] = -1, kept = 0, no slot_src entry, and it counts in no #{ ... } above;
// so G = (0, 0), its MoE output row is exactly 0 and it passes on the residual. Cap is not
// changed: it still counts all N positions (fairseq's num_tokens), and real tokens of the other
// rows still compete for the slots. With every mask entry 1 the routing is bit for bit the one
// without a mask.

// argmax over v[0..E) skipping index `skip` (-1: none); the lowest index wins ties, as
// torch.argmax does (SPEC §3 step 3).
template <typename T>
static int32_t argmax_except(const T* v, int64_t E, int64_t skip) {
  int64_t best = -1;
  for (int64_t e = 0; e < E; ++e) {
    if (e == skip) continue;
    if (best < 0 || v[e] > v[best]) best = e;  // strict '>': an equal later value loses
  }
  return static_cast<int32_t>(best);
}

// Choose e1, e2 per token and whether the second choice is made at all (RANDOM may skip it).
template <typename T>
static void choose_experts(int32_t* expert, std::vector<char>& has2, const T* probs,
                           const T* logits, Top2Policy policy, PhiloxRange draw, int64_t N,
                           int64_t E) {
  std::vector<T> noisy(static_cast<size_t>(E));
  for (int64_t s = 0; s < N; ++s) {
    const T* p = probs + s * E;
    const T* l = logits + s * E;
    const int32_t e1 = argmax_except(p, E, -1);  // top-1 from P
    int32_t e2;
    if (policy == Top2Policy::SAMPLING) {  // top-2 from logits + Gumbel noise (Gumbel-max trick)
      for (int64_t e = 0; e < E; ++e)
        noisy[e] = l[e] + static_cast<T>(gumbel_from_bits(draw.bits(s * E + e)));
      e2 = argmax_except(noisy.data(), E, e1);
    } else {                               // top-2 from the logits themselves
      e2 = argmax_except(l, E, e1);
    }
    bool keep2 = true;
    if (policy == Top2Policy::RANDOM)  // fairseq: sampled = 2 * g2 > U[0, 1)
      keep2 = random_policy_keeps(draw.uniform(s), static_cast<double>(p[e2]));
    expert[s * K + 0] = e1;
    expert[s * K + 1] = e2;
    has2[s] = keep2 ? 1 : 0;
  }
}

template <typename T>
void top2_select_forward(int32_t* expert, int32_t* loc, int32_t* kept, int32_t* slot_src,
                         const T* probs, const T* logits, const int32_t* mask, Top2Policy policy,
                         PhiloxRange draw, int64_t N, int64_t E, int64_t Cap) {
  // ASSIGNMENT 4 BEGIN top2_select_forward
  std::vector<char> has2(static_cast<size_t>(N));
  choose_experts(expert, has2, probs, logits, policy, draw, N, E);
  // Ranks (Note [Slot order: every top-1 outranks every top-2]): a serial scan over tokens, like
  // fairseq's cumsum; O(N) and cheap next to the expert GEMMs, so it is not parallelised.
  // Padding joins no queue (Note [Padding takes no slot]).
  auto real = [mask](int64_t s) { return mask == nullptr || mask[s] != 0; };
  std::vector<int64_t> count1(static_cast<size_t>(E), 0), count2(static_cast<size_t>(E), 0);
  for (int64_t s = 0; s < N; ++s)
    loc[s * K + 0] = real(s) ? static_cast<int32_t>(count1[expert[s * K]]++) : -1;
  for (int64_t s = 0; s < N; ++s) {
    const int32_t e2 = expert[s * K + 1];
    loc[s * K + 1] = has2[s] && real(s) ? static_cast<int32_t>(count2[e2]++ + count1[e2]) : -1;
  }
  // Drop at capacity (Note [Token dropping at capacity]) and fill the slot -> assignment map.
  for (int64_t i = 0; i < E * Cap; ++i) slot_src[i] = -1;
  for (int64_t a = 0; a < N * K; ++a) {  // a = s*K + k
    kept[a] = (loc[a] >= 0 && loc[a] < Cap) ? 1 : 0;
    if (kept[a]) slot_src[expert[a] * Cap + loc[a]] = static_cast<int32_t>(a);
  }
  // ASSIGNMENT 4 END
}

// ---------------------------------------------------------------------------------------------
// gate weights
//
// Note [Gate renormalisation and its gradient]
// forward (per token):  g_k = kept_k * P[e_k]     (k = 1, 2)
//                       D   = max(g_1 + g_2, eps)
//                       G_k = g_k / D
// backward: while g_1 + g_2 >= eps, D = g_1 + g_2 depends on both g's:
//                       dG_k/dg_j = [k = j] / D - g_k / D^2
//                       dL/dg_j   = (dG_j - sum_k dG_k G_k) / D
//           below eps the max picks the constant:  dL/dg_j = dG_j / D.
//           (At exactly eps the sum branch is taken, as torch.clamp passes the gradient there.)
//           Then dP[e_k] = kept_k * dL/dg_k; every other entry of dP is 0. e1 != e2 always, so
//           the two writes never land on the same entry.
// A token that lost both slots has g = (0, 0) = constants: its gates carry no gradient.

template <typename T>
void gate_weights_forward(T* gates, const T* probs, const int32_t* expert, const int32_t* kept,
                          int64_t N, int64_t E) {
  // ASSIGNMENT 4 BEGIN gate_weights_forward
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      const T g1 = kept[s * K] ? probs[s * E + expert[s * K]] : T(0);
      const T g2 = kept[s * K + 1] ? probs[s * E + expert[s * K + 1]] : T(0);
      const T sum = g1 + g2;
      const T denom = sum >= T(kGateDenomEps) ? sum : T(kGateDenomEps);
      gates[s * K] = g1 / denom;
      gates[s * K + 1] = g2 / denom;
    }
  }, 1024);
  // ASSIGNMENT 4 END
}

template <typename T>
void gate_weights_backward(T* dprobs, const T* dgates, const T* probs, const int32_t* expert,
                           const int32_t* kept, int64_t N, int64_t E) {
  // ASSIGNMENT 4 BEGIN gate_weights_backward
  // forward: G_k = g_k / max(g_1 + g_2, eps),  g_k = kept_k * P[e_k]
  // See Note [Gate renormalisation and its gradient].
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      T* dp = dprobs + s * E;
      for (int64_t e = 0; e < E; ++e) dp[e] = T(0);
      const T g1 = kept[s * K] ? probs[s * E + expert[s * K]] : T(0);
      const T g2 = kept[s * K + 1] ? probs[s * E + expert[s * K + 1]] : T(0);
      const T sum = g1 + g2;
      const bool clamped = !(sum >= T(kGateDenomEps));
      const T denom = clamped ? T(kGateDenomEps) : sum;
      const T dG1 = dgates[s * K], dG2 = dgates[s * K + 1];
      const T through_denom = clamped ? T(0) : (dG1 * g1 + dG2 * g2) / denom;  // sum_k dG_k G_k
      if (kept[s * K]) dp[expert[s * K]] = (dG1 - through_denom) / denom;
      if (kept[s * K + 1]) dp[expert[s * K + 1]] = (dG2 - through_denom) / denom;
    }
  }, 1024);
  // ASSIGNMENT 4 END
}

// ---------------------------------------------------------------------------------------------
// load-balancing loss

template <typename T>
void load_balance_loss_forward(T* loss, T* ce, const T* probs, const int32_t* expert,
                               const int32_t* mask, int64_t N, int64_t E) {
  // ASSIGNMENT 5 BEGIN load_balance_loss_forward
  // ce[e] = mean_s [e1(s) = e]   (every real token's top-1 choice, before dropping; padding
  // counts in no numerator but the mean is still over all N, as fairseq's)
  std::vector<int64_t> count(static_cast<size_t>(E), 0);
  for (int64_t s = 0; s < N; ++s)
    if (mask == nullptr || mask[s] != 0) ++count[expert[s * K]];
  for (int64_t e = 0; e < E; ++e) ce[e] = static_cast<T>(count[e]) / static_cast<T>(N);
  // me[e] = mean_s P[s, e]; summed in double in token order (fixed order: deterministic)
  std::vector<double> me(static_cast<size_t>(E), 0.0);
  for (int64_t s = 0; s < N; ++s)
    for (int64_t e = 0; e < E; ++e) me[e] += probs[s * E + e];
  double acc = 0.0;
  for (int64_t e = 0; e < E; ++e) acc += (me[e] / static_cast<double>(N)) * ce[e];
  loss[0] = static_cast<T>(static_cast<double>(E) * acc);  // l_aux = E * sum_e me[e] ce[e]
  // ASSIGNMENT 5 END
}

template <typename T>
void load_balance_loss_backward(T* dprobs, const T* dloss, const T* ce, int64_t N, int64_t E) {
  // ASSIGNMENT 5 BEGIN load_balance_loss_backward
  // forward: l_aux = E * sum_e (1/N sum_s P[s, e]) * ce[e], ce a constant (counts of argmaxes)
  //   =>  dP[s, e] = dloss * E * ce[e] / N   (the same for every token)
  const T scale = dloss[0] * static_cast<T>(E) / static_cast<T>(N);
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s)
      for (int64_t e = 0; e < E; ++e) dprobs[s * E + e] = scale * ce[e];
  }, 1024);
  // ASSIGNMENT 5 END
}

#define MOE_INSTANTIATE(T)                                                                      \
  template void router_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, int64_t);       \
  template void router_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t,     \
                                   int64_t, int64_t);                                           \
  template void top2_select_forward<T>(int32_t*, int32_t*, int32_t*, int32_t*, const T*,        \
                                       const T*, const int32_t*, Top2Policy, PhiloxRange,       \
                                       int64_t, int64_t, int64_t);                              \
  template void gate_weights_forward<T>(T*, const T*, const int32_t*, const int32_t*, int64_t,  \
                                        int64_t);                                               \
  template void gate_weights_backward<T>(T*, const T*, const T*, const int32_t*,                \
                                         const int32_t*, int64_t, int64_t);                     \
  template void load_balance_loss_forward<T>(T*, T*, const T*, const int32_t*, const int32_t*, \
                                             int64_t, int64_t);                                 \
  template void load_balance_loss_backward<T>(T*, const T*, const T*, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

Top2Policy top2_policy_from_string(const std::string& name) {
  if (name == "all") return Top2Policy::ALL;
  if (name == "sampling") return Top2Policy::SAMPLING;
  if (name == "random") return Top2Policy::RANDOM;
  CHECK(false, "unknown top-2 policy '", name, "'; expected one of: all, sampling, random. ",
        "HINT: 'all' is the paper's setting (SPEC §3 step 4)");
  return Top2Policy::ALL;
}

const char* top2_policy_name(Top2Policy p) {
  switch (p) {
    case Top2Policy::ALL: return "all";
    case Top2Policy::SAMPLING: return "sampling";
    case Top2Policy::RANDOM: return "random";
  }
  return "?";
}

static void check_probs(const Tensor& probs, const char* op) {
  CHECK(probs.defined() && probs.dim() == 2, op, ": probs must be (N, E), got ",
        probs.defined() ? shape_str(probs.shape()) : std::string("undefined"));
  CHECK(probs.is_floating(), op, ": probs must be f32/f64, got ", probs.desc());
}

// The routing must describe these probabilities: same N and E, well-formed index tensors on the
// probabilities' device.
static void check_routing(const Routing& r, const Tensor& probs, const char* op) {
  check_probs(probs, op);
  CHECK(r.num_tokens == probs.size(0) && r.num_experts == probs.size(1), op, ": routing is for ",
        r.num_tokens, " tokens and ", r.num_experts, " experts but probs are ",
        shape_str(probs.shape()));
  check_shape(r.expert, {r.num_tokens, K}, "routing.expert");
  check_shape(r.kept, {r.num_tokens, K}, "routing.kept");
  CHECK(r.expert.dtype() == DType::I32 && r.kept.dtype() == DType::I32, op,
        ": routing tensors must be i32");
  CHECK(r.expert.is_contiguous() && r.kept.is_contiguous(), op,
        ": routing tensors must be contiguous");
  check_same_device(probs.device(), {&r.expert, &r.kept}, op);
}

// A tensor's data on any device, or null for an undefined (not needed) tensor.
template <typename T>
static T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>(true) : nullptr;
}

RouterOutput router(const Tensor& x_in, const Tensor& wg_in) {
  CHECK(x_in.defined() && x_in.dim() == 2, "router: x must be (N, C), got ",
        x_in.defined() ? shape_str(x_in.shape()) : std::string("undefined"));
  CHECK(x_in.is_floating(), "router: x must be f32/f64, got ", x_in.desc());
  CHECK(wg_in.defined() && wg_in.dim() == 2 && wg_in.size(1) == x_in.size(1),
        "router: wg must be (E, C) with C = ", x_in.size(1), ", got ",
        wg_in.defined() ? shape_str(wg_in.shape()) : std::string("undefined"));
  CHECK(wg_in.dtype() == x_in.dtype(), "router: wg is ", wg_in.desc(), " but x is ", x_in.desc());
  check_same_device(x_in.device(), {&wg_in}, "router");
  const int64_t N = x_in.size(0), C = x_in.size(1), E = wg_in.size(0);
  CHECK(E >= 2, "router: top-2 gating needs E >= 2 experts, got wg ", shape_str(wg_in.shape()));
  Tensor x = x_in.contiguous(), wg = wg_in.contiguous();
  const Device dev = x.device();
  Tensor probs = Tensor::empty({N, E}, x.dtype(), dev);   // (N, E)
  Tensor logits = Tensor::empty({N, E}, x.dtype(), dev);  // (N, E)
  dispatch_op(x, "router", [&](auto z, auto on) {
    using T = decltype(z);
    T *pp = ptr<T>(probs), *lp = ptr<T>(logits);
    const T *xp = ptr<T>(x), *wp = ptr<T>(wg);
    if constexpr (is_cuda(on)) router_forward_cuda<T>(pp, lp, xp, wp, N, C, E);
    else router_forward<T>(pp, lp, xp, wp, N, C, E);
  });
  Tensor ps = probs.detach();                                  // softmax backward reads P
  Tensor xs = wg_in.requires_grad() ? x.detach() : Tensor();   // dwg reads x
  Tensor ws = x_in.requires_grad() ? wg.detach() : Tensor();   // dx reads wg
  Tensor out = record(probs, "router", {x_in, wg_in},
                      [ps, xs, ws, N, C, E](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();                                                    // (N, E)
    Tensor dx = needs[0] ? Tensor::empty({N, C}, g.dtype(), g.device()) : Tensor();  // (N, C)
    Tensor dwg = needs[1] ? Tensor::empty({E, C}, g.dtype(), g.device()) : Tensor(); // (E, C)
    dispatch_op(g, "router backward", [&](auto z, auto on) {
      using T = decltype(z);
      T *dxp = ptr<T>(dx), *dwp = ptr<T>(dwg);
      const T *gp = ptr<T>(g), *pp = ptr<T>(ps), *xp = ptr<T>(xs), *wp = ptr<T>(ws);
      if constexpr (is_cuda(on)) router_backward_cuda<T>(dxp, dwp, gp, pp, xp, wp, N, C, E);
      else router_backward<T>(dxp, dwp, gp, pp, xp, wp, N, C, E);
    });
    return std::vector<Tensor>{dx, dwg};
  });
  return RouterOutput{out, logits};
}

uint64_t top2_draw_count(Top2Policy policy, int64_t N, int64_t E) {
  switch (policy) {
    case Top2Policy::SAMPLING: return static_cast<uint64_t>(N * E);
    case Top2Policy::RANDOM: return static_cast<uint64_t>(N);
    case Top2Policy::ALL: return 0;
  }
  return 0;
}

// The token mask must be an (N) i32 vector on the probabilities' device (or undefined).
static Tensor checked_token_mask(const Tensor& mask, int64_t N, Device dev, const char* op) {
  if (!mask.defined()) return mask;
  CHECK(mask.dim() == 1 && mask.size(0) == N && mask.dtype() == DType::I32, op,
        ": token mask must be (N,) = (", N, ",) i32 with 1 for a real token and 0 for padding, "
        "got ", mask.desc(), ". HINT: build it from the row lengths of the right-padded batch "
        "(GPT::forward_hidden does, given `lengths`)");
  check_same_device(dev, {&mask}, op);
  return mask.contiguous();
}

Routing top2_select(const Tensor& probs_in, const Tensor& logits_in, int64_t capacity,
                    Top2Policy policy, CounterRng& rng, const Tensor& token_mask) {
  check_probs(probs_in, "top2_select");
  check_same_shape(probs_in, logits_in, "top2_select: probs vs logits");
  CHECK(logits_in.dtype() == probs_in.dtype(), "top2_select: logits ", logits_in.desc(),
        " and probs ", probs_in.desc(), " differ in dtype");
  check_same_device(probs_in.device(), {&logits_in}, "top2_select");
  CHECK(probs_in.size(1) >= 2, "top2_select: top-2 gating needs E >= 2, got probs ",
        shape_str(probs_in.shape()));
  CHECK(capacity >= 1, "top2_select: capacity must be >= 1, got ", capacity);
  Tensor probs = probs_in.contiguous(), logits = logits_in.contiguous();
  const Device dev = probs.device();
  Routing r;
  r.num_tokens = probs.size(0);
  r.num_experts = probs.size(1);
  r.capacity = capacity;
  r.expert = Tensor::empty({r.num_tokens, K}, DType::I32, dev);            // (N, K)
  r.loc = Tensor::empty({r.num_tokens, K}, DType::I32, dev);               // (N, K)
  r.kept = Tensor::empty({r.num_tokens, K}, DType::I32, dev);              // (N, K)
  r.slot_src = Tensor::empty({r.num_experts, capacity}, DType::I32, dev);  // (E, Cap)
  r.token_mask = checked_token_mask(token_mask, r.num_tokens, dev, "top2_select");  // (N) or none
  const PhiloxRange draw = rng.range(top2_draw_count(policy, r.num_tokens, r.num_experts));
  int32_t *ex = ptr<int32_t>(r.expert), *loc = ptr<int32_t>(r.loc), *kept = ptr<int32_t>(r.kept),
          *src = ptr<int32_t>(r.slot_src);
  const int32_t* mk = ptr<int32_t>(r.token_mask);
  const int64_t N = r.num_tokens, E = r.num_experts;
  dispatch_op(probs, "top2_select", [&](auto z, auto on) {
    using T = decltype(z);
    const T *pp = ptr<T>(probs), *lp = ptr<T>(logits);
    if constexpr (is_cuda(on))
      top2_select_forward_cuda<T>(ex, loc, kept, src, pp, lp, mk, policy, draw, N, E, capacity);
    else top2_select_forward<T>(ex, loc, kept, src, pp, lp, mk, policy, draw, N, E, capacity);
  });
  return r;
}

Tensor gate_weights(const Tensor& probs_in, const Routing& r) {
  check_routing(r, probs_in, "gate_weights");
  const int64_t N = r.num_tokens, E = r.num_experts;
  Tensor probs = probs_in.contiguous();
  Tensor gates = Tensor::empty({N, K}, probs.dtype(), probs.device());  // (N, K)
  dispatch_op(probs, "gate_weights", [&](auto z, auto on) {
    using T = decltype(z);
    T* gp = ptr<T>(gates);
    const T* pp = ptr<T>(probs);
    const int32_t *ex = ptr<int32_t>(r.expert), *kept = ptr<int32_t>(r.kept);
    if constexpr (is_cuda(on)) gate_weights_forward_cuda<T>(gp, pp, ex, kept, N, E);
    else gate_weights_forward<T>(gp, pp, ex, kept, N, E);
  });
  Tensor ps = probs.detach(), expert = r.expert, kept = r.kept;  // saved: P and the routing
  return record(gates, "gate_weights", {probs_in},
                [ps, expert, kept, N, E](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();                                     // (N, K)
    Tensor dprobs = Tensor::empty({N, E}, g.dtype(), g.device());     // (N, E)
    dispatch_op(g, "gate_weights backward", [&](auto z, auto on) {
      using T = decltype(z);
      T* dp = ptr<T>(dprobs);
      const T *gp = ptr<T>(g), *pp = ptr<T>(ps);
      const int32_t *ex = ptr<int32_t>(expert), *kp = ptr<int32_t>(kept);
      if constexpr (is_cuda(on)) gate_weights_backward_cuda<T>(dp, gp, pp, ex, kp, N, E);
      else gate_weights_backward<T>(dp, gp, pp, ex, kp, N, E);
    });
    return std::vector<Tensor>{dprobs};
  });
}

Tensor load_balance_loss(const Tensor& probs_in, const Routing& r) {
  check_routing(r, probs_in, "load_balance_loss");
  const int64_t N = r.num_tokens, E = r.num_experts;
  Tensor probs = probs_in.contiguous();
  Tensor loss = Tensor::empty({}, probs.dtype(), probs.device());  // () on P's device: no sync
  Tensor ce = Tensor::empty({E}, probs.dtype(), probs.device());   // (E) saved: top-1 fractions
  const Tensor mask = checked_token_mask(r.token_mask, N, probs.device(), "load_balance_loss");
  dispatch_op(probs, "load_balance_loss", [&](auto z, auto on) {
    using T = decltype(z);
    T *lp = ptr<T>(loss), *cp = ptr<T>(ce);
    const T* pp = ptr<T>(probs);
    const int32_t *ex = ptr<int32_t>(r.expert), *mk = ptr<int32_t>(mask);
    if constexpr (is_cuda(on)) load_balance_loss_forward_cuda<T>(lp, cp, pp, ex, mk, N, E);
    else load_balance_loss_forward<T>(lp, cp, pp, ex, mk, N, E);
  });
  return record(loss, "load_balance_loss", {probs_in},
                [ce, N, E](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();                                       // () dL/dl_aux
    Tensor dprobs = Tensor::empty({N, E}, ce.dtype(), ce.device());     // (N, E)
    dispatch_op(ce, "load_balance_loss backward", [&](auto z, auto on) {
      using T = decltype(z);
      T* dp = ptr<T>(dprobs);
      const T *gp = ptr<T>(g), *cp = ptr<T>(ce);
      if constexpr (is_cuda(on)) load_balance_loss_backward_cuda<T>(dp, gp, cp, N, E);
      else load_balance_loss_backward<T>(dp, gp, cp, N, E);
    });
    return std::vector<Tensor>{dprobs};
  });
}

}  // namespace moe
