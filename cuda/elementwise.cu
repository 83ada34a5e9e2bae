// elementwise.cu — CUDA kernels of the elementwise glue ops (see elementwise_cuda.h for the
// conventions; the CPU functions they mirror are in src/ops/elementwise.cpp).
//
// These ops read two floats and write one per element, so they are limited by memory bandwidth,
// not arithmetic: the kernel's only job is to keep enough loads in flight. One thread per element
// in a grid-stride loop does that and stays correct for any n, including n that is not a multiple
// of the block size and n larger than the grid. Wider loads (float4) are an optimisation to make
// only with a benchmark showing it pays (notes/benchmarks.md).
#include "cuda_common.h"
#include "elementwise_cuda.h"

namespace moe {
namespace {

constexpr int kBlock = 256;  // threads per block: a multiple of the 32-thread warp

// CPU twin: `for (i = 0; i < n; ++i) out[i] = a[i] + b[i];`. Thread t handles elements
// t, t + stride, t + 2*stride, ... where stride is the number of threads in the grid.
__global__ void add_forward_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = a[i] + b[i];
  }
}

}  // namespace

void add_forward_cuda(float* out, const float* a, const float* b, int64_t n) {
  CHECK(n >= 0, "add_forward_cuda: negative element count ", n);
  if (n == 0) return;  // nothing to do, and a launch with zero blocks is itself an error
  add_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, a, b, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
