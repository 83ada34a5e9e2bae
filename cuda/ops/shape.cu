// shape.cu — CUDA twins of src/ops/shape.cpp: transpose, slice and concat, forward and backward.
// SPEC §2 (head layouts, splitting fused projections), §3 step 9 (joining per-expert pieces).
//
// These ops only move data, so the kernels move raw words of the element's size (uint32_t for f32
// and i32, later uint16_t for bf16) and never look at the values: one kernel serves every dtype of
// that size, and the results are bitwise the CPU's. One thread per output element in a
// grid-stride loop (any size); the index arithmetic is in int64_t. reshape needs no kernel (a view,
// or Tensor::contiguous, which already packs on the device).
#include <cstdint>
#include <vector>

#include "cuda_common.h"
#include "ops/shape.h"

namespace moe {
namespace {

// The unsigned word with the size of T: the kernels' element type.
template <size_t Bytes>
struct WordOf;
template <>
struct WordOf<2> {
  using type = uint16_t;
};
template <>
struct WordOf<4> {
  using type = uint32_t;
};
template <>
struct WordOf<8> {
  using type = uint64_t;
};
template <typename T>
using Word = typename WordOf<sizeof(T)>::type;

template <typename T>
Word<T>* words(T* p) {
  return reinterpret_cast<Word<T>*>(p);
}
template <typename T>
const Word<T>* words(const T* p) {
  return reinterpret_cast<const Word<T>*>(p);
}

// out[a, j, m, i, :] = x[a, i, m, j, :]   out (A, D1, Mid, D0, In), x (A, D0, Mid, D1, In)
template <typename W>
__global__ void transpose_kernel(W* out, const W* x, int64_t A, int64_t D0, int64_t Mid,
                                 int64_t D1, int64_t In) {
  const int64_t n = A * D1 * Mid * D0 * In;
  for (int64_t idx = grid_index(); idx < n; idx += grid_stride()) {
    int64_t r = idx / In;
    const int64_t k = idx - r * In;
    const int64_t i = r % D0;
    r /= D0;
    const int64_t m = r % Mid;
    r /= Mid;
    const int64_t j = r % D1, a = r / D1;
    out[idx] = x[(((a * D0 + i) * Mid + m) * D1 + j) * In + k];
  }
}

// out[o, r, :] = x[o, start + r, :] for r < len   out (Outer, len, In), x (Outer, D, In)
template <typename W>
__global__ void slice_copy_kernel(W* out, const W* x, int64_t Outer, int64_t D, int64_t In,
                                  int64_t start, int64_t len) {
  const int64_t row = len * In, n = Outer * row;
  for (int64_t idx = grid_index(); idx < n; idx += grid_stride()) {
    const int64_t o = idx / row, rem = idx - o * row;
    out[idx] = x[(o * D + start) * In + rem];
  }
}

// out[o, start + r, :] = x[o, r, :] for r < len; the rest of out is left alone.
template <typename W>
__global__ void slice_insert_kernel(W* out, const W* x, int64_t Outer, int64_t D, int64_t In,
                                    int64_t start, int64_t len) {
  const int64_t row = len * In, n = Outer * row;
  for (int64_t idx = grid_index(); idx < n; idx += grid_stride()) {
    const int64_t o = idx / row, rem = idx - o * row;
    out[(o * D + start) * In + rem] = x[idx];
  }
}

// forward: out[o, r, :] = x[o, start + r, :]  =>  dx[o, start + r, :] = dout[o, r, :], and 0 for
// rows of x outside [start, start + len). Every element of dx is written once.
template <typename W>
__global__ void slice_pad_kernel(W* dx, const W* dout, int64_t Outer, int64_t D, int64_t In,
                                 int64_t start, int64_t len) {
  const int64_t row = D * In, n = Outer * row, lo = start * In, hi = (start + len) * In;
  for (int64_t idx = grid_index(); idx < n; idx += grid_stride()) {
    const int64_t o = idx / row, rem = idx - o * row;
    dx[idx] = rem >= lo && rem < hi ? dout[o * len * In + rem - lo] : W(0);
  }
}

}  // namespace

template <typename T>
void transpose_forward_cuda(T* out, const T* x, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                            int64_t In) {
  const int64_t n = A * D0 * Mid * D1 * In;
  if (n == 0) return;
  transpose_kernel<<<grid_size_for(n, kBlock), kBlock>>>(words(out), words(x), A, D0, Mid, D1,
                                                         In);
  CUDA_LAUNCH_CHECK();
}

// forward: out[a, j, m, i] = x[a, i, m, j]  =>  dx[a, i, m, j] = dout[a, j, m, i], the same copy
// with the roles of D0 and D1 exchanged.
template <typename T>
void transpose_backward_cuda(T* dx, const T* dout, int64_t A, int64_t D0, int64_t Mid, int64_t D1,
                             int64_t In) {
  transpose_forward_cuda<T>(dx, dout, A, D1, Mid, D0, In);
}

template <typename T>
void slice_forward_cuda(T* out, const T* x, int64_t Outer, int64_t D, int64_t In, int64_t start,
                        int64_t len) {
  const int64_t n = Outer * len * In;
  if (n == 0) return;
  slice_copy_kernel<<<grid_size_for(n, kBlock), kBlock>>>(words(out), words(x), Outer, D, In,
                                                          start, len);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void slice_backward_cuda(T* dx, const T* dout, int64_t Outer, int64_t D, int64_t In,
                         int64_t start, int64_t len) {
  const int64_t n = Outer * D * In;
  if (n == 0) return;
  slice_pad_kernel<<<grid_size_for(n, kBlock), kBlock>>>(words(dx), words(dout), Outer, D, In,
                                                         start, len);
  CUDA_LAUNCH_CHECK();
}

// out[o, off_i + r, :] = xs[i][o, r, :]: one launch per input (concat joins a handful of pieces),
// each writing its own rows of out, so together they write every element once.
template <typename T>
void concat_forward_cuda(T* out, const std::vector<const T*>& xs,
                         const std::vector<int64_t>& sizes, int64_t Outer, int64_t In) {
  int64_t D = 0;
  for (int64_t s : sizes) D += s;
  int64_t off = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const int64_t n = Outer * sizes[i] * In;
    if (n > 0) {
      slice_insert_kernel<<<grid_size_for(n, kBlock), kBlock>>>(words(out), words(xs[i]), Outer,
                                                                D, In, off, sizes[i]);
      CUDA_LAUNCH_CHECK();
    }
    off += sizes[i];
  }
}

// forward: out[o, off_i + r, :] = xs[i][o, r, :]  =>  dxs[i][o, r, :] = dout[o, off_i + r, :],
// i.e. slice i of dout (a null dxs[i] is not needed).
template <typename T>
void concat_backward_cuda(const std::vector<T*>& dxs, const T* dout,
                          const std::vector<int64_t>& sizes, int64_t Outer, int64_t In) {
  int64_t D = 0;
  for (int64_t s : sizes) D += s;
  int64_t off = 0;
  for (size_t i = 0; i < dxs.size(); ++i) {
    const int64_t n = Outer * sizes[i] * In;
    if (dxs[i] != nullptr && n > 0) {
      slice_copy_kernel<<<grid_size_for(n, kBlock), kBlock>>>(words(dxs[i]), words(dout), Outer,
                                                              D, In, off, sizes[i]);
      CUDA_LAUNCH_CHECK();
    }
    off += sizes[i];
  }
}

#define MOE_INSTANTIATE(T)                                                                     \
  template void transpose_forward_cuda<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,     \
                                          int64_t);                                            \
  template void transpose_backward_cuda<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                           int64_t);                                           \
  template void slice_forward_cuda<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,         \
                                      int64_t);                                                \
  template void slice_backward_cuda<T>(T*, const T*, int64_t, int64_t, int64_t, int64_t,        \
                                       int64_t);                                               \
  template void concat_forward_cuda<T>(T*, const std::vector<const T*>&,                        \
                                       const std::vector<int64_t>&, int64_t, int64_t);         \
  template void concat_backward_cuda<T>(const std::vector<T*>&, const T*,                       \
                                        const std::vector<int64_t>&, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(int32_t)
#undef MOE_INSTANTIATE

}  // namespace moe
