// dispatch.cpp — CPU forward/backward pairs for dispatch and combine (see dispatch.h, SPEC §3
// step 9), and their Tensor wrappers, which pick these loops or the CUDA twins
// (cuda/moe/dispatch.cu) by device. Every loop is a gather over independent output rows; see
// "Parallelism" in dispatch.h.
#include "moe/dispatch.h"

#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

static constexpr int64_t K = 2;  // top-k, fixed at 2 (SPEC §3)

// rows per parallel chunk: about 16k numbers of work each
static int64_t row_grain(int64_t C) {
  return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, C));
}

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void dispatch_forward(T* buf, const T* x, const int32_t* slot_src, int64_t E, int64_t Cap,
                      int64_t C) {
  // ASSIGNMENT 5 BEGIN dispatch_forward
  // buf[e, c, :] = x[s, :] where slot (e, c) holds assignment s*K + k; 0 for an empty slot
  parallel_for(E * Cap, [&](int64_t lo, int64_t hi) {
    for (int64_t slot = lo; slot < hi; ++slot) {
      T* row = buf + slot * C;
      const int32_t a = slot_src[slot];
      if (a < 0) {
        std::fill(row, row + C, T(0));
      } else {
        const T* src = x + (a / K) * C;
        std::copy(src, src + C, row);
      }
    }
  }, row_grain(C));
  // ASSIGNMENT 5 END
}

template <typename T>
void dispatch_backward(T* dx, const T* dbuf, const int32_t* expert, const int32_t* loc,
                       const int32_t* kept, int64_t N, int64_t Cap, int64_t C) {
  // ASSIGNMENT 5 BEGIN dispatch_backward
  // forward: buf[e_k(s), loc_k(s), :] = x[s, :] for each kept k
  //   =>  dx[s, :] = sum_k kept_k(s) * dbuf[e_k(s), loc_k(s), :]   (0 for a token dropped twice)
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      T* row = dx + s * C;
      std::fill(row, row + C, T(0));
      for (int64_t k = 0; k < K; ++k) {
        if (!kept[s * K + k]) continue;
        const T* src = dbuf + (expert[s * K + k] * Cap + loc[s * K + k]) * C;
        for (int64_t c = 0; c < C; ++c) row[c] += src[c];
      }
    }
  }, row_grain(C));
  // ASSIGNMENT 5 END
}

template <typename T>
void combine_forward(T* y, const T* expert_out, const T* gates, const int32_t* expert,
                     const int32_t* loc, const int32_t* kept, int64_t N, int64_t Cap, int64_t C) {
  // ASSIGNMENT 5 BEGIN combine_forward
  // y[s, :] = sum_k kept_k(s) * G[s, k] * out[e_k(s), loc_k(s), :]
  // Only kept slots are read: Note [Empty expert slots never reach the output] (dispatch.h).
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      T* row = y + s * C;
      std::fill(row, row + C, T(0));
      for (int64_t k = 0; k < K; ++k) {
        if (!kept[s * K + k]) continue;
        const T g = gates[s * K + k];
        const T* src = expert_out + (expert[s * K + k] * Cap + loc[s * K + k]) * C;
        for (int64_t c = 0; c < C; ++c) row[c] += g * src[c];
      }
    }
  }, row_grain(C));
  // ASSIGNMENT 5 END
}

template <typename T>
void combine_backward(T* dexpert_out, T* dgates, const T* dy, const T* expert_out, const T* gates,
                      const int32_t* expert, const int32_t* loc, const int32_t* kept,
                      const int32_t* slot_src, int64_t N, int64_t E, int64_t Cap, int64_t C) {
  // ASSIGNMENT 5 BEGIN combine_backward
  // forward: y[s, :] = sum_k kept_k(s) * G[s, k] * out[e_k(s), loc_k(s), :]
  // dout[e, c, :] = G[s, k] * dy[s, :] for the assignment s*K + k in slot (e, c); 0 if empty
  if (dexpert_out != nullptr) {
    parallel_for(E * Cap, [&](int64_t lo, int64_t hi) {
      for (int64_t slot = lo; slot < hi; ++slot) {
        T* row = dexpert_out + slot * C;
        const int32_t a = slot_src[slot];
        if (a < 0) {
          std::fill(row, row + C, T(0));
          continue;
        }
        const T g = gates[a];  // a = s*K + k indexes gates (N, K) directly
        const T* src = dy + (a / K) * C;
        for (int64_t c = 0; c < C; ++c) row[c] = g * src[c];
      }
    }, row_grain(C));
  }
  // dG[s, k] = kept_k(s) * <dy[s, :], out[e_k(s), loc_k(s), :]>
  if (dgates != nullptr) {
    parallel_for(N, [&](int64_t lo, int64_t hi) {
      for (int64_t s = lo; s < hi; ++s) {
        for (int64_t k = 0; k < K; ++k) {
          T dot = T(0);
          if (kept[s * K + k]) {
            const T* o = expert_out + (expert[s * K + k] * Cap + loc[s * K + k]) * C;
            const T* d = dy + s * C;
            for (int64_t c = 0; c < C; ++c) dot += d[c] * o[c];
          }
          dgates[s * K + k] = dot;
        }
      }
    }, row_grain(C));
  }
  // ASSIGNMENT 5 END
}

#define MOE_INSTANTIATE(T)                                                                      \
  template void dispatch_forward<T>(T*, const T*, const int32_t*, int64_t, int64_t, int64_t);   \
  template void dispatch_backward<T>(T*, const T*, const int32_t*, const int32_t*,              \
                                     const int32_t*, int64_t, int64_t, int64_t);                \
  template void combine_forward<T>(T*, const T*, const T*, const int32_t*, const int32_t*,      \
                                   const int32_t*, int64_t, int64_t, int64_t);                  \
  template void combine_backward<T>(T*, T*, const T*, const T*, const T*, const int32_t*,       \
                                    const int32_t*, const int32_t*, const int32_t*, int64_t,    \
                                    int64_t, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

// The routing tensors must have the shapes their fields promise (gate.h, struct Routing) and live
// on the device `dev` of the op's other inputs.
static void check_routing_shapes(const Routing& r, const Device& dev, const char* op) {
  const int64_t N = r.num_tokens, E = r.num_experts, Cap = r.capacity;
  CHECK(N >= 0 && E >= 2 && Cap >= 1, op, ": malformed routing (N = ", N, ", E = ", E,
        ", Cap = ", Cap, "). HINT: build it with top2_select");
  check_shape(r.expert, {N, K}, "routing.expert");
  check_shape(r.loc, {N, K}, "routing.loc");
  check_shape(r.kept, {N, K}, "routing.kept");
  check_shape(r.slot_src, {E, Cap}, "routing.slot_src");
  CHECK(r.expert.dtype() == DType::I32 && r.loc.dtype() == DType::I32 &&
        r.kept.dtype() == DType::I32 && r.slot_src.dtype() == DType::I32,
        op, ": routing tensors must be i32");
  CHECK(r.expert.is_contiguous() && r.loc.is_contiguous() && r.kept.is_contiguous() &&
        r.slot_src.is_contiguous(), op, ": routing tensors must be contiguous");
  check_same_device(dev, {&r.expert, &r.loc, &r.kept, &r.slot_src}, op);
}

// A tensor's data on any device, or null for an undefined (not needed) tensor.
template <typename T>
static T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>(true) : nullptr;
}

Tensor dispatch(const Tensor& x_in, const Routing& r) {
  CHECK(x_in.defined() && x_in.dim() == 2 && x_in.size(0) == r.num_tokens,
        "dispatch: x must be (N, C) with N = ", r.num_tokens, " (the routing's tokens), got ",
        x_in.defined() ? shape_str(x_in.shape()) : std::string("undefined"));
  CHECK(x_in.is_floating(), "dispatch: x must be f32/f64, got ", x_in.desc());
  check_routing_shapes(r, x_in.device(), "dispatch");
  const int64_t N = r.num_tokens, E = r.num_experts, Cap = r.capacity, C = x_in.size(1);
  Tensor x = x_in.contiguous();
  Tensor buf = Tensor::empty({E, Cap, C}, x.dtype(), x.device());  // (E, Cap, C)
  dispatch_op(x, "dispatch", [&](auto z, auto on) {
    using T = decltype(z);
    T* bp = ptr<T>(buf);
    const T* xp = ptr<T>(x);
    const int32_t* src = ptr<int32_t>(r.slot_src);
    if constexpr (is_cuda(on)) dispatch_forward_cuda<T>(bp, xp, src, E, Cap, C);
    else dispatch_forward<T>(bp, xp, src, E, Cap, C);
  });
  Tensor expert = r.expert, loc = r.loc, kept = r.kept;  // saved: the routing (no activations)
  return record(buf, "dispatch", {x_in},
                [expert, loc, kept, N, Cap, C](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();                                 // (E, Cap, C)
    Tensor dx = Tensor::empty({N, C}, g.dtype(), g.device());     // (N, C)
    dispatch_op(g, "dispatch backward", [&](auto z, auto on) {
      using T = decltype(z);
      T* dxp = ptr<T>(dx);
      const T* gp = ptr<T>(g);
      const int32_t *ex = ptr<int32_t>(expert), *lc = ptr<int32_t>(loc), *kp = ptr<int32_t>(kept);
      if constexpr (is_cuda(on)) dispatch_backward_cuda<T>(dxp, gp, ex, lc, kp, N, Cap, C);
      else dispatch_backward<T>(dxp, gp, ex, lc, kp, N, Cap, C);
    });
    return std::vector<Tensor>{dx};
  });
}

// combine's backward: dexpert_out (E, Cap, C) and dgates (N, K), as `needs` asks.
static std::vector<Tensor> combine_grads(const Tensor& g_in, const std::vector<bool>& needs,
                                         const Tensor& gs, const Tensor& os, const Routing& rs,
                                         int64_t C) {
  const int64_t N = rs.num_tokens, E = rs.num_experts, Cap = rs.capacity;
  Tensor g = g_in.contiguous();  // (N, C)
  Tensor dout = needs[0] ? Tensor::empty({E, Cap, C}, g.dtype(), g.device()) : Tensor();
  Tensor dgates = needs[1] ? Tensor::empty({N, K}, g.dtype(), g.device()) : Tensor();
  dispatch_op(g, "combine backward", [&](auto z, auto on) {
    using T = decltype(z);
    T *dop = ptr<T>(dout), *dgp = ptr<T>(dgates);
    const T *gp = ptr<T>(g), *op = needs[1] ? ptr<T>(os) : nullptr;
    const T* gsp = needs[0] ? ptr<T>(gs) : nullptr;
    const int32_t *ex = ptr<int32_t>(rs.expert), *lc = ptr<int32_t>(rs.loc),
                  *kp = ptr<int32_t>(rs.kept), *src = ptr<int32_t>(rs.slot_src);
    if constexpr (is_cuda(on))
      combine_backward_cuda<T>(dop, dgp, gp, op, gsp, ex, lc, kp, src, N, E, Cap, C);
    else combine_backward<T>(dop, dgp, gp, op, gsp, ex, lc, kp, src, N, E, Cap, C);
  });
  return {dout, dgates};
}

Tensor combine(const Tensor& out_in, const Tensor& gates_in, const Routing& r) {
  const int64_t N = r.num_tokens, E = r.num_experts, Cap = r.capacity;
  CHECK(out_in.defined() && out_in.dim() == 3 && out_in.size(0) == E && out_in.size(1) == Cap,
        "combine: expert_out must be (E, Cap, C) = (", E, ", ", Cap, ", C), got ",
        out_in.defined() ? shape_str(out_in.shape()) : std::string("undefined"));
  CHECK(out_in.is_floating(), "combine: expert_out must be f32/f64, got ", out_in.desc());
  check_shape(gates_in, {N, K}, "combine: gates (N, K)");
  CHECK(gates_in.dtype() == out_in.dtype(), "combine: gates ", gates_in.desc(),
        " and expert_out ", out_in.desc(), " differ in dtype");
  check_same_device(out_in.device(), {&gates_in}, "combine");
  check_routing_shapes(r, out_in.device(), "combine");
  const int64_t C = out_in.size(2);
  Tensor out = out_in.contiguous(), gates = gates_in.contiguous();
  Tensor y = Tensor::empty({N, C}, out.dtype(), out.device());  // (N, C)
  dispatch_op(out, "combine", [&](auto z, auto on) {
    using T = decltype(z);
    T* yp = ptr<T>(y);
    const T *op = ptr<T>(out), *gp = ptr<T>(gates);
    const int32_t *ex = ptr<int32_t>(r.expert), *lc = ptr<int32_t>(r.loc),
                  *kp = ptr<int32_t>(r.kept);
    if constexpr (is_cuda(on)) combine_forward_cuda<T>(yp, op, gp, ex, lc, kp, N, Cap, C);
    else combine_forward<T>(yp, op, gp, ex, lc, kp, N, Cap, C);
  });
  Tensor gs = out_in.requires_grad() ? gates.detach() : Tensor();  // dout reads G
  Tensor os = gates_in.requires_grad() ? out.detach() : Tensor();  // dG reads out
  Routing rs = r;                                                  // saved: the routing
  return record(y, "combine", {out_in, gates_in},
                [gs, os, rs, C](const Tensor& g, const std::vector<bool>& needs) {
    return combine_grads(g, needs, gs, os, rs, C);
  });
}

}  // namespace moe
