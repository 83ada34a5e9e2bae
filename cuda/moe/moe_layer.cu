// moe_layer.cu — CUDA side of src/moe/moe_layer.cpp: the routing statistics of one MoE forward
// (SPEC §3, last line: tokens per expert, fraction dropped, router entropy, l_aux), written into
// the small raw-stats tensor of moe_layer.h (MoEStatField) on the device.
//
// It runs on every forward, so it must be cheap and must not wait for the GPU: four small
// launches, no copy to the host. The trainer reads the tensor back only at logging steps.
//   1. entropy partials: blocks of 16384 entries of P, -p log p summed in double by a fixed tree
//      (rows of padding tokens, loc[s, 0] == -1, left out);
//   2. kept assignments per expert: count_experts_cuda over the 2N assignments, masked by kept;
//   3. (inside 2) the chunk counts added in order;
//   4. one block of 1024 threads: the per-token counts (made, dropped, lost both) and the entropy
//      partials by fixed-order block reductions, then every field written.
// All sums are of integers (exact) or in double in an order fixed by the sizes, so the same
// routing gives the same bits on every run.
#include "core/reduce.cuh"
#include "core/tensor.h"
#include "moe/moe_common.cuh"
#include "moe/moe_layer.h"

namespace moe {
namespace {

constexpr int64_t kEntropyItems = 16384;  // entries of P per block of the entropy pass
constexpr int kFinishThreads = 1024;

// partial[b] = sum over entries i of block b of -P_i log P_i (0 log 0 = 0), in double, over the
// rows of real tokens only (a padding token's top-1 has loc -1: gate.h, Routing::loc).
__global__ void entropy_partials_kernel(double* partial, const float* probs, const int32_t* loc,
                                        int64_t n, int64_t E) {
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kEntropyItems;
  const int64_t end = begin + kEntropyItems < n ? begin + kEntropyItems : n;
  double h = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    if (loc[(i / E) * 2] < 0) continue;  // padding
    const double v = static_cast<double>(probs[i]);
    if (v > 0.0) h -= v * log(v);
  }
  h = block_reduce_sum(h);
  if (threadIdx.x == 0) partial[blockIdx.x] = h;
}

// One block. Counts per token as the CPU's routing_stats_cpu: an assignment is made when its
// loc >= 0 (RANDOM may skip a second choice, padding makes none), dropped when made and not kept;
// a real token (top-1 made) lost both when neither assignment is kept.
__global__ void routing_stats_finish_kernel(float* raw, const double* entropy_partial,
                                            int64_t pieces, const int32_t* loc,
                                            const int32_t* kept, const int32_t* kept_per_expert,
                                            const float* l_aux, int64_t N, int64_t E) {
  double made1 = 0, made2 = 0, dropped1 = 0, dropped2 = 0, lost_both = 0, entropy = 0;
  for (int64_t s = threadIdx.x; s < N; s += blockDim.x) {
    const bool m1 = loc[s * 2] >= 0, m2 = loc[s * 2 + 1] >= 0;
    const bool k1 = kept[s * 2] != 0, k2 = kept[s * 2 + 1] != 0;
    made1 += m1;
    made2 += m2;
    dropped1 += m1 && !k1;
    dropped2 += m2 && !k2;
    lost_both += m1 && !k1 && !k2;
  }
  for (int64_t p = threadIdx.x; p < pieces; p += blockDim.x) entropy += entropy_partial[p];
  made1 = block_reduce_sum(made1);
  made2 = block_reduce_sum(made2);
  dropped1 = block_reduce_sum(dropped1);
  dropped2 = block_reduce_sum(dropped2);
  lost_both = block_reduce_sum(lost_both);
  entropy = block_reduce_sum(entropy);
  if (threadIdx.x == 0) {
    raw[kStatMade1] = static_cast<float>(made1);
    raw[kStatMade2] = static_cast<float>(made2);
    raw[kStatDropped1] = static_cast<float>(dropped1);
    raw[kStatDropped2] = static_cast<float>(dropped2);
    raw[kStatLostBoth] = static_cast<float>(lost_both);
    raw[kStatEntropySum] = static_cast<float>(entropy);
    raw[kStatLAux] = l_aux != nullptr ? l_aux[0] : 0.0f;
  }
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x)
    raw[kMoEStatFields + e] = static_cast<float>(kept_per_expert[e]);
}

}  // namespace

void moe_routing_stats_cuda(float* raw, const float* probs, const int32_t* expert,
                            const int32_t* loc, const int32_t* kept, const float* l_aux,
                            int64_t N, int64_t E) {
  const int64_t n = N * E;
  const int64_t pieces = (n + kEntropyItems - 1) / kEntropyItems;  // 0 when there is no token
  CHECK(pieces < (int64_t{1} << 31), "moe_routing_stats: ", n, " probabilities are too many");
  // scratch: entropy partials (pieces, at least 1 so the tensor is never empty), kept per expert
  Tensor partial = Tensor::empty({pieces > 0 ? pieces : 1}, DType::F64, cuda());
  Tensor counts = Tensor::empty({E}, DType::I32, cuda());
  double* pp = partial.data<double>(true);
  int32_t* cp = counts.data<int32_t>(true);
  if (pieces > 0) {
    entropy_partials_kernel<<<static_cast<unsigned>(pieces), kBlock>>>(pp, probs, loc, n, E);
    CUDA_LAUNCH_CHECK();
  }
  count_experts_cuda(cp, expert, 1, kept, 1, 2 * N, E);  // kept assignments per expert
  routing_stats_finish_kernel<<<1, kFinishThreads>>>(raw, pp, pieces, loc, kept, cp, l_aux, N, E);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
