// elementwise.cpp — CPU forward/backward pairs for add, mul, scale, sum, mean.
#include "ops/elementwise.h"

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels (contiguous buffers of n elements)

template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  }, 1 << 16);
}

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
double sum_forward(const T* x, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += x[i];
  return acc;
}

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

static void check_binary(const Tensor& a, const Tensor& b, const char* op) {
  check_same_shape(a, b, op);
  CHECK(a.dtype() == b.dtype(), op, ": dtypes differ, ", a.desc(), " vs ", b.desc());
}

Tensor add(const Tensor& a_in, const Tensor& b_in) {
  check_binary(a_in, b_in, "add");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_floating(a.dtype(), [&](auto z) {
    using T = decltype(z);
    add_forward<T>(out.data<T>(), a.data<T>(), b.data<T>(), a.numel());
  });
  // forward: out = a + b  =>  da = dout, db = dout
  return record(out, "add", {a_in, b_in}, [](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? g : Tensor(), needs[1] ? g : Tensor()};
  });
}

Tensor mul(const Tensor& a_in, const Tensor& b_in) {
  check_binary(a_in, b_in, "mul");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  dispatch_floating(a.dtype(), [&](auto z) {
    using T = decltype(z);
    mul_forward<T>(out.data<T>(), a.data<T>(), b.data<T>(), a.numel());
  });
  Tensor as = a.detach(), bs = b.detach();  // saved for backward
  return record(out, "mul", {a_in, b_in}, [as, bs](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();
    Tensor da = needs[0] ? Tensor::empty(as.shape(), as.dtype()) : Tensor();
    Tensor db = needs[1] ? Tensor::empty(bs.shape(), bs.dtype()) : Tensor();
    dispatch_floating(g.dtype(), [&](auto z) {
      using T = decltype(z);
      mul_backward<T>(needs[0] ? da.data<T>() : nullptr, needs[1] ? db.data<T>() : nullptr,
                      g.data<T>(), as.data<T>(), bs.data<T>(), g.numel());
    });
    return std::vector<Tensor>{da, db};
  });
}

Tensor scale(const Tensor& x_in, double s) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), [&](auto z) {
    using T = decltype(z);
    scale_forward<T>(out.data<T>(), x.data<T>(), static_cast<T>(s), x.numel());
  });
  // forward: out = s * x  =>  dx = s * dout
  return record(out, "scale", {x_in}, [s](const Tensor& g, const std::vector<bool>&) {
    NoGradGuard ng;
    return std::vector<Tensor>{scale(g, s)};
  });
}

Tensor sum(const Tensor& x_in) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.dtype());
  dispatch_floating(x.dtype(), [&](auto z) {
    using T = decltype(z);
    out.data<T>()[0] = static_cast<T>(sum_forward<T>(x.data<T>(), x.numel()));
  });
  // forward: out = sum_i x_i  =>  dx_i = dout
  Shape shape = x.shape();
  return record(out, "sum", {x_in}, [shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{Tensor::full(shape, g.item(), g.dtype())};
  });
}

Tensor mean(const Tensor& x) {
  CHECK(x.numel() > 0, "mean of an empty tensor ", x.desc());
  return scale(sum(x), 1.0 / static_cast<double>(x.numel()));
}

// ---------------------------------------------------------------------------------------------
// no-grad helpers

void add_inplace(Tensor& dst, const Tensor& src_in) {
  check_binary(dst, src_in, "add_inplace");
  CHECK(dst.is_contiguous(), "add_inplace: destination must be contiguous");
  Tensor src = src_in.contiguous();
  dispatch_floating(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    add_forward<T>(dst.data<T>(), dst.data<T>(), src.data<T>(), dst.numel());
  });
}

void scale_inplace(Tensor& dst, double s) {
  CHECK(dst.is_contiguous(), "scale_inplace: destination must be contiguous");
  dispatch_floating(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    scale_forward<T>(dst.data<T>(), dst.data<T>(), static_cast<T>(s), dst.numel());
  });
}

}  // namespace moe
