// embedding.cu — CUDA twins of src/ops/embedding.cpp: the token embedding's gather (forward) and
// scatter-add (backward). SPEC §2 (token embedding, tied with the output logits).
//
// Forward: one thread per output element, out[n, c] = table[ids[n], c].
// Backward without atomics: several tokens may hit one vocabulary row, and float atomics would add
// them in a different order on every run. Instead the tokens are sorted by id with the stable
// counting sort of core/scan.cuh (keys = ids, K = V): order[offsets[v] .. offsets[v] + counts[v])
// lists the tokens of row v in increasing token position. One thread block per vocabulary row then
// sums those tokens' dout rows in that order, the order of the CPU loop, starting from 0 like the
// CPU: the result is bitwise the CPU's, on every run. Rows that no token hit get zeros.
//
// Ids are not range-checked on the host (that read would stall it until the GPU catches up): an
// id outside [0, V) gives a NaN output row, and its token adds to no row of dtable.
#include <math_constants.h>

#include "core/scan.cuh"
#include "core/tensor.h"
#include "cuda_common.h"
#include "ops/embedding.h"

namespace moe {
namespace {

template <typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* ids, const T* table, int64_t N,
                                         int64_t V, int64_t C) {
  for (int64_t i = grid_index(); i < N * C; i += grid_stride()) {
    const int64_t n = i / C, c = i - n * C;
    const int32_t id = ids[n];
    out[i] = id >= 0 && id < V ? table[static_cast<int64_t>(id) * C + c]
                               : static_cast<T>(CUDART_NAN_F);
  }
}

// order[offsets[ids[n]] + rank[n]] = n: token n's place in the stable sort by id (rank is -1 for
// an out-of-range id, which takes no place).
__global__ void token_order_kernel(int32_t* order, const int32_t* rank, const int32_t* offsets,
                                   const int32_t* ids, int64_t N) {
  for (int64_t n = grid_index(); n < N; n += grid_stride()) {
    const int32_t r = rank[n];
    if (r >= 0) order[offsets[ids[n]] + r] = static_cast<int32_t>(n);
  }
}

// forward: out[n, :] = table[ids[n], :]  =>  dtable[v, :] = sum_{n : ids[n] == v} dout[n, :],
// summed in token order (the order list is sorted by token within each row). Block v owns row v.
template <typename T>
__global__ void embedding_rows_kernel(T* dtable, const T* dout, const int32_t* order,
                                      const int32_t* counts, const int32_t* offsets, int64_t V,
                                      int64_t C) {
  for (int64_t v = blockIdx.x; v < V; v += gridDim.x) {
    const int64_t first = offsets[v], last = first + counts[v];
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float acc = 0.0f;
      for (int64_t k = first; k < last; ++k)
        acc += static_cast<float>(dout[static_cast<int64_t>(order[k]) * C + c]);
      dtable[v * C + c] = static_cast<T>(acc);
    }
  }
}

}  // namespace

template <typename T>
void embedding_forward_cuda(T* out, const int32_t* ids, const T* table, int64_t N, int64_t V,
                            int64_t C) {
  if (N == 0 || C == 0) return;
  embedding_forward_kernel<<<grid_size_for(N * C, kBlock), kBlock>>>(out, ids, table, N, V, C);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void embedding_backward_cuda(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t V,
                             int64_t C) {
  if (V == 0 || C == 0) return;
  // rank (N), order (N), counts (V), offsets (V); the sort runs even for N == 0 (counts = 0)
  Tensor scratch = Tensor::empty({2 * N + 2 * V}, DType::I32, cuda());
  int32_t* rank = scratch.data<int32_t>(true);
  int32_t* order = rank + N;
  int32_t* counts = order + N;
  int32_t* offsets = counts + V;
  stable_rank_by_key_cuda(rank, counts, offsets, ids, N, V);
  if (N > 0) {
    token_order_kernel<<<grid_size_for(N, kBlock), kBlock>>>(order, rank, offsets, ids, N);
    CUDA_LAUNCH_CHECK();
  }
  embedding_rows_kernel<<<grid_size_for(V, 1), kBlock>>>(dtable, dout, order, counts, offsets, V,
                                                          C);
  CUDA_LAUNCH_CHECK();
}

template void embedding_forward_cuda<float>(float*, const int32_t*, const float*, int64_t,
                                            int64_t, int64_t);
template void embedding_backward_cuda<float>(float*, const float*, const int32_t*, int64_t,
                                             int64_t, int64_t);

}  // namespace moe
