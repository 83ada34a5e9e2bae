// last_token.cpp — CPU forward/backward of gather_rows and the last_token wrapper (see
// last_token.h). SPEC §7 (classification head input).
#include "finetune/last_token.h"

#include <algorithm>
#include <vector>

#include "core/autograd.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void gather_rows_forward(T* out, const T* x, const int32_t* index, int64_t B, int64_t Tn,
                         int64_t C) {
  // out[b, :] = x[b, index[b], :] — a copy of one contiguous row of C values per sequence.
  for (int64_t b = 0; b < B; ++b) {
    const T* src = x + (b * Tn + index[b]) * C;
    std::copy(src, src + C, out + b * C);
  }
}

template <typename T>
void gather_rows_backward(T* dx, const T* dout, const int32_t* index, int64_t B, int64_t Tn,
                          int64_t C) {
  // forward: out[b, :] = x[b, index[b], :]  =>  dx[b, index[b], :] = dout[b, :], and every other
  // position of x did not reach the output, so its gradient is 0 (the "scatter into zeros").
  std::fill(dx, dx + B * Tn * C, T(0));
  for (int64_t b = 0; b < B; ++b) {
    const T* src = dout + b * C;
    std::copy(src, src + C, dx + (b * Tn + index[b]) * C);
  }
}

template void gather_rows_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                         int64_t);
template void gather_rows_forward<double>(double*, const double*, const int32_t*, int64_t,
                                          int64_t, int64_t);
template void gather_rows_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                          int64_t);
template void gather_rows_backward<double>(double*, const double*, const int32_t*, int64_t,
                                           int64_t, int64_t);

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

Tensor gather_rows(const Tensor& x_in, const Tensor& index_in) {
  CHECK(x_in.defined() && x_in.dim() == 3, "gather_rows: x must be (B, T, C), got ",
        x_in.defined() ? x_in.desc() : std::string("an undefined tensor"));
  CHECK(x_in.is_floating(), "gather_rows: x must be f32 or f64, got ", x_in.desc());
  const int64_t B = x_in.size(0), Tn = x_in.size(1), C = x_in.size(2);
  CHECK(index_in.defined() && index_in.dtype() == DType::I32,
        "gather_rows: index must be an i32 tensor");
  check_shape(index_in, {B}, "gather_rows: index");
  Tensor x = x_in.contiguous(), index = index_in.contiguous();
  const int32_t* ip = index.data<int32_t>();
  for (int64_t b = 0; b < B; ++b)
    CHECK(ip[b] >= 0 && ip[b] < Tn, "gather_rows: index[", b, "] = ", ip[b],
          " is outside [0, ", Tn, ") for x ", x.desc());
  Tensor out = Tensor::empty({B, C}, x.dtype());  // (B, C)
  dispatch_floating(x.dtype(), [&](auto z) {
    using T = decltype(z);
    gather_rows_forward<T>(out.data<T>(), x.data<T>(), ip, B, Tn, C);
  });
  Tensor saved_index = index.clone();  // the backward reads only the indices (and x's shape)
  Shape x_shape = x.shape();
  return record(out, "gather_rows", {x_in, index_in},
                [saved_index, x_shape](const Tensor& g_in, const std::vector<bool>& needs) {
                  Tensor dx;
                  if (needs[0]) {
                    Tensor g = g_in.contiguous();  // (B, C)
                    dx = Tensor::empty(x_shape, g.dtype());  // (B, T, C)
                    dispatch_floating(g.dtype(), [&](auto z) {
                      using T = decltype(z);
                      gather_rows_backward<T>(dx.data<T>(), g.data<T>(),
                                              saved_index.data<int32_t>(), x_shape[0],
                                              x_shape[1], x_shape[2]);
                    });
                  }
                  return std::vector<Tensor>{dx, Tensor()};  // indices get no gradient
                });
}

Tensor last_token(const Tensor& hidden, const Tensor& lengths) {
  CHECK(hidden.defined() && hidden.dim() == 3, "last_token: hidden must be (B, T, C)");
  CHECK(lengths.defined() && lengths.dtype() == DType::I32,
        "last_token: lengths must be an i32 tensor");
  const int64_t B = hidden.size(0), Tn = hidden.size(1);
  check_shape(lengths, {B}, "last_token: lengths");
  std::vector<int32_t> len = lengths.to_i32_vector();
  std::vector<int32_t> idx(B);
  for (int64_t b = 0; b < B; ++b) {
    CHECK(len[b] >= 1 && len[b] <= Tn, "last_token: sequence ", b, " has length ", len[b],
          "; lengths must be in [1, ", Tn, "] (an empty sequence has no last token)");
    idx[b] = len[b] - 1;
  }
  return gather_rows(hidden, Tensor::from_i32(idx, {B}));
}

}  // namespace moe
