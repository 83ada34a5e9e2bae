// softmax_xent.cu — CUDA twins of src/ops/softmax_xent.cpp: the fused softmax + cross-entropy
// loss (forward, backward) and the per-row NLL of evaluation. SPEC §3 step 10, §5 (mean token
// NLL), §6 (perplexity and priming scores).
//
// Plan: one thread block per row (a grid-stride loop over rows), threads striding over the V
// logits, so rows of any length (50k+ for GPT-2's vocabulary) work. The row max is exact in any
// order; the sum of exponentials is taken in double, as on the CPU, by the fixed tree of
// block_reduce_sum. The mean over rows is one more block that adds the per-row NLLs (double) and
// counts the kept rows, both by a fixed tree: the loss and the count never leave the device, and
// the same inputs give the same bits on every run (no atomics).
//
// Targets are not range-checked on the host (that read would stall it until the GPU catches up):
// a row whose target is outside [0, V) and is not ignore_index gets NaN for its NLL, so the mean
// loss is NaN, and a NaN gradient row.
#include <math_constants.h>

#include "core/reduce.cuh"
#include "core/tensor.h"
#include "cuda_common.h"
#include "ops/softmax_xent.h"

namespace moe {
namespace {

constexpr int kMeanThreads = 1024;  // the one block that averages the row NLLs

// Per row n: lse_n = max + log sum_v exp(l_v - max);  nll_n = lse_n - l[t_n] (0 if ignored, NaN if
// t_n is out of range). Either output of the NLL may be null (double for the loss, T for rows).
template <typename T>
__global__ void xent_rows_kernel(double* row_nll, T* nll_out, T* lse, const T* logits,
                                 const int32_t* targets, int ignore_index, int64_t N, int64_t V) {
  __shared__ float part_max[32];
  __shared__ double part_sum[32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {  // uniform per block: the syncs are safe
    const T* l = logits + n * V;  // (V,)
    // One pass over the row (it is read from memory once, not twice): each thread keeps a running
    // max and the sum of exp(l - max) in double, rescaling the sum when the max grows (online
    // softmax). The pairs are then merged in a fixed order: warps in lane order, warps in order.
    float mx = -CUDART_INF_F;
    double s = 0.0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      const float x = static_cast<float>(l[v]);
      if (x > mx) {
        s = s * exp(static_cast<double>(mx) - x) + 1.0;
        mx = x;
      } else {
        s += static_cast<double>(expf(x - mx));
      }
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    for (int off = 16; off > 0; off >>= 1) {
      const float om = __shfl_down_sync(0xffffffffu, mx, off);
      const double os = __shfl_down_sync(0xffffffffu, s, off);
      if (lane < off) {  // lane takes lane + off: a fixed tree
        const float m2 = fmaxf(mx, om);
        s = (mx == -CUDART_INF_F ? 0.0 : s * exp(static_cast<double>(mx) - m2)) +
            (om == -CUDART_INF_F ? 0.0 : os * exp(static_cast<double>(om) - m2));
        mx = m2;
      }
    }
    if (lane == 0) {
      part_max[warp] = mx;
      part_sum[warp] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float m = part_max[0];
      for (int w = 1; w < nwarps; ++w) m = fmaxf(m, part_max[w]);
      double total = 0.0;
      for (int w = 0; w < nwarps; ++w) {
        if (part_max[w] == -CUDART_INF_F) continue;  // a warp that saw no element
        total += part_sum[w] * exp(static_cast<double>(part_max[w]) - m);
      }
      const double row_lse = static_cast<double>(m) + log(total);
      if (lse) lse[n] = static_cast<T>(row_lse);
      const int32_t t = targets[n];
      double nll = 0.0;
      if (t != ignore_index)
        nll = t >= 0 && t < V ? row_lse - static_cast<double>(l[t]) : CUDART_NAN;
      if (row_nll) row_nll[n] = nll;
      if (nll_out) nll_out[n] = static_cast<T>(nll);
    }
    __syncthreads();  // the partials are rewritten by the next row
  }
}

// loss[0] = (1/count) sum_n row_nll[n] (0 when count = 0), count[0] = #{n : t_n != ignore_index}.
template <typename T>
__global__ void xent_mean_kernel(T* loss, int32_t* count, const double* row_nll,
                                 const int32_t* targets, int ignore_index, int64_t N) {
  double total = 0.0;
  int kept = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
    total += row_nll[n];
    kept += targets[n] != ignore_index ? 1 : 0;
  }
  total = block_reduce_sum(total);  // thread 0 only
  kept = block_reduce_sum(kept);
  if (threadIdx.x == 0) {
    loss[0] = static_cast<T>(kept > 0 ? total / static_cast<double>(kept) : 0.0);
    count[0] = kept;
  }
}

// forward: loss = (1/count) sum_n (lse_n - l[n, t_n]),  lse_n = log sum_v exp(l[n, v])
// backward: dlogits[n, v] = (exp(l[n, v] - lse_n) - [v == t_n]) * dloss / count, 0 for ignored rows
// dscale is formed as on the CPU: dloss / count in double, rounded once.
template <typename T>
__global__ void xent_backward_kernel(T* dlogits, const T* dloss, const int32_t* count,
                                     const T* logits, const T* lse, const int32_t* targets,
                                     int ignore_index, int64_t N, int64_t V) {
  const int32_t kept = count[0];
  const float dscale = static_cast<float>(static_cast<T>(
      kept > 0 ? static_cast<double>(dloss[0]) / static_cast<double>(kept) : 0.0));
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    T* d = dlogits + n * V;       // (V,)
    const T* l = logits + n * V;  // (V,)
    const int32_t t = targets[n];
    if (t == ignore_index || t < 0 || t >= V) {  // ignored: 0; out of range: NaN (see the top)
      const T fill = static_cast<T>(t == ignore_index ? 0.0f : CUDART_NAN_F);
      for (int64_t v = threadIdx.x; v < V; v += blockDim.x) d[v] = fill;
      continue;
    }
    const float ln = static_cast<float>(lse[n]);
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
      const float p = expf(static_cast<float>(l[v]) - ln) * dscale;
      d[v] = static_cast<T>(v == t ? p - dscale : p);
    }
  }
}

}  // namespace

template <typename T>
void softmax_xent_forward_cuda(T* loss, int32_t* count, T* lse, const T* logits,
                               const int32_t* targets, int ignore_index, int64_t N, int64_t V) {
  Tensor row_nll = Tensor::empty({N > 0 ? N : 1}, DType::F64, cuda());  // (N,) scratch
  double* rp = row_nll.data<double>(true);
  if (N > 0 && V > 0) {
    xent_rows_kernel<T><<<grid_size_for(N, 1), kBlock>>>(rp, nullptr, lse, logits, targets,
                                                         ignore_index, N, V);
    CUDA_LAUNCH_CHECK();
  }
  // always launched: with no rows it still writes loss = 0 and count = 0
  xent_mean_kernel<T><<<1, kMeanThreads>>>(loss, count, rp, targets, ignore_index, N);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void cross_entropy_rows_forward_cuda(T* nll, const T* logits, const int32_t* targets,
                                     int ignore_index, int64_t N, int64_t V) {
  if (N == 0 || V == 0) return;
  xent_rows_kernel<T><<<grid_size_for(N, 1), kBlock>>>(nullptr, nll, nullptr, logits, targets,
                                                       ignore_index, N, V);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void softmax_xent_backward_cuda(T* dlogits, const T* dloss, const int32_t* count,
                                const T* logits, const T* lse, const int32_t* targets,
                                int ignore_index, int64_t N, int64_t V) {
  if (N == 0 || V == 0) return;
  xent_backward_kernel<T><<<grid_size_for(N, 1), kBlock>>>(dlogits, dloss, count, logits, lse,
                                                           targets, ignore_index, N, V);
  CUDA_LAUNCH_CHECK();
}

template void softmax_xent_forward_cuda<float>(float*, int32_t*, float*, const float*,
                                               const int32_t*, int, int64_t, int64_t);
template void cross_entropy_rows_forward_cuda<float>(float*, const float*, const int32_t*, int,
                                                     int64_t, int64_t);
template void softmax_xent_backward_cuda<float>(float*, const float*, const int32_t*,
                                                const float*, const float*, const int32_t*, int,
                                                int64_t, int64_t);

}  // namespace moe
