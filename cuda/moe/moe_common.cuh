// moe_common.cuh — what the MoE kernels of cuda/moe/ share: warp-per-row loops, warp reductions
// with a fixed order, and a deterministic count of assignments per expert (SPEC §3 steps 5-6 and
// the routing statistics of §3's last line).
//
// Warp per row. The router's rows (N, E) are short (E = 2 .. 512) and there are many of them, so
// one warp (32 threads) takes one row and loops over its E entries with a stride of 32. A block of
// 256 threads holds 8 rows; the row loop is grid-stride, so any N works. Every lane of a warp
// works on the same row, so the loop condition is the same for all 32 lanes, which the
// __shfl_xor_sync reductions below need (all lanes must take part).
//
// Butterfly reductions. warp_sum adds lanes i and i^16, then i^8, ... : a fixed tree, so the
// same inputs give the same bits on every run. Float addition is commutative, so lanes i and
// i^off add the same two numbers at every level and all 32 lanes end with the same sum.
//
// Counting per expert without atomics (count_experts_cuda): how many assignments chose expert e.
// Integer atomics would also give a run-independent answer, but the project keeps one rule for
// every reduction (no atomics, notes/cuda.md) and this is cheap: items go in chunks of 1024 into
// shared memory, thread e of a block counts its expert in the chunk (all threads read the same
// word at once: a broadcast), then one thread per expert adds the chunk counts in order.
#pragma once
#include <cstdint>

#include "cuda_common.h"

namespace moe {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = kBlock / kWarp;  // rows of a warp-per-row kernel in one block

#ifdef __CUDACC__
__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x) % kWarp; }

// The row of this warp and the stride of the grid-stride loop over rows.
__device__ __forceinline__ int64_t warp_row() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
}
__device__ __forceinline__ int64_t warp_row_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x / kWarp;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = kWarp / 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int off = kWarp / 2; off > 0; off >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
#endif

// Blocks for a warp-per-row kernel over `rows` rows (at least 1; the loop inside is grid-stride).
inline int row_blocks(int64_t rows) { return grid_size_for(rows > 0 ? rows : 1, kRowsPerBlock); }

// counts[e] = #{ a in [0, n) : keys[a * key_stride] == e and
//                               (mask == null or mask[a * mask_stride] != 0) }
// for e in [0, E). Keys outside [0, E) count nowhere. Device pointers; exact and the same on every
// run (integer counts, fixed order, no atomics). Used with keys = routing.expert: key stride 2
// with the (N) token mask at stride 1 counts real tokens' top-1 choices (the aux loss's ce), key
// and mask stride 1 with mask = routing.kept counts kept assignments.
void count_experts_cuda(int32_t* counts, const int32_t* keys, int64_t key_stride,
                        const int32_t* mask, int64_t mask_stride, int64_t n, int64_t E);

}  // namespace moe
