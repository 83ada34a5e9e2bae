// expert_counts.cu — count_experts_cuda of moe_common.cuh: how many assignments chose each
// expert, without atomics. Feeds the aux loss's top-1 fractions ce (SPEC §3 step 6) and the
// kept-per-expert routing statistics (SPEC §3, last line).
#include "core/tensor.h"
#include "moe/moe_common.cuh"

namespace moe {
namespace {

constexpr int kCountChunk = 1024;   // items counted by one block of pass 1
constexpr int kCountThreads = 256;  // experts counted by one block of pass 1 (one per thread)

// Pass 1, block (chunk c, expert group g): the chunk's keys go to shared memory, -1 where the item
// does not count (masked out, or past n); thread t then counts expert g * 256 + t among them,
// reading four keys per step (int4). partial (chunks, E).
__global__ void count_chunk_kernel(int32_t* partial, const int32_t* keys, int64_t key_stride,
                                   const int32_t* mask, int64_t mask_stride, int64_t n,
                                   int64_t E) {
  __shared__ int4 shared4[kCountChunk / 4];
  int32_t* shared = reinterpret_cast<int32_t*>(shared4);
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kCountChunk;
  for (int j = threadIdx.x; j < kCountChunk; j += blockDim.x) {
    const int64_t a = first + j;
    int32_t key = -1;
    if (a < n && (mask == nullptr || mask[a * mask_stride] != 0)) key = keys[a * key_stride];
    shared[j] = key;
  }
  __syncthreads();
  const int64_t e = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (e >= E) return;
  const int32_t me = static_cast<int32_t>(e);
  int32_t count = 0;
  for (int j = 0; j < kCountChunk / 4; ++j) {
    const int4 q = shared4[j];
    count += (q.x == me) + (q.y == me) + (q.z == me) + (q.w == me);
  }
  partial[static_cast<int64_t>(blockIdx.x) * E + e] = count;
}

// Pass 2: counts[e] = sum over chunks of partial[c, e], chunks in order.
__global__ void count_finish_kernel(int32_t* counts, const int32_t* partial, int64_t chunks,
                                    int64_t E) {
  for (int64_t e = grid_index(); e < E; e += grid_stride()) {
    int32_t total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += partial[c * E + e];
    counts[e] = total;
  }
}

}  // namespace

void count_experts_cuda(int32_t* counts, const int32_t* keys, int64_t key_stride,
                        const int32_t* mask, int64_t mask_stride, int64_t n, int64_t E) {
  CHECK(n >= 0 && E >= 1 && key_stride >= 1 && mask_stride >= 1, "count_experts_cuda: n = ", n,
        ", E = ", E, ", key stride = ", key_stride, ", mask stride = ", mask_stride);
  CHECK(E <= int64_t{kCountThreads} * 65535, "count_experts_cuda: too many experts, E = ", E);
  const int64_t chunks = n == 0 ? 1 : (n + kCountChunk - 1) / kCountChunk;
  CHECK(chunks < (int64_t{1} << 31), "count_experts_cuda: too many items, n = ", n);
  Tensor partial = Tensor::empty({chunks, E}, DType::I32, cuda());  // (chunks, E)
  int32_t* pp = partial.data<int32_t>(true);
  const dim3 grid(static_cast<unsigned>(chunks),
                  static_cast<unsigned>((E + kCountThreads - 1) / kCountThreads));
  count_chunk_kernel<<<grid, kCountThreads>>>(pp, keys, key_stride, mask, mask_stride, n, E);
  CUDA_LAUNCH_CHECK();
  count_finish_kernel<<<grid_size_for(E, kBlock), kBlock>>>(counts, pp, chunks, E);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
