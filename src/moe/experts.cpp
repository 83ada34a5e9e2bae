// experts.cpp — CPU forward/backward pair for the batched expert FFN (see experts.h), built on
// ops/gemm (gemm_batched over the E experts) and the GELU kernels of ops/activation, and its
// Tensor wrapper, which picks this pair or the CUDA twin (cuda/moe/experts.cu) by device.
#include "moe/experts.h"

#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/activation.h"
#include "ops/gemm.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels

// rows (E, Cap, D): every row of expert e starts as bias[e] (D), so a gemm with beta = 1 adds on.
template <typename T>
static void fill_rows_with_bias(T* rows, const T* bias, int64_t E, int64_t Cap, int64_t D) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, D));
  parallel_for(E * Cap, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* b = bias + (r / Cap) * D;
      std::copy(b, b + D, rows + r * D);
    }
  }, grain);
}

// dbias (E, D) = sum over the Cap rows of each expert of drows (E, Cap, D). Threads own whole
// experts and each sums its rows in order: the same bits for any thread count.
template <typename T>
static void bias_grad_per_expert(T* dbias, const T* drows, int64_t E, int64_t Cap, int64_t D) {
  parallel_for(E, [&](int64_t lo, int64_t hi) {
    for (int64_t e = lo; e < hi; ++e) {
      T* db = dbias + e * D;
      std::fill(db, db + D, T(0));
      for (int64_t r = 0; r < Cap; ++r) {
        const T* row = drows + (e * Cap + r) * D;
        for (int64_t d = 0; d < D; ++d) db[d] += row[d];
      }
    }
  });
}

template <typename T>
void expert_ffn_forward(T* out, T* pre, T* act, const T* buf, const T* w1, const T* b1,
                        const T* w2, const T* b2, int64_t E, int64_t Cap, int64_t C, int64_t H) {
  // pre[e] (Cap, H) = buf[e] (Cap, C) @ w1[e] (C, H) + b1[e]
  fill_rows_with_bias(pre, b1, E, Cap, H);
  gemm_batched<T>(false, false, Cap, H, C, T(1), buf, C, w1, H, T(1), pre, H, E, Cap * C, C * H,
                  Cap * H);
  // act = gelu(pre)   (E, Cap, H)
  gelu_forward<T>(act, pre, E * Cap * H);
  // out[e] (Cap, C) = act[e] (Cap, H) @ w2[e] (H, C) + b2[e]
  fill_rows_with_bias(out, b2, E, Cap, C);
  gemm_batched<T>(false, false, Cap, C, H, T(1), act, H, w2, C, T(1), out, C, E, Cap * H, H * C,
                  Cap * C);
}

template <typename T>
void expert_ffn_backward(T* dbuf, T* dw1, T* db1, T* dw2, T* db2, const T* dout, const T* pre,
                         const T* act, const T* buf, const T* w1, const T* w2, int64_t E,
                         int64_t Cap, int64_t C, int64_t H) {
  // forward: out[e] = act[e] @ w2[e] + b2[e]
  //   dw2[e] (H, C) = act[e]^T (H, Cap) @ dout[e] (Cap, C)
  if (dw2 != nullptr)
    gemm_batched<T>(true, false, H, C, Cap, T(1), act, H, dout, C, T(0), dw2, C, E, Cap * H,
                    Cap * C, H * C);
  //   db2[e] (C) = sum over rows of dout[e]
  if (db2 != nullptr) bias_grad_per_expert(db2, dout, E, Cap, C);
  if (dbuf == nullptr && dw1 == nullptr && db1 == nullptr) return;  // nothing before fc2 wanted
  //   dact[e] (Cap, H) = dout[e] (Cap, C) @ w2[e]^T (C, H)
  std::vector<T> dpre(static_cast<size_t>(E * Cap * H));  // (E, Cap, H): dact, then dpre in place
  gemm_batched<T>(false, true, Cap, H, C, T(1), dout, C, w2, C, T(0), dpre.data(), H, E, Cap * C,
                  H * C, Cap * H);
  // forward: act = gelu(pre)  =>  dpre = dact * gelu'(pre)
  gelu_backward<T>(dpre.data(), dpre.data(), pre, E * Cap * H);
  // forward: pre[e] = buf[e] @ w1[e] + b1[e]
  //   dw1[e] (C, H) = buf[e]^T (C, Cap) @ dpre[e] (Cap, H)
  if (dw1 != nullptr)
    gemm_batched<T>(true, false, C, H, Cap, T(1), buf, C, dpre.data(), H, T(0), dw1, H, E,
                    Cap * C, Cap * H, C * H);
  //   db1[e] (H) = sum over rows of dpre[e]
  if (db1 != nullptr) bias_grad_per_expert(db1, dpre.data(), E, Cap, H);
  //   dbuf[e] (Cap, C) = dpre[e] (Cap, H) @ w1[e]^T (H, C)
  if (dbuf != nullptr)
    gemm_batched<T>(false, true, Cap, C, H, T(1), dpre.data(), H, w1, H, T(0), dbuf, C, E,
                    Cap * H, C * H, Cap * C);
}

#define MOE_INSTANTIATE(T)                                                                      \
  template void expert_ffn_forward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,       \
                                      const T*, int64_t, int64_t, int64_t, int64_t);            \
  template void expert_ffn_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*,        \
                                       const T*, const T*, const T*, int64_t, int64_t, int64_t, \
                                       int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrapper

static void check_expert_operand(const Tensor& t, const Shape& expected, DType dt,
                                 const Device& dev, const char* what) {
  CHECK(t.defined(), "expert_ffn: ", what, " is undefined");
  CHECK(t.shape() == expected, "expert_ffn: ", what, " must be ", shape_str(expected), ", got ",
        shape_str(t.shape()), ". HINT: expert weights are stored (E, C, H) and (E, H, C)");
  CHECK(t.dtype() == dt, "expert_ffn: ", what, " is ", t.desc(), ", expected ", dtype_name(dt),
        " like buf");
  check_same_device(dev, {&t}, "expert_ffn");
}

// A tensor's data on any device, or null for an undefined (not needed) tensor.
template <typename T>
static T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>(true) : nullptr;
}

// The backward's saved tensors (only those the wanted gradients read; see expert_ffn_backward).
struct ExpertSaved {
  Tensor pre, act, buf, w1, w2;
  int64_t E, Cap, C, H;
};

static std::vector<Tensor> expert_ffn_grads(const Tensor& g_in, const std::vector<bool>& needs,
                                            const ExpertSaved& sv) {
  Tensor g = g_in.contiguous();  // (E, Cap, C)
  const DType dt = g.dtype();
  const Device dev = g.device();
  const int64_t E = sv.E, Cap = sv.Cap, C = sv.C, H = sv.H;
  Tensor dbuf = needs[0] ? Tensor::empty({E, Cap, C}, dt, dev) : Tensor();
  Tensor dw1 = needs[1] ? Tensor::empty({E, C, H}, dt, dev) : Tensor();
  Tensor db1 = needs[2] ? Tensor::empty({E, H}, dt, dev) : Tensor();
  Tensor dw2 = needs[3] ? Tensor::empty({E, H, C}, dt, dev) : Tensor();
  Tensor db2 = needs[4] ? Tensor::empty({E, C}, dt, dev) : Tensor();
  dispatch_op(g, "expert_ffn backward", [&](auto z, auto on) {
    using T = decltype(z);
    T *d0 = ptr<T>(dbuf), *d1 = ptr<T>(dw1), *d2 = ptr<T>(db1), *d3 = ptr<T>(dw2),
      *d4 = ptr<T>(db2);
    const T *gp = ptr<T>(g), *pre = ptr<T>(sv.pre), *act = ptr<T>(sv.act), *buf = ptr<T>(sv.buf),
            *w1 = ptr<T>(sv.w1), *w2 = ptr<T>(sv.w2);
    if constexpr (is_cuda(on))
      expert_ffn_backward_cuda<T>(d0, d1, d2, d3, d4, gp, pre, act, buf, w1, w2, E, Cap, C, H);
    else expert_ffn_backward<T>(d0, d1, d2, d3, d4, gp, pre, act, buf, w1, w2, E, Cap, C, H);
  });
  return {dbuf, dw1, db1, dw2, db2};
}

Tensor expert_ffn(const Tensor& buf_in, const Tensor& w1_in, const Tensor& b1_in,
                  const Tensor& w2_in, const Tensor& b2_in) {
  CHECK(buf_in.defined() && buf_in.dim() == 3 && buf_in.is_floating(),
        "expert_ffn: buf must be f32/f64 (E, Cap, C), got ",
        buf_in.defined() ? buf_in.desc() : std::string("undefined"));
  CHECK(w1_in.defined() && w1_in.dim() == 3, "expert_ffn: w1 must be (E, C, H), got ",
        w1_in.defined() ? shape_str(w1_in.shape()) : std::string("undefined"));
  const int64_t E = buf_in.size(0), Cap = buf_in.size(1), C = buf_in.size(2), H = w1_in.size(2);
  const DType dt = buf_in.dtype();
  const Device dev = buf_in.device();
  check_expert_operand(w1_in, {E, C, H}, dt, dev, "w1");
  check_expert_operand(b1_in, {E, H}, dt, dev, "b1");
  check_expert_operand(w2_in, {E, H, C}, dt, dev, "w2");
  check_expert_operand(b2_in, {E, C}, dt, dev, "b2");
  Tensor buf = buf_in.contiguous(), w1 = w1_in.contiguous(), b1 = b1_in.contiguous();
  Tensor w2 = w2_in.contiguous(), b2 = b2_in.contiguous();
  Tensor out = Tensor::empty({E, Cap, C}, dt, dev);  // (E, Cap, C)
  Tensor pre = Tensor::empty({E, Cap, H}, dt, dev);  // (E, Cap, H) fc1 output, before GELU
  Tensor act = Tensor::empty({E, Cap, H}, dt, dev);  // (E, Cap, H) after GELU
  dispatch_op(buf, "expert_ffn", [&](auto z, auto on) {
    using T = decltype(z);
    T *op = ptr<T>(out), *pp = ptr<T>(pre), *ap = ptr<T>(act);
    const T *bp = ptr<T>(buf), *w1p = ptr<T>(w1), *b1p = ptr<T>(b1), *w2p = ptr<T>(w2),
            *b2p = ptr<T>(b2);
    if constexpr (is_cuda(on))
      expert_ffn_forward_cuda<T>(op, pp, ap, bp, w1p, b1p, w2p, b2p, E, Cap, C, H);
    else expert_ffn_forward<T>(op, pp, ap, bp, w1p, b1p, w2p, b2p, E, Cap, C, H);
  });
  // Save only what the wanted gradients read (see expert_ffn_backward).
  const bool need_fc1 = buf_in.requires_grad() || w1_in.requires_grad() || b1_in.requires_grad();
  ExpertSaved sv{need_fc1 ? pre : Tensor(),
                 w2_in.requires_grad() ? act : Tensor(),
                 w1_in.requires_grad() ? buf.detach() : Tensor(),
                 buf_in.requires_grad() ? w1.detach() : Tensor(),
                 need_fc1 ? w2.detach() : Tensor(),
                 E, Cap, C, H};
  return record(out, "expert_ffn", {buf_in, w1_in, b1_in, w2_in, b2_in},
                [sv](const Tensor& g, const std::vector<bool>& needs) {
    return expert_ffn_grads(g, needs, sv);
  });
}

}  // namespace moe
