// adamw.cu — AdamW over every parameter in one launch (optim/adamw.h; SPEC §5).
//
// Launch overhead, not arithmetic, is what a per-tensor optimizer loop costs on a GPU: a 125M
// model has ~150 parameter tensors, many of them tiny (biases, layer norms). So the pointers of
// all tensors travel in one table passed *by value* as the kernel's argument (up to kMaxTensors
// per launch; kernel arguments may be ~32 KB on sm_70+ with CUDA 12.1 or later), and the grid is
// laid over all of them: each tensor gets ceil(n / kPiece) blocks, block b finds its tensor by a
// binary search over the blocks' starting numbers.
//
// The gradient norm uses the same block layout: block b writes the sum of squares of its piece
// (in double) to partial[b], and one more block adds the partials in index order. The pieces
// depend only on the tensor sizes, so the norm is the same bits on every run (notes/cuda.md §7).
// The update kernel reads the norm (and the guard, the loss) from device memory and decides
// there whether the step is finite: the host never waits.
#include <algorithm>
#include <vector>

#include "core/reduce.cuh"
#include "core/tensor.h"
#include "cuda_common.h"
#include "optim/adamw.h"

namespace moe {
namespace {

constexpr int kMaxTensors = 320;
constexpr int64_t kPiece = 8192;  // elements per block
constexpr int kThreads = 256;

struct TensorTable {
  int count = 0;
  AdamWTensor t[kMaxTensors];
  int64_t block_begin[kMaxTensors + 1];  // tensor k owns blocks [block_begin[k], block_begin[k+1])
};

__device__ int find_tensor(const TensorTable& tab, int64_t block) {
  int lo = 0, hi = tab.count - 1;  // the last k with block_begin[k] <= block
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (tab.block_begin[mid] <= block) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__global__ void sumsq_kernel(double* partial, const __grid_constant__ TensorTable tab) {
  const int k = find_tensor(tab, blockIdx.x);
  const AdamWTensor& t = tab.t[k];
  const int64_t lo = (blockIdx.x - tab.block_begin[k]) * kPiece;
  const int64_t hi = lo + kPiece < t.n ? lo + kPiece : t.n;
  double acc = 0.0;
  if (t.g != nullptr)
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x)
      acc += static_cast<double>(t.g[i]) * t.g[i];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void norm_finish_kernel(float* norm, const double* partial, int64_t n) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) *norm = static_cast<float>(sqrt(acc));
}

// CPU twin: adamw_update in src/optim/adamw.cpp (the same formula, element by element).
__global__ void update_kernel(const __grid_constant__ TensorTable tab, AdamWStepArgs a,
                              const float* norm, const float* guard, int32_t* bad_step) {
  const float nv = *norm;
  const bool finite = isfinite(nv) && (guard == nullptr || isfinite(*guard));
  if (!finite || *bad_step != 0) {
    if (!finite && blockIdx.x == 0 && threadIdx.x == 0 && *bad_step == 0) *bad_step = a.step;
    return;
  }
  const float cc = (a.clip > 0.0f && nv > a.clip) ? a.clip / nv : 1.0f;
  const int k = find_tensor(tab, blockIdx.x);
  const AdamWTensor& t = tab.t[k];
  const int64_t lo = (blockIdx.x - tab.block_begin[k]) * kPiece;
  const int64_t hi = lo + kPiece < t.n ? lo + kPiece : t.n;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    if (t.g == nullptr) {  // unused this step: decay only
      t.p[i] *= t.decay;
      continue;
    }
    const float gi = t.g[i] * cc;
    const float m = a.beta1 * t.m[i] + (1 - a.beta1) * gi;
    const float v = a.beta2 * t.v[i] + (1 - a.beta2) * gi * gi;
    t.m[i] = m;
    t.v[i] = v;
    t.p[i] = t.p[i] * t.decay - t.step_size * m / (sqrtf(v) * a.inv_sqrt_bc2 + a.eps);
  }
}

// Cuts the tensor list into tables of at most kMaxTensors and numbers their blocks.
std::vector<TensorTable> make_tables(const AdamWTensor* ts, int64_t count, int64_t* total) {
  std::vector<TensorTable> tables;
  *total = 0;
  for (int64_t k0 = 0; k0 < count; k0 += kMaxTensors) {
    TensorTable tab;
    tab.count = static_cast<int>(std::min<int64_t>(kMaxTensors, count - k0));
    int64_t b = 0;
    for (int k = 0; k < tab.count; ++k) {
      tab.t[k] = ts[k0 + k];
      tab.block_begin[k] = b;
      b += std::max<int64_t>(1, (tab.t[k].n + kPiece - 1) / kPiece);
    }
    tab.block_begin[tab.count] = b;
    *total += b;
    tables.push_back(tab);
  }
  return tables;
}

}  // namespace

void adamw_grad_norm_cuda(float* norm, const AdamWTensor* ts, int64_t count) {
  int64_t total = 0;
  std::vector<TensorTable> tables = make_tables(ts, count, &total);
  Tensor partial = Tensor::zeros({std::max<int64_t>(total, 1)}, DType::F64, cuda());
  double* pp = partial.data<double>(true);
  int64_t offset = 0;
  for (const TensorTable& tab : tables) {
    const int64_t blocks = tab.block_begin[tab.count];
    sumsq_kernel<<<static_cast<unsigned>(blocks), kThreads>>>(pp + offset, tab);
    CUDA_LAUNCH_CHECK();
    offset += blocks;
  }
  norm_finish_kernel<<<1, 1024>>>(norm, pp, std::max<int64_t>(total, 1));
  CUDA_LAUNCH_CHECK();
}

void adamw_update_cuda(const AdamWTensor* ts, int64_t count, AdamWStepArgs args,
                       const float* norm, const float* guard, int32_t* bad_step) {
  int64_t total = 0;
  for (const TensorTable& tab : make_tables(ts, count, &total)) {
    update_kernel<<<static_cast<unsigned>(tab.block_begin[tab.count]), kThreads>>>(
        tab, args, norm, guard, bad_step);
    CUDA_LAUNCH_CHECK();
  }
}

}  // namespace moe
