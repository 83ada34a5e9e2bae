// layernorm.cpp — CPU forward/backward pair for layer normalisation (see layernorm.h), and the
// device dispatch of its Tensor wrapper (CUDA twins: cuda/ops/layernorm.cu).
//
// Parallel plan (deterministic, see core/parallel.h):
//   forward, dx:     rows are independent -> parallel over rows.
//   dgamma, dbeta:   a sum over rows for each column -> parallel over *columns*; every column is
//                    summed by one thread in row order 0..R-1, so the result does not depend on
//                    the thread count.
// Row statistics are accumulated in double whatever T is (a 768-wide f32 sum loses bits).
#include "ops/layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

// Rows per parallel chunk: enough work (~8k elements) to be worth waking a thread.
static int64_t row_grain(int64_t C) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(C, 1)); }

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                       double eps, int64_t R, int64_t C) {
  // ASSIGNMENT 2 BEGIN layernorm_forward
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;  // (C,)
      T* yr = out + r * C;      // (C,)
      double s = 0.0;
      for (int64_t c = 0; c < C; ++c) s += xr[c];
      const double m = s / static_cast<double>(C);
      double v = 0.0;  // two-pass variance: no cancellation when |mean| >> std
      for (int64_t c = 0; c < C; ++c) {
        const double d = xr[c] - m;
        v += d * d;
      }
      const double rs = 1.0 / std::sqrt(v / static_cast<double>(C) + eps);
      const T mt = static_cast<T>(m), rt = static_cast<T>(rs);
      for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt) * rt * gamma[c] + beta[c];
      mean[r] = mt;
      rstd[r] = rt;
    }
  }, row_grain(C));
  // ASSIGNMENT 2 END
}

// forward: xhat = (x - mean) * rstd;  y = xhat * gamma + beta
// backward, per row (g = dy * gamma is dL/dxhat):
//   dx      = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
// mean and rstd depend on x; the two mean_c terms are exactly their contribution.
template <typename T>
static void layernorm_backward_dx(T* dx, const T* dout, const T* x, const T* mean,
                                  const T* rstd, const T* gamma, int64_t R, int64_t C) {
  // ASSIGNMENT 2 BEGIN layernorm_backward_dx
  parallel_for(R, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* dyr = dout + r * C;  // (C,)
      const T* xr = x + r * C;      // (C,)
      const T m = mean[r], rs = rstd[r];
      double sum_g = 0.0, sum_gx = 0.0;
      for (int64_t c = 0; c < C; ++c) {
        const T g = dyr[c] * gamma[c];
        sum_g += g;
        sum_gx += g * ((xr[c] - m) * rs);
      }
      const T mg = static_cast<T>(sum_g / static_cast<double>(C));
      const T mgx = static_cast<T>(sum_gx / static_cast<double>(C));
      T* dxr = dx + r * C;  // (C,)
      for (int64_t c = 0; c < C; ++c) {
        const T xhat = (xr[c] - m) * rs;
        dxr[c] = rs * (dyr[c] * gamma[c] - mg - xhat * mgx);
      }
    }
  }, row_grain(C));
  // ASSIGNMENT 2 END
}

// forward: y[r, c] = xhat[r, c] * gamma[c] + beta[c]
// backward: dgamma[c] = sum_r dy[r, c] * xhat[r, c];  dbeta[c] = sum_r dy[r, c]
template <typename T>
static void layernorm_backward_params(T* dgamma, T* dbeta, const T* dout, const T* x,
                                      const T* mean, const T* rstd, int64_t R, int64_t C) {
  // ASSIGNMENT 2 BEGIN layernorm_backward_params
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(R, 1));
  parallel_for(C, [&](int64_t c0, int64_t c1) {
    const int64_t w = c1 - c0;
    std::vector<double> acc_g(w, 0.0), acc_b(w, 0.0);  // one scratch per chunk, not per element
    for (int64_t r = 0; r < R; ++r) {                   // rows in order: deterministic sums
      const T* dyr = dout + r * C + c0;
      const T* xr = x + r * C + c0;
      const T m = mean[r], rs = rstd[r];
      for (int64_t j = 0; j < w; ++j) {  // contiguous columns: vectorisable
        acc_g[j] += static_cast<double>(dyr[j] * ((xr[j] - m) * rs));
        acc_b[j] += static_cast<double>(dyr[j]);
      }
    }
    for (int64_t j = 0; j < w; ++j) {
      if (dgamma) dgamma[c0 + j] = static_cast<T>(acc_g[j]);
      if (dbeta) dbeta[c0 + j] = static_cast<T>(acc_b[j]);
    }
  }, grain);
  // ASSIGNMENT 2 END
}

template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                        const T* rstd, const T* gamma, int64_t R, int64_t C) {
  if (dx) layernorm_backward_dx(dx, dout, x, mean, rstd, gamma, R, C);
  if (dgamma || dbeta) layernorm_backward_params(dgamma, dbeta, dout, x, mean, rstd, R, C);
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, double, int64_t, int64_t);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, double, int64_t, int64_t);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int64_t,
                                        int64_t);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, int64_t,
                                         int64_t);

// ---------------------------------------------------------------------------------------------
// Tensor wrapper

Tensor layernorm(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double eps) {
  CHECK(x_in.dim() >= 1, "layernorm: x must be (..., C), got a scalar ", x_in.desc());
  const int64_t C = x_in.size(-1);
  CHECK(C > 0, "layernorm: x must have a non-empty last axis, got ", shape_str(x_in.shape()));
  CHECK(gamma_in.shape() == Shape{C} && beta_in.shape() == Shape{C}, "layernorm: x is ",
        shape_str(x_in.shape()), " so gamma and beta must be (", C, ",), got gamma ",
        shape_str(gamma_in.shape()), " and beta ", shape_str(beta_in.shape()));
  CHECK(x_in.dtype() == gamma_in.dtype() && x_in.dtype() == beta_in.dtype(),
        "layernorm: dtypes differ, x ", x_in.desc(), ", gamma ", gamma_in.desc(), ", beta ",
        beta_in.desc());
  CHECK(eps > 0.0, "layernorm: eps must be > 0, got ", eps);
  check_same_device(x_in.device(), {&gamma_in, &beta_in}, "layernorm");
  const int64_t R = x_in.numel() / C;

  Tensor x = x_in.contiguous(), gamma = gamma_in.contiguous(), beta = beta_in.contiguous();
  const Device dev = x.device();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dev);  // (..., C)
  Tensor mean = Tensor::empty({R}, x.dtype(), dev);       // (R,)
  Tensor rstd = Tensor::empty({R}, x.dtype(), dev);       // (R,)
  dispatch_op(x, "layernorm", [&](auto z, auto on) {
    using T = decltype(z);
    T *o = out.data<T>(true), *mp = mean.data<T>(true), *rp = rstd.data<T>(true);
    const T *xp = x.data<T>(true), *gp = gamma.data<T>(true), *bp = beta.data<T>(true);
    if constexpr (is_cuda(on)) layernorm_forward_cuda<T>(o, mp, rp, xp, gp, bp, eps, R, C);
    else layernorm_forward<T>(o, mp, rp, xp, gp, bp, eps, R, C);
  });

  Tensor xs = x.detach(), gs = gamma.detach();  // saved: x (..., C), gamma (C,), mean, rstd (R,)
  return record(out, "layernorm", {x_in, gamma_in, beta_in},
                [xs, gs, mean, rstd, R, C](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();  // (..., C)
    const Device dev = xs.device();
    Tensor dx = needs[0] ? Tensor::empty(xs.shape(), xs.dtype(), dev) : Tensor();  // (..., C)
    Tensor dgamma = needs[1] ? Tensor::empty({C}, xs.dtype(), dev) : Tensor();     // (C,)
    Tensor dbeta = needs[2] ? Tensor::empty({C}, xs.dtype(), dev) : Tensor();      // (C,)
    dispatch_op(g, "layernorm backward", [&](auto z, auto on) {
      using T = decltype(z);
      T* dxp = needs[0] ? dx.data<T>(true) : nullptr;
      T* dgp = needs[1] ? dgamma.data<T>(true) : nullptr;
      T* dbp = needs[2] ? dbeta.data<T>(true) : nullptr;
      const T *gp = g.data<T>(true), *xp = xs.data<T>(true), *mp = mean.data<T>(true),
              *rp = rstd.data<T>(true), *gmp = gs.data<T>(true);
      if constexpr (is_cuda(on))
        layernorm_backward_cuda<T>(dxp, dgp, dbp, gp, xp, mp, rp, gmp, R, C);
      else layernorm_backward<T>(dxp, dgp, dbp, gp, xp, mp, rp, gmp, R, C);
    });
    return std::vector<Tensor>{dx, dgamma, dbeta};
  });
}

}  // namespace moe
