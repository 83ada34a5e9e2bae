// activation.cpp — CPU forward/backward pairs for GELU (tanh form) and inverted dropout, and the
// device dispatch of their Tensor wrappers (CUDA twins: cuda/ops/activation.cu).
#include "ops/activation.h"

#include <cmath>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

static constexpr int64_t kGrain = 1 << 14;  // elements per parallel chunk, at least
static constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2/pi)
static constexpr double kGeluCubic = 0.044715;

// ---------------------------------------------------------------------------------------------
// GELU

template <typename T>
void gelu_forward(T* out, const T* x, int64_t n) {
  // ASSIGNMENT 2 BEGIN gelu_forward
  const T s = static_cast<T>(kSqrt2OverPi), a = static_cast<T>(kGeluCubic);
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const T xi = x[i];
      const T u = s * (xi + a * xi * xi * xi);
      out[i] = T(0.5) * xi * (T(1) + tanh_fast(u));
    }
  }, kGrain);
  // ASSIGNMENT 2 END
}

// forward: y = 0.5 x (1 + tanh(u)),  u = s (x + a x^3)
// backward: dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) s (1 + 3 a x^2)
//           dx = dout * dy/dx
template <typename T>
void gelu_backward(T* dx, const T* dout, const T* x, int64_t n) {
  // ASSIGNMENT 2 BEGIN gelu_backward
  const T s = static_cast<T>(kSqrt2OverPi), a = static_cast<T>(kGeluCubic);
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const T xi = x[i];
      const T th = tanh_fast(s * (xi + a * xi * xi * xi));
      const T du = s * (T(1) + T(3) * a * xi * xi);  // du/dx
      const T dydx = T(0.5) * (T(1) + th) + T(0.5) * xi * (T(1) - th * th) * du;
      dx[i] = dout[i] * dydx;
    }
  }, kGrain);
  // ASSIGNMENT 2 END
}

// The tanh form on both devices; the CUDA twin uses tanhf where the CPU uses tanh_fast (a few
// ulps apart: tol::gelu).
static Tensor gelu_backward_of(const Tensor& xs, const Tensor& g_in) {
  Tensor g = g_in.contiguous();
  Tensor dx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
  dispatch_op(g, "gelu backward", [&](auto z, auto dev) {
    using T = decltype(z);
    T* d = dx.data<T>(true);
    const T *gp = g.data<T>(true), *xp = xs.data<T>(true);
    if constexpr (is_cuda(dev)) gelu_backward_cuda<T>(d, gp, xp, xs.numel());
    else gelu_backward<T>(d, gp, xp, xs.numel());
  });
  return dx;
}

Tensor gelu(const Tensor& x_in) {
  CHECK(x_in.is_floating(), "gelu: x must be f32 or f64, got ", x_in.desc());
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());  // same shape as x
  dispatch_op(x, "gelu", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) gelu_forward_cuda<T>(o, xp, x.numel());
    else gelu_forward<T>(o, xp, x.numel());
  });
  Tensor xs = x.detach();  // saved: x (backward recomputes tanh rather than storing it)
  return record(out, "gelu", {x_in}, [xs](const Tensor& g_in, const std::vector<bool>&) {
    return std::vector<Tensor>{gelu_backward_of(xs, g_in)};
  });
}

// ---------------------------------------------------------------------------------------------
// dropout

// The mask is never stored: element i's factor is a pure function of (seed, stream, first + i)
// (core/philox.h), so the backward recomputes it, and the CPU and the GPU draw the same mask.
template <typename T>
void dropout_forward(T* out, const T* x, DropoutMask m, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    DropoutMaskReader<T> mask{m};
    for (int64_t i = lo; i < hi; ++i) out[i] = x[i] * mask.factor(i);
  }, kGrain);
}

// forward: y = x * mask  =>  dx = dout * mask
template <typename T>
void dropout_backward(T* dx, const T* dout, DropoutMask m, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    DropoutMaskReader<T> mask{m};
    for (int64_t i = lo; i < hi; ++i) dx[i] = dout[i] * mask.factor(i);
  }, kGrain);
}

Tensor dropout(const Tensor& x_in, double p, bool training, CounterRng& rng) {
  CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p,
        ". HINT: p is the probability of *dropping* an element");
  CHECK(x_in.is_floating(), "dropout: x must be f32 or f64, got ", x_in.desc());
  if (!training || p == 0.0) return x_in;  // identity: no copy, no tape node, no rng draw
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());  // same shape as x
  const DropoutMask m{p, rng.range(static_cast<uint64_t>(x.numel()))};
  dispatch_op(x, "dropout", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) dropout_forward_cuda<T>(o, xp, m, x.numel());
    else dropout_forward<T>(o, xp, m, x.numel());
  });
  return record(out, "dropout", {x_in}, [m](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor dx = Tensor::empty(g.shape(), g.dtype(), g.device());
    dispatch_op(g, "dropout backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* d = dx.data<T>(true);
      const T* gp = g.data<T>(true);
      if constexpr (is_cuda(dev)) dropout_backward_cuda<T>(d, gp, m, g.numel());
      else dropout_backward<T>(d, gp, m, g.numel());
    });
    return std::vector<Tensor>{dx};
  });
}

// ---------------------------------------------------------------------------------------------
// explicit instantiations (f32 for the model, f64 for gradient checks)

template void gelu_forward<float>(float*, const float*, int64_t);
template void gelu_forward<double>(double*, const double*, int64_t);
template void gelu_backward<float>(float*, const float*, const float*, int64_t);
template void gelu_backward<double>(double*, const double*, const double*, int64_t);
template void dropout_forward<float>(float*, const float*, DropoutMask, int64_t);
template void dropout_forward<double>(double*, const double*, DropoutMask, int64_t);
template void dropout_backward<float>(float*, const float*, DropoutMask, int64_t);
template void dropout_backward<double>(double*, const double*, DropoutMask, int64_t);

}  // namespace moe
