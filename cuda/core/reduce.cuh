// reduce.cuh — deterministic sums on the GPU, shared by every kernel that reduces (bias and
// layernorm gradients, the loss, the router's mean probabilities, gradient norms).
//
// Why not atomicAdd: float addition is not associative, and the order in which atomics land
// changes from run to run, so a sum built from float atomics changes in its last bits between two
// runs with the same seed. These reductions fix the order instead: the work is cut into pieces
// whose boundaries depend only on the sizes (never on the GPU or on timing), each piece is summed
// by a fixed tree, and the pieces are added in index order by a second, tiny pass. Same inputs,
// same bits, on every run (notes/cuda.md §7).
#pragma once
#include <cstdint>

#include "cuda_common.h"

namespace moe {

#ifdef __CUDACC__
// Sum of v over the block, returned to thread 0 (others get garbage). blockDim.x must be a
// multiple of 32 and at most 1024. A fixed tree: butterfly inside each warp, then warp 0 adds
// the per-warp results in warp order.
template <typename Acc>
__device__ Acc block_reduce_sum(Acc v) {
  __shared__ Acc warp_sums[32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // warp_sums may still be read by a previous call in the same kernel
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / 32;
  v = lane < nwarps ? warp_sums[lane] : Acc(0);
  if (warp == 0)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Maximum of v over the block, returned to *every* thread (a row softmax needs it everywhere).
// Max is exact in any order, so this one needs no care about order; it is here so that kernels
// share one version.
template <typename Acc>
__device__ Acc block_reduce_max(Acc v) {
  __shared__ Acc warp_max[32];
  for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) warp_max[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / 32;
  v = lane < nwarps ? warp_max[lane] : warp_max[0];
  for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// Sum of v over the block, returned to every thread (thread 0's block_reduce_sum, broadcast).
template <typename Acc>
__device__ Acc block_reduce_sum_all(Acc v) {
  __shared__ Acc total;
  v = block_reduce_sum(v);
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  const Acc out = total;
  __syncthreads();  // total may be overwritten by the next call
  return out;
}
#endif

// out[c] = sum over r of in[r * C + c]   (R, C) -> (C,), summed in Acc, rows in blocks of a fixed
// size, blocks added in order. If accumulate, out[c] += that sum instead. T = float.
template <typename T>
void column_sums_cuda(T* out, const T* in, int64_t R, int64_t C, bool accumulate = false);

// out[0] = scale * sum of in[0..n) (summed in double, in a fixed order). T = float.
template <typename T>
void sum_all_cuda(T* out, const T* in, int64_t n, double scale = 1.0);

}  // namespace moe
