// tensor_math.cu — CUDA kernels of core/tensor_math.h: add, fill, packing a strided view.
//
// All three are memory-bound: each element is read and written once, and the only job of the
// kernel is to keep enough loads in flight. One thread per element in a grid-stride loop does
// that and stays correct for any n (n not a multiple of the block size, n larger than the grid).
#include "core/tensor_math.h"
#include "cuda_common.h"

namespace moe {
namespace {

// CPU twin: add_forward in src/core/tensor_math.cpp, `out[i] = a[i] + b[i]`.
template <typename T>
__global__ void add_forward_kernel(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

// Elements are moved as raw words (U = uint32_t or uint64_t): fill and copy do not care whether
// the bits are a float, a double or an int.
template <typename U>
__global__ void fill_kernel(U* out, U bits, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = bits;
}

// Element i of the packed output is element (i0, i1, ...) of the view, found by peeling the
// indices off i from the innermost dim outwards (the same row-major order as the CPU pack).
template <typename U>
__global__ void strided_copy_kernel(U* out, const U* base, StridedLayout src, int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    int64_t rest = i, off = src.offset;
    for (int d = src.nd - 1; d >= 0; --d) {
      off += (rest % src.shape[d]) * src.strides[d];
      rest /= src.shape[d];
    }
    out[i] = base[off];
  }
}

}  // namespace

template <typename T>
void add_forward_cuda(T* out, const T* a, const T* b, int64_t n) {
  CHECK(n >= 0, "add_forward_cuda: negative element count ", n);
  if (n == 0) return;  // nothing to do, and a launch with zero blocks is itself an error
  add_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, a, b, n);
  CUDA_LAUNCH_CHECK();
}
template void add_forward_cuda<float>(float*, const float*, const float*, int64_t);

void fill_bits_cuda(void* out, uint64_t bits, int elem_bytes, int64_t n) {
  if (n == 0) return;
  if (elem_bytes == 4) {
    fill_kernel<<<grid_size_for(n, kBlock), kBlock>>>(static_cast<uint32_t*>(out),
                                                      static_cast<uint32_t>(bits), n);
  } else {
    ASSERT_INTERNAL(elem_bytes == 8, "fill of ", elem_bytes, "-byte elements");
    fill_kernel<<<grid_size_for(n, kBlock), kBlock>>>(static_cast<uint64_t*>(out), bits, n);
  }
  CUDA_LAUNCH_CHECK();
}

void strided_copy_cuda(void* out, const void* base, StridedLayout src, int elem_bytes, int64_t n) {
  if (n == 0) return;
  if (elem_bytes == 4) {
    strided_copy_kernel<<<grid_size_for(n, kBlock), kBlock>>>(
        static_cast<uint32_t*>(out), static_cast<const uint32_t*>(base), src, n);
  } else {
    ASSERT_INTERNAL(elem_bytes == 8, "copy of ", elem_bytes, "-byte elements");
    strided_copy_kernel<<<grid_size_for(n, kBlock), kBlock>>>(
        static_cast<uint64_t*>(out), static_cast<const uint64_t*>(base), src, n);
  }
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
