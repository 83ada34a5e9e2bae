// scan.cu — the stable counting sort of scan.cuh.
#include "core/tensor.h"
#include "cuda_common.h"
#include "scan.cuh"

namespace moe {
namespace {

// Pass 1. Thread i of chunk c holds item s = c*kScanChunk + i. It compares its key with every
// other key of the chunk (read from shared memory; all threads read the same j at once, a
// broadcast) to find its rank among earlier items and whether it is the last of its key.
__global__ void chunk_rank_kernel(int32_t* rank, int32_t* chunk_counts, const int32_t* keys,
                                  int64_t N, int64_t K) {
  __shared__ int32_t sk[kScanChunk];
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kScanChunk;
  const int n = static_cast<int>(N - first < kScanChunk ? N - first : kScanChunk);
  const int i = threadIdx.x;
  if (i < n) sk[i] = keys[first + i];
  __syncthreads();
  if (i >= n) return;
  const int32_t key = sk[i];
  if (key < 0 || key >= K) {  // not taking part (an out-of-range key is the caller's to report)
    rank[first + i] = -1;
    return;
  }
  int before = 0;
  bool last = true;
  for (int j = 0; j < n; ++j) {
    if (sk[j] != key) continue;
    if (j < i) ++before;
    if (j > i) last = false;
  }
  rank[first + i] = before;
  if (last) chunk_counts[static_cast<int64_t>(blockIdx.x) * K + key] = before + 1;
}

// Pass 2. One thread per key walks the chunks in order: exclusive prefix in place, total out.
__global__ void chunk_prefix_kernel(int32_t* counts, int32_t* chunk_counts, int64_t chunks,
                                    int64_t K) {
  for (int64_t k = grid_index(); k < K; k += grid_stride()) {
    int32_t run = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      const int32_t v = chunk_counts[c * K + k];
      chunk_counts[c * K + k] = run;
      run += v;
    }
    counts[k] = run;
  }
}

// Pass 3. rank += the number of items with the same key in earlier chunks.
__global__ void add_prefix_kernel(int32_t* rank, const int32_t* chunk_prefix, const int32_t* keys,
                                  int64_t N, int64_t K) {
  for (int64_t s = grid_index(); s < N; s += grid_stride()) {
    const int32_t key = keys[s];
    if (key >= 0 && key < K) rank[s] += chunk_prefix[(s / kScanChunk) * K + key];
  }
}

// offsets = exclusive scan of counts, one block of 1024 threads: thread t sums a contiguous
// segment, the block scans the 1024 segment sums (Hillis-Steele in shared memory), then each
// thread writes its segment's offsets.
__global__ void exclusive_scan_kernel(int32_t* offsets, const int32_t* counts, int64_t K) {
  __shared__ int32_t seg[1024];
  const int t = threadIdx.x;
  const int64_t per = (K + 1023) / 1024;
  const int64_t lo = t * per, hi = lo + per < K ? lo + per : K;
  int32_t total = 0;
  for (int64_t k = lo; k < hi; ++k) total += counts[k];
  seg[t] = total;
  __syncthreads();
  for (int off = 1; off < 1024; off <<= 1) {
    const int32_t add = t >= off ? seg[t - off] : 0;
    __syncthreads();
    seg[t] += add;
    __syncthreads();
  }
  int32_t run = seg[t] - total;  // inclusive -> exclusive
  for (int64_t k = lo; k < hi; ++k) {
    offsets[k] = run;
    run += counts[k];
  }
}

}  // namespace

void stable_rank_by_key_cuda(int32_t* rank, int32_t* counts, int32_t* offsets,
                             const int32_t* keys, int64_t N, int64_t K) {
  CHECK(N >= 0 && K >= 1, "stable_rank_by_key_cuda: N = ", N, ", K = ", K);
  CHECK(N < (int64_t{1} << 31), "stable_rank_by_key_cuda: ", N, " items do not fit int32 ranks");
  const int64_t chunks = N == 0 ? 1 : (N + kScanChunk - 1) / kScanChunk;
  Tensor table = Tensor::zeros({chunks, K}, DType::I32, cuda());  // (chunks, K)
  int32_t* tp = table.data<int32_t>(true);
  if (N > 0) {
    chunk_rank_kernel<<<static_cast<unsigned>(chunks), kScanChunk>>>(rank, tp, keys, N, K);
    CUDA_LAUNCH_CHECK();
  }
  chunk_prefix_kernel<<<grid_size_for(K, kBlock), kBlock>>>(counts, tp, chunks, K);
  CUDA_LAUNCH_CHECK();
  if (N > 0) {
    add_prefix_kernel<<<grid_size_for(N, kBlock), kBlock>>>(rank, tp, keys, N, K);
    CUDA_LAUNCH_CHECK();
  }
  if (offsets != nullptr) {
    exclusive_scan_kernel<<<1, 1024>>>(offsets, counts, K);
    CUDA_LAUNCH_CHECK();
  }
}

}  // namespace moe
