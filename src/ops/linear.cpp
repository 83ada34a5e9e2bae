// linear.cpp — CPU forward/backward pairs for linear and matmul (see linear.h), on ops/gemm, and
// the device dispatch of their Tensor wrappers (CUDA twins: cuda/ops/linear.cu).
#include "ops/linear.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/gemm.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void linear_forward(T* out, const T* x, const T* w, const T* b, int64_t N, int64_t Cin,
                    int64_t Cout) {
  // out (N, Cout) = x (N, Cin) @ w^T (Cin, Cout) [+ b broadcast over rows]
  if (b != nullptr) {  // start every row at b, then add the product (beta = 1)
    parallel_for(N, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n)
        for (int64_t o = 0; o < Cout; ++o) out[n * Cout + o] = b[o];
    }, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(1, Cout)));
  }
  gemm<T>(false, true, N, Cout, Cin, T(1), x, Cin, w, Cin, b != nullptr ? T(1) : T(0), out,
          Cout);
}

// db (Cout) = column sums of dout (N, Cout). Threads own disjoint column ranges and every column
// is summed over rows in the same order, so the result does not depend on the thread count.
template <typename T>
void bias_grad(T* db, const T* dout, int64_t N, int64_t Cout) {
  parallel_for(Cout, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) db[o] = T(0);
    for (int64_t n = 0; n < N; ++n) {
      const T* row = dout + n * Cout;
      for (int64_t o = lo; o < hi; ++o) db[o] += row[o];
    }
  }, N * Cout < (1 << 16) ? Cout : 64);
}

template <typename T>
void linear_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, int64_t N,
                     int64_t Cin, int64_t Cout) {
  // forward: out = x @ w^T + b
  // dx (N, Cin) = dout (N, Cout) @ w (Cout, Cin)
  if (dx != nullptr) gemm<T>(false, false, N, Cin, Cout, T(1), dout, Cout, w, Cin, T(0), dx, Cin);
  // dw (Cout, Cin) = dout^T (Cout, N) @ x (N, Cin)
  if (dw != nullptr) gemm<T>(true, false, Cout, Cin, N, T(1), dout, Cout, x, Cin, T(0), dw, Cin);
  // db (Cout) = sum_n dout[n, :]
  if (db != nullptr) bias_grad<T>(db, dout, N, Cout);
}

template <typename T>
void matmul_forward(T* out, const T* a, const T* b, int64_t batch, int64_t M, int64_t K,
                    int64_t N) {
  // out[i] (M, N) = a[i] (M, K) @ b[i] (K, N)   for i < batch
  gemm_batched<T>(false, false, M, N, K, T(1), a, K, b, N, T(0), out, N, batch, M * K, K * N,
                  M * N);
}

template <typename T>
void matmul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t batch,
                     int64_t M, int64_t K, int64_t N) {
  // forward: out = a @ b
  // da[i] (M, K) = dout[i] (M, N) @ b[i]^T (N, K)
  if (da != nullptr)
    gemm_batched<T>(false, true, M, K, N, T(1), dout, N, b, N, T(0), da, K, batch, M * N, K * N,
                    M * K);
  // db[i] (K, N) = a[i]^T (K, M) @ dout[i] (M, N)
  if (db != nullptr)
    gemm_batched<T>(true, false, K, N, M, T(1), a, K, dout, N, T(0), db, N, batch, M * K, M * N,
                    K * N);
}

#define MOE_INSTANTIATE(T)                                                                     \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t); \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t,  \
                                   int64_t);                                                   \
  template void matmul_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t);  \
  template void matmul_backward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t,      \
                                   int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

static void check_float_operand(const Tensor& t, DType dt, const char* op, const char* what) {
  CHECK(t.defined(), op, ": ", what, " is undefined");
  CHECK(t.dtype() == dt, op, ": ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
        dtype_name(dt), " like the first operand");
}

// The backward of linear: gradients of the inputs that need one, on g's device.
static std::vector<Tensor> linear_grads(const Tensor& g_in, const std::vector<bool>& needs,
                                        const Tensor& xs, const Tensor& ws, const Shape& x_shape,
                                        int64_t N, int64_t Cin, int64_t Cout) {
  Tensor g = g_in.contiguous();  // (..., Cout)
  const Device dev = g.device();
  Tensor dx = needs[0] ? Tensor::empty(x_shape, g.dtype(), dev) : Tensor();  // (..., Cin)
  Tensor dw = needs[1] ? Tensor::empty({Cout, Cin}, g.dtype(), dev) : Tensor();
  Tensor db = needs[2] ? Tensor::empty({Cout}, g.dtype(), dev) : Tensor();
  dispatch_op(g, "linear backward", [&](auto z, auto on) {
    using T = decltype(z);
    T* dxp = needs[0] ? dx.data<T>(true) : nullptr;
    T* dwp = needs[1] ? dw.data<T>(true) : nullptr;
    T* dbp = needs[2] ? db.data<T>(true) : nullptr;
    const T* gp = g.data<T>(true);
    const T* xp = needs[1] ? xs.data<T>(true) : nullptr;  // dw reads x
    const T* wp = needs[0] ? ws.data<T>(true) : nullptr;  // dx reads w
    if constexpr (is_cuda(on)) linear_backward_cuda<T>(dxp, dwp, dbp, gp, xp, wp, N, Cin, Cout);
    else linear_backward<T>(dxp, dwp, dbp, gp, xp, wp, N, Cin, Cout);
  });
  return {dx, dw, db};
}

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  CHECK(x_in.defined() && x_in.dim() >= 1, "linear: x must be (..., Cin), got ", x_in.desc());
  CHECK(x_in.is_floating(), "linear: x must be f32 or f64, got ", x_in.desc());
  check_float_operand(w_in, x_in.dtype(), "linear", "w");
  CHECK(w_in.dim() == 2, "linear: w must be (Cout, Cin), got ", shape_str(w_in.shape()));
  const int64_t Cin = x_in.size(-1), Cout = w_in.size(0);
  CHECK(w_in.size(1) == Cin, "linear: x ", shape_str(x_in.shape()), " has Cin=", Cin,
        " but w is ", shape_str(w_in.shape()), " (expected (Cout, ", Cin, "))");
  const bool has_b = b_in.defined();
  if (has_b) {
    check_float_operand(b_in, x_in.dtype(), "linear", "b");
    check_shape(b_in, {Cout}, "linear: bias b");
  }
  check_same_device(x_in.device(), {&w_in, &b_in}, "linear");
  const int64_t N = shape_numel(Shape(x_in.shape().begin(), x_in.shape().end() - 1));  // rows
  Shape out_shape = x_in.shape();
  out_shape.back() = Cout;  // (..., Cout)
  Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = has_b ? b_in.contiguous() : Tensor();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch_op(x, "linear", [&](auto z, auto on) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T *xp = x.data<T>(true), *wp = w.data<T>(true);
    const T* bp = has_b ? b.data<T>(true) : nullptr;
    if constexpr (is_cuda(on)) linear_forward_cuda<T>(o, xp, wp, bp, N, Cin, Cout);
    else linear_forward<T>(o, xp, wp, bp, N, Cin, Cout);
  });
  // Save only what backward reads: x for dw (if w needs a gradient), w for dx (if x does).
  Tensor xs = w_in.requires_grad() ? x.detach() : Tensor();
  Tensor ws = x_in.requires_grad() ? w.detach() : Tensor();
  Shape x_shape = x_in.shape();
  return record(out, "linear", {x_in, w_in, b_in},
                [xs, ws, x_shape, N, Cin, Cout](const Tensor& g, const std::vector<bool>& needs) {
    return linear_grads(g, needs, xs, ws, x_shape, N, Cin, Cout);
  });
}

// The backward of matmul: gradients of the operands that need one, on g's device.
static std::vector<Tensor> matmul_grads(const Tensor& g_in, const std::vector<bool>& needs,
                                        const Tensor& as, const Tensor& bs, const Shape& a_shape,
                                        const Shape& b_shape, int64_t batch, int64_t M, int64_t K,
                                        int64_t N) {
  Tensor g = g_in.contiguous();  // (..., M, N)
  const Device dev = g.device();
  Tensor da = needs[0] ? Tensor::empty(a_shape, g.dtype(), dev) : Tensor();  // (..., M, K)
  Tensor db = needs[1] ? Tensor::empty(b_shape, g.dtype(), dev) : Tensor();  // (..., K, N)
  dispatch_op(g, "matmul backward", [&](auto z, auto on) {
    using T = decltype(z);
    T* dap = needs[0] ? da.data<T>(true) : nullptr;
    T* dbp = needs[1] ? db.data<T>(true) : nullptr;
    const T* gp = g.data<T>(true);
    const T* ap = needs[1] ? as.data<T>(true) : nullptr;  // db reads a
    const T* bp = needs[0] ? bs.data<T>(true) : nullptr;  // da reads b
    if constexpr (is_cuda(on)) matmul_backward_cuda<T>(dap, dbp, gp, ap, bp, batch, M, K, N);
    else matmul_backward<T>(dap, dbp, gp, ap, bp, batch, M, K, N);
  });
  return {da, db};
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  CHECK(a_in.defined() && b_in.defined(), "matmul: undefined operand");
  CHECK(a_in.is_floating(), "matmul: a must be f32 or f64, got ", a_in.desc());
  check_float_operand(b_in, a_in.dtype(), "matmul", "b");
  check_same_device(a_in.device(), {&b_in}, "matmul");
  const int nd = a_in.dim();
  CHECK(nd >= 2 && b_in.dim() == nd, "matmul: a (..., M, K) and b (..., K, N) need the same "
        "number (>= 2) of dims, got ", shape_str(a_in.shape()), " and ", shape_str(b_in.shape()));
  const int64_t M = a_in.size(-2), K = a_in.size(-1), N = b_in.size(-1);
  CHECK(b_in.size(-2) == K, "matmul: inner dims differ: a ", shape_str(a_in.shape()), " has K=",
        K, ", b ", shape_str(b_in.shape()), " has ", b_in.size(-2), " rows");
  Shape out_shape(a_in.shape().begin(), a_in.shape().end() - 2);  // the batch dims
  for (int d = 0; d < nd - 2; ++d)
    CHECK(a_in.size(d) == b_in.size(d), "matmul: batch dims differ (no broadcasting): a ",
          shape_str(a_in.shape()), " vs b ", shape_str(b_in.shape()));
  const int64_t batch = shape_numel(out_shape);
  out_shape.push_back(M);
  out_shape.push_back(N);  // (..., M, N)
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  dispatch_op(a, "matmul", [&](auto z, auto on) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T *ap = a.data<T>(true), *bp = b.data<T>(true);
    if constexpr (is_cuda(on)) matmul_forward_cuda<T>(o, ap, bp, batch, M, K, N);
    else matmul_forward<T>(o, ap, bp, batch, M, K, N);
  });
  Tensor as = b_in.requires_grad() ? a.detach() : Tensor();  // db reads a
  Tensor bs = a_in.requires_grad() ? b.detach() : Tensor();  // da reads b
  Shape a_shape = a_in.shape(), b_shape = b_in.shape();
  return record(out, "matmul", {a_in, b_in},
                [as, bs, a_shape, b_shape, batch, M, K, N](const Tensor& g,
                                                           const std::vector<bool>& needs) {
    return matmul_grads(g, needs, as, bs, a_shape, b_shape, batch, M, K, N);
  });
}

}  // namespace moe
