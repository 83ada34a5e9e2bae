// shape.cpp — CPU forward/backward pairs for reshape, transpose, slice, concat (see shape.h), and
// the device dispatch of their Tensor wrappers (CUDA twins: cuda/ops/shape.cu).
//
// All kernels are copies of contiguous runs (the innermost `In` elements, or whole blocks), and
// each thread writes its own rows of the output, so they are deterministic by construction.
#include "ops/shape.h"

#include <algorithm>
#include <utility>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

namespace {

// Work units of `per_unit` elements each: give a thread at least ~16K elements to copy.
int64_t copy_grain(int64_t per_unit) {
  return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, per_unit));
}

// The one dispatch point of every shape op: dispatch_op (core/dispatch.h), plus i32 tensors (ids
// are moved by shape ops too). f(T{}, OnCpu{}) with T = float, double or int32_t on the CPU;
// f(T{}, OnCuda{}) with T = float or int32_t on the GPU.
template <typename F>
void dispatch_shape(const Tensor& t, const char* op, F&& f) {
  if (t.dtype() != DType::I32) {
    dispatch_op(t, op, std::forward<F>(f));
  } else if (t.device().is_cuda()) {
    f(int32_t{}, OnCuda{});
  } else {
    f(int32_t{}, OnCpu{});
  }
}

int normalize_dim(int d, int nd, const char* op, const Tensor& x) {
  const int orig = d;
  if (d < 0) d += nd;
  CHECK(d >= 0 && d < nd, op, ": dim ", orig, " is out of range for ", x.desc(), " (valid: ",
        -nd, " .. ", nd - 1, ")");
  return d;
}

int64_t prod(const Shape& s, int begin, int end) {  // product of s[begin:end]
  int64_t p = 1;
  for (int i = begin; i < end; ++i) p *= s[i];
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void transpose_forward(T* out, const T* x, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                       int64_t In) {
  // out[a, j, m, i, :] = x[a, i, m, j, :]; one work unit = one (a, j), a contiguous output block
  const int64_t per_unit = Mid * D0 * In;
  parallel_for(A * D1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t a = r / D1, j = r % D1;
      T* o = out + r * per_unit;  // (Mid, D0, In)
      for (int64_t m = 0; m < Mid; ++m) {
        for (int64_t i = 0; i < D0; ++i, o += In) {
          const T* src = x + (((a * D0 + i) * Mid + m) * D1 + j) * In;
          std::copy(src, src + In, o);
        }
      }
    }
  }, copy_grain(per_unit));
}

template <typename T>
void transpose_backward(T* dx, const T* dout, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                        int64_t In) {
  // forward: out[a, j, m, i] = x[a, i, m, j]  =>  dx[a, i, m, j] = dout[a, j, m, i], which is the
  // same copy with the roles of D0 and D1 exchanged.
  transpose_forward<T>(dx, dout, A, D1, Mid, D0, In);
}

template <typename T>
void slice_forward(T* out, const T* x, int64_t Outer, int64_t D, int64_t In, int64_t start,
                   int64_t len) {
  // out[o, r, :] = x[o, start + r, :]   for r < len
  parallel_for(Outer, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const T* src = x + (o * D + start) * In;
      std::copy(src, src + len * In, out + o * len * In);
    }
  }, copy_grain(len * In));
}

template <typename T>
void slice_backward(T* dx, const T* dout, int64_t Outer, int64_t D, int64_t In, int64_t start,
                    int64_t len) {
  // forward: out[o, r, :] = x[o, start + r, :]  =>  dx[o, start + r, :] = dout[o, r, :], and rows
  // of x outside [start, start + len) did not reach the output: their gradient is 0.
  parallel_for(Outer, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      T* d = dx + o * D * In;  // (D, In)
      std::fill(d, d + start * In, T(0));
      const T* src = dout + o * len * In;
      std::copy(src, src + len * In, d + start * In);
      std::fill(d + (start + len) * In, d + D * In, T(0));
    }
  }, copy_grain(D * In));
}

template <typename T>
void concat_forward(T* out, const std::vector<const T*>& xs, const std::vector<int64_t>& sizes,
                    int64_t Outer, int64_t In) {
  // out[o, off_i + r, :] = xs[i][o, r, :]   off_i = sizes[0] + ... + sizes[i-1]
  int64_t D = 0;
  for (int64_t s : sizes) D += s;
  parallel_for(Outer, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      T* dst = out + o * D * In;
      for (size_t i = 0; i < xs.size(); ++i) {
        const T* src = xs[i] + o * sizes[i] * In;
        dst = std::copy(src, src + sizes[i] * In, dst);
      }
    }
  }, copy_grain(D * In));
}

template <typename T>
void concat_backward(const std::vector<T*>& dxs, const T* dout, const std::vector<int64_t>& sizes,
                     int64_t Outer, int64_t In) {
  // forward: out[o, off_i + r, :] = xs[i][o, r, :]  =>  dxs[i][o, r, :] = dout[o, off_i + r, :]
  int64_t D = 0;
  for (int64_t s : sizes) D += s;
  parallel_for(Outer, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const T* src = dout + o * D * In;
      for (size_t i = 0; i < dxs.size(); ++i) {
        if (dxs[i] != nullptr) std::copy(src, src + sizes[i] * In, dxs[i] + o * sizes[i] * In);
        src += sizes[i] * In;
      }
    }
  }, copy_grain(D * In));
}

#define MOE_INSTANTIATE(T)                                                                     \
  template void transpose_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t); \
  template void transpose_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,          \
                                      int64_t);                                                \
  template void slice_forward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);     \
  template void slice_backward<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);    \
  template void concat_forward<T>(T*, const std::vector<const T*>&, const std::vector<int64_t>&, \
                                  int64_t, int64_t);                                           \
  template void concat_backward<T>(const std::vector<T*>&, const T*,                            \
                                   const std::vector<int64_t>&, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
MOE_INSTANTIATE(int32_t)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

Tensor reshape(const Tensor& x, const Shape& shape) {
  CHECK(x.defined(), "reshape of an undefined tensor");
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    CHECK(s[i] >= -1, "reshape: bad size ", s[i], " in ", shape_str(shape));
    if (s[i] == -1) {
      CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0 && known > 0 && x.numel() % known == 0) s[infer] = x.numel() / known;
  CHECK(infer < 0 || s[infer] != -1, "reshape: cannot infer the -1 in ", shape_str(shape),
        " for ", x.desc());
  CHECK(shape_numel(s) == x.numel(), "reshape: cannot reshape ", x.desc(), " (", x.numel(),
        " elements) into ", shape_str(s), " (", shape_numel(s), " elements)");
  Tensor out = x.contiguous().view(s);  // a view when x is contiguous, else a packed copy
  Shape x_shape = x.shape();
  return record(out, "reshape", {x}, [x_shape](const Tensor& g, const std::vector<bool>&) {
    // forward: out = x laid out as `shape`  =>  dx = dout laid out as x.shape
    return std::vector<Tensor>{g.contiguous().view(x_shape)};
  });
}

Tensor transpose(const Tensor& x_in, int d0, int d1) {
  CHECK(x_in.defined(), "transpose of an undefined tensor");
  const int nd = x_in.dim();
  d0 = normalize_dim(d0, nd, "transpose", x_in);
  d1 = normalize_dim(d1, nd, "transpose", x_in);
  if (d0 > d1) std::swap(d0, d1);
  const Shape& s = x_in.shape();
  if (d0 == d1) {  // swapping a dim with itself: a copy, gradient passes through
    return record(x_in.clone(), "transpose", {x_in},
                  [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  }
  const int64_t A = prod(s, 0, d0), D0 = s[d0], Mid = prod(s, d0 + 1, d1), D1 = s[d1],
                In = prod(s, d1 + 1, nd);
  Shape out_shape = s;
  std::swap(out_shape[d0], out_shape[d1]);
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_shape(x, "transpose", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) transpose_forward_cuda<T>(o, xp, A, D0, Mid, D1, In);
    else transpose_forward<T>(o, xp, A, D0, Mid, D1, In);
  });
  Shape x_shape = s;
  return record(out, "transpose", {x_in},
                [x_shape, A, D0, Mid, D1, In](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor dx = Tensor::empty(x_shape, g.dtype(), g.device());
    dispatch_shape(g, "transpose backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* d = dx.data<T>(true);
      const T* gp = g.data<T>(true);
      if constexpr (is_cuda(dev)) transpose_backward_cuda<T>(d, gp, A, D0, Mid, D1, In);
      else transpose_backward<T>(d, gp, A, D0, Mid, D1, In);
    });
    return std::vector<Tensor>{dx};
  });
}

Tensor slice(const Tensor& x_in, int dim, int64_t start, int64_t end) {
  CHECK(x_in.defined(), "slice of an undefined tensor");
  const int nd = x_in.dim();
  const int d = normalize_dim(dim, nd, "slice", x_in);
  const Shape& s = x_in.shape();
  CHECK(0 <= start && start <= end && end <= s[d], "slice: [", start, ", ", end,
        ") is not a valid range of dim ", d, " (size ", s[d], ") of ", x_in.desc());
  const int64_t Outer = prod(s, 0, d), D = s[d], In = prod(s, d + 1, nd), len = end - start;
  Shape out_shape = s;
  out_shape[d] = len;
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_shape(x, "slice", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = x.data<T>(true);
    if constexpr (is_cuda(dev)) slice_forward_cuda<T>(o, xp, Outer, D, In, start, len);
    else slice_forward<T>(o, xp, Outer, D, In, start, len);
  });
  Shape x_shape = s;
  return record(out, "slice", {x_in},
                [x_shape, Outer, D, In, start, len](const Tensor& g_in, const std::vector<bool>&) {
    Tensor g = g_in.contiguous();
    Tensor dx = Tensor::empty(x_shape, g.dtype(), g.device());
    dispatch_shape(g, "slice backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* d = dx.data<T>(true);
      const T* gp = g.data<T>(true);
      if constexpr (is_cuda(dev)) slice_backward_cuda<T>(d, gp, Outer, D, In, start, len);
      else slice_backward<T>(d, gp, Outer, D, In, start, len);
    });
    return std::vector<Tensor>{dx};
  });
}

Tensor concat(const std::vector<Tensor>& xs_in, int dim) {
  CHECK(!xs_in.empty(), "concat: needs at least one tensor");
  const Tensor& first = xs_in[0];
  CHECK(first.defined(), "concat: tensor 0 is undefined");
  const int nd = first.dim();
  const int d = normalize_dim(dim, nd, "concat", first);
  std::vector<Tensor> xs;
  std::vector<int64_t> sizes;
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < xs_in.size(); ++i) {
    const Tensor& t = xs_in[i];
    CHECK(t.defined(), "concat: tensor ", i, " is undefined");
    CHECK(t.dtype() == first.dtype(), "concat: tensor ", i, " is ", t.desc(), " but tensor 0 is ",
          first.desc());
    bool same = t.dim() == nd;
    for (int k = 0; same && k < nd; ++k) same = k == d || t.size(k) == first.size(k);
    CHECK(same, "concat along dim ", d, ": tensor ", i, " has shape ", shape_str(t.shape()),
          ", which differs from tensor 0's ", shape_str(first.shape()), " outside dim ", d);
    check_same_device(first.device(), {&t}, "concat");
    xs.push_back(t.contiguous());
    sizes.push_back(t.size(d));
    out_shape[d] += t.size(d);
  }
  const int64_t Outer = prod(out_shape, 0, d), In = prod(out_shape, d + 1, nd);
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  dispatch_shape(first, "concat", [&](auto z, auto dev) {
    using T = decltype(z);
    std::vector<const T*> ptrs;
    for (const Tensor& t : xs) ptrs.push_back(t.data<T>(true));
    if constexpr (is_cuda(dev)) concat_forward_cuda<T>(out.data<T>(true), ptrs, sizes, Outer, In);
    else concat_forward<T>(out.data<T>(true), ptrs, sizes, Outer, In);
  });
  std::vector<Shape> shapes;
  for (const Tensor& t : xs_in) shapes.push_back(t.shape());
  return record(out, "concat", xs_in,
                [shapes, sizes, Outer, In](const Tensor& g_in, const std::vector<bool>& needs) {
    Tensor g = g_in.contiguous();
    std::vector<Tensor> dxs(shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i)
      if (needs[i]) dxs[i] = Tensor::empty(shapes[i], g.dtype(), g.device());
    dispatch_shape(g, "concat backward", [&](auto z, auto dev) {
      using T = decltype(z);
      std::vector<T*> ptrs(shapes.size(), nullptr);
      for (size_t i = 0; i < shapes.size(); ++i)
        if (needs[i]) ptrs[i] = dxs[i].data<T>(true);
      if constexpr (is_cuda(dev)) concat_backward_cuda<T>(ptrs, g.data<T>(true), sizes, Outer, In);
      else concat_backward<T>(ptrs, g.data<T>(true), sizes, Outer, In);
    });
    return dxs;
  });
}

}  // namespace moe
