// elementwise.cpp — CPU forward/backward pairs for add, mul, scale, sum, mean, and the device
// dispatch of their Tensor wrappers (CUDA twins: cuda/ops/elementwise.cu).
#include "ops/elementwise.h"

#include "core/autograd.h"
#include "core/parallel.h"
#include "core/tensor_math.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels (contiguous buffers of n elements)

template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] * b[i];
  }, 1 << 16);
}

// forward: out = a * b  =>  da = dout * b, db = dout * a (either pointer may be null = not needed)
template <typename T>
void mul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (da) da[i] = dout[i] * b[i];
    if (db) db[i] = dout[i] * a[i];
  }
}

template <typename T>
void scale_forward(T* out, const T* x, T s, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = s * x[i];
  }, 1 << 16);
}

// Summed in double whatever T is, so the f32 loss of a big batch does not lose low bits.
template <typename T>
void sum_forward(T* out, const T* x, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  out[0] = static_cast<T>(acc);
}

template <typename T>
void sum_backward(T* dx, const T* dout, int64_t n) {
  const T g = dout[0];
  for (int64_t i = 0; i < n; ++i) dx[i] = g;
}

#define MOE_INSTANTIATE(T)                                                           \
  template void mul_forward<T>(T*, const T*, const T*, int64_t);                     \
  template void mul_backward<T>(T*, T*, const T*, const T*, const T*, int64_t);      \
  template void scale_forward<T>(T*, const T*, T, int64_t);                          \
  template void sum_forward<T>(T*, const T*, int64_t);                               \
  template void sum_backward<T>(T*, const T*, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

static void check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_same_shape(a, b, op);
  CHECK(a.dtype() == b.dtype(), op, ": dtypes differ, ", a.desc(), " vs ", b.desc());
  check_same_device(a.device(), {&b}, op);
}

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  check_binary(a_in, b_in, "add");
  Tensor out = add_tensors(a_in, b_in);  // the core's kernel (core/tensor_math.h)
  // forward: out = a + b  =>  da = dout, db = dout
  return record(out, "add", {a_in, b_in}, [](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? g : Tensor(), needs[1] ? g : Tensor()};
  });
}

Tensor mul(const Tensor& a_in, const Tensor& b_in) {
  check_binary(a_in, b_in, "mul");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  dispatch_op(a, "mul", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T *ap = a.data<T>(true), *bp = b.data<T>(true);
    if constexpr (is_cuda(dev)) mul_forward_cuda<T>(o, ap, bp, a.numel());
    else mul_forward<T>(o, ap, bp, a.numel());
  });
  Tensor as = a.detach(), bs = b.detach();  // saved for backward
  return record(out, "mul", {a_in, b_in}, [as, bs](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();
    Tensor da = needs[0] ? Tensor::empty(as.shape(), as.dtype(), as.device()) : Tensor();
    Tensor db = needs[1] ? Tensor::empty(bs.shape(), bs.dtype(), bs.device()) : Tensor();
    dispatch_op(g, "mul backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* dap = needs[0] ? da.data<T>(true) : nullptr;
      T* dbp = needs[1] ? db.data<T>(true) : nullptr;
      const T *gp = g.data<T>(true), *ap = as.data<T>(true), *bp = bs.data<T>(true);
      if constexpr (is_cuda(dev)) mul_backward_cuda<T>(dap, dbp, gp, ap, bp, g.numel());
      else mul_backward<T>(dap, dbp, gp, ap, bp, g.numel());
    });
    return std::vector<Tensor>{da, db};
  });
}

// out = s * x as a new tensor (no autograd): the forward of scale and its own backward.
static Tensor scaled(const Tensor& x_in, double s) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch_op(x, "scale", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) scale_forward_cuda<T>(o, xp, static_cast<T>(s), x.numel());
    else scale_forward<T>(o, xp, static_cast<T>(s), x.numel());
  });
  return out;
}

Tensor scale(const Tensor& x_in, double s) {
  Tensor out = scaled(x_in, s);
  // forward: out = s * x  =>  dx = s * dout
  return record(out, "scale", {x_in}, [s](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{scaled(g, s)};
  });
}

Tensor sum(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype(), x.device());  // () on x's device: no host sync
  dispatch_op(x, "sum", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) sum_forward_cuda<T>(o, xp, x.numel());
    else sum_forward<T>(o, xp, x.numel());
  });
  // forward: out = sum_i x_i  =>  dx_i = dout
  Shape shape = x.shape();
  return record(out, "sum", {x_in}, [shape](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor dx = Tensor::empty(shape, g.dtype(), g.device());
    dispatch_op(g, "sum backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* d = dx.data<T>(true);
      const T* gp = g.data<T>(true);
      if constexpr (is_cuda(dev)) sum_backward_cuda<T>(d, gp, dx.numel());
      else sum_backward<T>(d, gp, dx.numel());
    });
    return std::vector<Tensor>{dx};
  });
}

Tensor mean(const Tensor& x) {
  CHECK(x.numel() > 0, "mean of an empty tensor ", x.desc());
  return scale(sum(x), 1.0 / static_cast<double>(x.numel()));
}

// ---------------------------------------------------------------------------------------------
// no-grad helpers

void add_inplace(Tensor& dst, const Tensor& src) { add_into(dst, src); }

void scale_inplace(Tensor& dst, double s) {
  CHECK(dst.is_contiguous(), "scale_inplace: destination must be contiguous");
  dispatch_op(dst, "scale_inplace", [&](auto z, auto dev) {
    using T = decltype(z);
    T* d = dst.data<T>(true);
    if constexpr (is_cuda(dev)) scale_forward_cuda<T>(d, d, static_cast<T>(s), dst.numel());
    else scale_forward<T>(d, d, static_cast<T>(s), dst.numel());
  });
}

}  // namespace moe
