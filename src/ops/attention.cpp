// attention.cpp — CPU forward/backward pair for causal multi-head self-attention (attention.h),
// and the device dispatch of its Tensor wrapper (CUDA twins: cuda/ops/attention.cu).
//
// Each head is four matrix products around a row softmax, all on the gemm of ops/gemm.h, which
// reads q, k, v in place inside qkv (row stride 3C; no copies):
//   forward   S = q k^T / sqrt(hs),  P = causal_softmax(S),  out = (P * M) v
//   backward  dPd = dout v^T,  dv = Pd^T dout,  dS = softmax'(dP),  dq = dS k / sqrt(hs),
//             dk = dS^T q / sqrt(hs)
// The products run over the full T x T square although half of it is masked: the blocked gemm
// still beats a causal loop that skips the zeros (measured at T = 64 and 256;
// notes/ops-norm-act-loss-attention.md).
//
// Parallel plan: one task per (batch, head). A (b, h) pair reads its own q, k, v columns and writes
// its own output columns and its own P block, so threads never share an output and the result is
// the same for any thread count. (A gemm called inside a task runs serially; when there is a single
// (b, h) task the gemm may split its own columns across threads, which gemm.h guarantees does not
// change a bit.)
#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/activation.h"  // exp_fast
#include "ops/gemm.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// one (b, h) block

// Scratch for one thread, allocated once per parallel chunk (never per element or per head).
template <typename F>
struct HeadScratch {
  std::vector<F> mk;  // (T, T) the dropout mask M of the current head, only with dropout
  std::vector<F> pd;  // (T, T) P * M, only with dropout
  std::vector<F> dp;  // (T, T) dPd, then dP, then dS; backward only
  HeadScratch(int64_t T, bool dropout, bool backward)
      : mk(dropout ? T * T : 0), pd(dropout ? T * T : 0), dp(backward ? T * T : 0) {}
};

// M of head block i (= b*NH + h) into s.mk, or null without dropout. Entry (t, u) is value
// (i*T + t)*T + u of the draw, the numbers the CUDA kernels use; 0 above the diagonal (where P
// is 0 anyway). Recomputed by the backward instead of stored: it is a pure function of the index.
template <typename F>
static const F* head_mask(const DropoutMask* m, HeadScratch<F>& s, int64_t i, int64_t T) {
  if (!m) return nullptr;
  DropoutMaskReader<F> mask{*m};
  for (int64_t t = 0; t < T; ++t) {
    F* row = s.mk.data() + t * T;
    for (int64_t u = 0; u <= t; ++u) row[u] = mask.factor((i * T + t) * T + u);
    std::fill(row + t + 1, row + T, F(0));
  }
  return s.mk.data();
}

static double inv_sqrt(int64_t hs) { return 1.0 / std::sqrt(static_cast<double>(hs)); }

// Rows of P in place: scores in, causal softmax out; p[t, u] = 0 for u > t.
template <typename F>
static void causal_softmax_rows(F* P, int64_t T) {
  // ASSIGNMENT 3 BEGIN causal_softmax_rows
  for (int64_t t = 0; t < T; ++t) {
    F* p = P + t * T;  // (T,): only p[0..t] are causal
    F mx = p[0];
    for (int64_t u = 1; u <= t; ++u) mx = std::max(mx, p[u]);
    for (int64_t u = 0; u <= t; ++u) p[u] = exp_fast(p[u] - mx);  // stable: every term <= 1
    double sum = 0.0;
    for (int64_t u = 0; u <= t; ++u) sum += p[u];
    const F inv = static_cast<F>(1.0 / sum);
    for (int64_t u = 0; u <= t; ++u) p[u] *= inv;
    std::fill(p + t + 1, p + T, F(0));  // the causal mask: no weight on the future
  }
  // ASSIGNMENT 3 END
}

// Pd = P * M when there is a dropout mask, else P itself (no copy).
template <typename F>
static const F* apply_mask(const F* Pbh, const F* mbh, HeadScratch<F>& s, int64_t T) {
  if (!mbh) return Pbh;
  for (int64_t i = 0; i < T * T; ++i) s.pd[i] = Pbh[i] * mbh[i];
  return s.pd.data();
}

// out_b (T, C) columns of head h, Pbh (T, T)  <-  qkv_b (T, 3C), mbh (T, T) or null.
// q, k, v of head h are read in place: (T, hs) matrices with row stride 3C.
template <typename F>
static void head_forward(F* out_b, F* Pbh, const F* qkv_b, const F* mbh, HeadScratch<F>& s,
                         int64_t T, int64_t C, int64_t h, int64_t hs) {
  // ASSIGNMENT 3 BEGIN head_forward
  const int64_t ld = 3 * C;
  const F* q = qkv_b + h * hs;          // (T, hs), row stride 3C
  const F* k = qkv_b + C + h * hs;      // (T, hs), row stride 3C
  const F* v = qkv_b + 2 * C + h * hs;  // (T, hs), row stride 3C
  // S = q k^T / sqrt(hs)   (T, T); the whole square: the gemm is faster than a causal loop
  gemm<F>(false, true, T, T, hs, static_cast<F>(inv_sqrt(hs)), q, ld, k, ld, F(0), Pbh, T);
  causal_softmax_rows(Pbh, T);                        // P = softmax(S + causal mask)
  const F* pd = apply_mask(Pbh, mbh, s, T);           // Pd = P * M
  gemm<F>(false, false, T, hs, T, F(1), pd, T, v, ld, F(0), out_b + h * hs, C);  // out = Pd v
  // ASSIGNMENT 3 END
}

// dqkv_b (T, 3C) columns of head h  <-  dout_b (T, C), qkv_b, Pbh (T, T), mbh or null
template <typename F>
static void head_backward(F* dqkv_b, const F* dout_b, const F* qkv_b, const F* Pbh,
                          const F* mbh, HeadScratch<F>& s, int64_t T, int64_t C, int64_t h,
                          int64_t hs) {
  // ASSIGNMENT 3 BEGIN head_backward
  const int64_t ld = 3 * C;
  const F scale = static_cast<F>(inv_sqrt(hs));
  const F* q = qkv_b + h * hs;          // (T, hs), row stride 3C
  const F* k = qkv_b + C + h * hs;      // (T, hs), row stride 3C
  const F* v = qkv_b + 2 * C + h * hs;  // (T, hs), row stride 3C
  const F* go = dout_b + h * hs;        // (T, hs), row stride C: dL/dout of this head
  F* dp = s.dp.data();                  // (T, T)
  // forward: out = Pd v;  backward: dPd = dout v^T,  dv = Pd^T dout
  gemm<F>(false, true, T, T, hs, F(1), go, C, v, ld, F(0), dp, T);
  const F* pd = apply_mask(Pbh, mbh, s, T);
  gemm<F>(true, false, T, hs, T, F(1), pd, T, go, C, F(0), dqkv_b + 2 * C + h * hs, ld);
  for (int64_t t = 0; t < T; ++t) {
    F* d = dp + t * T;        // (T,)
    const F* p = Pbh + t * T; // (T,)
    // forward: Pd = P * M;  backward: dP = dPd * M
    if (mbh) for (int64_t u = 0; u <= t; ++u) d[u] *= mbh[t * T + u];
    // forward: P = softmax(S);  backward: dS = P * (dP - <P, dP>)   (d becomes dS in place)
    double dot = 0.0;
    for (int64_t u = 0; u <= t; ++u) dot += static_cast<double>(p[u] * d[u]);
    const F dotf = static_cast<F>(dot);
    for (int64_t u = 0; u <= t; ++u) d[u] = p[u] * (d[u] - dotf);
    std::fill(d + t + 1, d + T, F(0));  // masked scores: no gradient
  }
  // forward: S = q k^T * scale;  backward: dq = scale * dS k,  dk = scale * dS^T q
  gemm<F>(false, false, T, hs, T, scale, dp, T, k, ld, F(0), dqkv_b + h * hs, ld);
  gemm<F>(true, false, T, hs, T, scale, dp, T, q, ld, F(0), dqkv_b + C + h * hs, ld);
  // ASSIGNMENT 3 END
}

// ---------------------------------------------------------------------------------------------
// raw kernels: all (b, h) blocks in parallel

template <typename F>
void attention_forward(F* out, F* P, const F* qkv, const DropoutMask* mask, int64_t B, int64_t T,
                       int64_t C, int64_t NH) {
  // ASSIGNMENT 3 BEGIN attention_forward
  const int64_t hs = C / NH;
  parallel_for(B * NH, [&](int64_t i0, int64_t i1) {
    HeadScratch<F> s(T, mask != nullptr, /*backward=*/false);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / NH, h = i % NH;
      head_forward<F>(out + b * T * C, P + i * T * T, qkv + b * T * 3 * C,
                      head_mask(mask, s, i, T), s, T, C, h, hs);
    }
  });
  // ASSIGNMENT 3 END
}

template <typename F>
void attention_backward(F* dqkv, const F* dout, const F* qkv, const F* P, const DropoutMask* mask,
                        int64_t B, int64_t T, int64_t C, int64_t NH) {
  // ASSIGNMENT 3 BEGIN attention_backward
  const int64_t hs = C / NH;
  parallel_for(B * NH, [&](int64_t i0, int64_t i1) {
    HeadScratch<F> s(T, mask != nullptr, /*backward=*/true);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / NH, h = i % NH;
      head_backward<F>(dqkv + b * T * 3 * C, dout + b * T * C, qkv + b * T * 3 * C,
                       P + i * T * T, head_mask(mask, s, i, T), s, T, C, h, hs);
    }
  });
  // ASSIGNMENT 3 END
}

template void attention_forward<float>(float*, float*, const float*, const DropoutMask*, int64_t,
                                       int64_t, int64_t, int64_t);
template void attention_forward<double>(double*, double*, const double*, const DropoutMask*,
                                        int64_t, int64_t, int64_t, int64_t);
template void attention_backward<float>(float*, const float*, const float*, const float*,
                                        const DropoutMask*, int64_t, int64_t, int64_t, int64_t);
template void attention_backward<double>(double*, const double*, const double*, const double*,
                                         const DropoutMask*, int64_t, int64_t, int64_t, int64_t);

// ---------------------------------------------------------------------------------------------
// Tensor wrapper

Tensor causal_self_attention(const Tensor& qkv_in, int NH, double attn_dropout_p, bool training,
                             CounterRng& rng) {
  CHECK(qkv_in.dim() == 3, "causal_self_attention: qkv must be (B, T, 3C), got ",
        shape_str(qkv_in.shape()));
  CHECK(qkv_in.is_floating(), "causal_self_attention: qkv must be f32 or f64, got ",
        qkv_in.desc());
  const int64_t B = qkv_in.size(0), T = qkv_in.size(1), C3 = qkv_in.size(2);
  CHECK(NH > 0, "causal_self_attention: the number of heads must be > 0, got ", NH);
  CHECK(C3 > 0 && C3 % 3 == 0 && (C3 / 3) % NH == 0, "causal_self_attention: the last axis of "
        "qkv ", shape_str(qkv_in.shape()), " must be 3C with C divisible by NH = ", NH,
        ". HINT: the model width must be a multiple of the number of heads");
  CHECK(attn_dropout_p >= 0.0 && attn_dropout_p < 1.0,
        "causal_self_attention: attention dropout must be in [0, 1), got ", attn_dropout_p);
  const int64_t C = C3 / 3;
  const bool use_mask = training && attn_dropout_p > 0.0;

  Tensor qkv = qkv_in.contiguous();                                  // (B, T, 3C)
  const Device dev = qkv.device();
  Tensor out = Tensor::empty({B, T, C}, qkv.dtype(), dev);           // (B, T, C)
  Tensor P = Tensor::empty({B, NH, T, T}, qkv.dtype(), dev);         // (B, NH, T, T)
  // The mask's numbers: taken from rng only when used, so eval mode draws nothing.
  const DropoutMask mask{attn_dropout_p,
                         rng.range(use_mask ? static_cast<uint64_t>(B * NH * T * T) : 0)};
  dispatch_op(qkv, "causal_self_attention", [&](auto z, auto on) {
    using F = decltype(z);
    F *o = out.data<F>(true), *pp = P.data<F>(true);
    const F* q = qkv.data<F>(true);
    const DropoutMask* m = use_mask ? &mask : nullptr;
    if constexpr (is_cuda(on)) attention_forward_cuda<F>(o, pp, q, m, B, T, C, NH);
    else attention_forward<F>(o, pp, q, m, B, T, C, NH);
  });

  Tensor qs = qkv.detach();  // saved: qkv (B, T, 3C) and P (B, NH, T, T); the mask is recomputed
  return record(out, "causal_self_attention", {qkv_in},
                [qs, P, mask, use_mask, B, T, C, NH](const Tensor& g_in,
                                                     const std::vector<bool>&) {
    Tensor g = g_in.contiguous();                                      // (B, T, C)
    Tensor dqkv = Tensor::empty(qs.shape(), qs.dtype(), g.device());   // (B, T, 3C)
    dispatch_op(g, "causal_self_attention backward", [&](auto z, auto on) {
      using F = decltype(z);
      F* d = dqkv.data<F>(true);
      const F *gp = g.data<F>(true), *q = qs.data<F>(true), *pp = P.data<F>(true);
      const DropoutMask* m = use_mask ? &mask : nullptr;
      if constexpr (is_cuda(on)) attention_backward_cuda<F>(d, gp, q, pp, m, B, T, C, NH);
      else attention_backward<F>(d, gp, q, pp, m, B, T, C, NH);
    });
    return std::vector<Tensor>{dqkv};
  });
}

}  // namespace moe
