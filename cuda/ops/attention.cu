// attention.cu — CUDA twins of src/ops/attention.cpp: dense causal multi-head self-attention with
// dropout on the probabilities (SPEC §2), forward and backward, f32.
//
// Plan. In qkv (B, T, 3C) the (T, hs) matrix of one head has row stride 3C, and the heads of one
// sequence sit hs apart while sequences sit T*3C apart: no single stride walks all B*NH heads.
// So a kernel first copies q, k, v into one buffer (3, B*NH, T, hs) where every head's matrix is
// contiguous and head i starts at i*T*hs; then each of the four products of the forward and the
// five of the backward is ONE strided-batched cuBLAS call over the B*NH heads (gemm_batched_cuda,
// f32 accumulate, deterministic). Row kernels do the rest:
//   forward   S = q k^T / sqrt(hs)  (written straight into P), causal softmax of each row in
//             place, Pd = P * M (only with dropout), out_h = Pd v, heads merged into (B, T, C);
//   backward  Pd again (only with dropout), dv = Pd^T dout, dPd = dout v^T, then per row
//             dP = dPd * M and dS = P * (dP - <P, dP>) in place, dq = dS k / sqrt(hs),
//             dk = dS^T q / sqrt(hs), and the three scattered back into dqkv (B, T, 3C).
// The dropout mask is never stored: entry (b, h, t, u) is dropout_factor(m, ((b*NH + h)*T + t)*T
// + u), the same Philox value the CPU uses (ops/activation.h), recomputed where it is needed.
//
// Rows of any length: a softmax row is handled by one block whose threads stride over it, with the
// max and the sum taken by the fixed-order block reductions of core/reduce.cuh (no float atomics,
// same bits every run). Nothing here synchronises with the host; scratch buffers come from the
// caching allocator and are reused safely on the one default stream (notes/cuda.md §2).
#include <algorithm>
#include <cmath>

#include "core/reduce.cuh"
#include "core/tensor.h"
#include "cuda_common.h"
#include "ops/attention.h"
#include "ops/gemm.h"

namespace moe {
namespace {

// ---- head layout -------------------------------------------------------------------------------

// Element (b, t, part*C + h*hs + d) of a (B, T, parts*C) tensor lives at
// (((part*B + b)*NH + h)*T + t)*hs + d of the per-head (parts, B*NH, T, hs) buffer.
struct HeadLayout {
  int64_t B, T, C, NH, hs, parts;
  __device__ int64_t head_index(int64_t i) const {  // i: index into the (B, T, parts*C) tensor
    const int64_t width = parts * C;
    const int64_t col = i % width, bt = i / width;
    const int64_t b = bt / T, t = bt % T;
    const int64_t part = col / C, h = (col % C) / hs, d = col % hs;
    return (((part * B + b) * NH + h) * T + t) * hs + d;
  }
  __host__ __device__ int64_t numel() const { return B * T * parts * C; }
};

// heads (parts, B*NH, T, hs) <- x (B, T, parts*C). Reads are coalesced; writes come in runs of hs.
__global__ void split_heads_kernel(float* heads, const float* x, HeadLayout L) {
  const int64_t n = L.numel();
  for (int64_t i = grid_index(); i < n; i += grid_stride()) heads[L.head_index(i)] = x[i];
}

// x (B, T, parts*C) <- heads (parts, B*NH, T, hs): the inverse permutation.
__global__ void merge_heads_kernel(float* x, const float* heads, HeadLayout L) {
  const int64_t n = L.numel();
  for (int64_t i = grid_index(); i < n; i += grid_stride()) x[i] = heads[L.head_index(i)];
}

void split_heads(float* heads, const float* x, const HeadLayout& L) {
  split_heads_kernel<<<grid_size_for(L.numel(), kBlock), kBlock>>>(heads, x, L);
  CUDA_LAUNCH_CHECK();
}

void merge_heads(float* x, const float* heads, const HeadLayout& L) {
  merge_heads_kernel<<<grid_size_for(L.numel(), kBlock), kBlock>>>(x, heads, L);
  CUDA_LAUNCH_CHECK();
}

// ---- row kernels -------------------------------------------------------------------------------
// A "row" is (b, h, t): row r = (b*NH + h)*T + t covers P[r*T .. r*T + T), of which only u <= t
// (t = r % T) is causal. Element (r, u) is value r*T + u of the dropout draw. Each block takes
// rows r = blockIdx.x, blockIdx.x + gridDim.x, ...; the loop bound is the same for every thread
// of a block, so the block reductions' barriers are reached by all of them.

// In place: scores in, causal softmax out (0 for u > t). With dropout, also Pd = P * M.
__global__ void causal_softmax_kernel(float* P, float* Pd, DropoutMask m, int64_t rows,
                                      int64_t T) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = r % T;
    float* p = P + r * T;
    float mx = -INFINITY;
    for (int64_t u = threadIdx.x; u <= t; u += blockDim.x) mx = fmaxf(mx, p[u]);
    mx = block_reduce_max(mx);
    float sum = 0.0f;
    for (int64_t u = threadIdx.x; u <= t; u += blockDim.x) {
      const float e = expf(p[u] - mx);  // stable: every term <= 1
      p[u] = e;
      sum += e;
    }
    const float inv = 1.0f / block_reduce_sum_all(sum);
    // Each thread rescales only the entries it wrote above, so no barrier is needed in between.
    for (int64_t u = threadIdx.x; u < T; u += blockDim.x) {
      const float v = u <= t ? p[u] * inv : 0.0f;
      p[u] = v;
      if (Pd) Pd[r * T + u] = u <= t ? v * dropout_factor<float>(m, r * T + u) : 0.0f;
    }
  }
}

// In place: dPd in, dS out. dP = dPd * M (with dropout), dS = P * (dP - <P, dP>), 0 for u > t.
__global__ void causal_softmax_backward_kernel(float* dP, const float* P, DropoutMask m,
                                               bool dropout, int64_t rows, int64_t T) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = r % T;
    float* d = dP + r * T;
    const float* p = P + r * T;
    float dot = 0.0f;
    for (int64_t u = threadIdx.x; u <= t; u += blockDim.x) {
      float g = d[u];
      if (dropout) {
        g *= dropout_factor<float>(m, r * T + u);
        d[u] = g;  // kept for the second pass, which reads only this thread's entries
      }
      dot += p[u] * g;
    }
    dot = block_reduce_sum_all(dot);
    for (int64_t u = threadIdx.x; u < T; u += blockDim.x)
      d[u] = u <= t ? p[u] * (d[u] - dot) : 0.0f;
  }
}

// Pd = P * M over whole (rows, T) blocks (the backward's recomputation of the forward's Pd).
__global__ void apply_dropout_kernel(float* Pd, const float* P, DropoutMask m, int64_t rows,
                                     int64_t T) {
  const int64_t n = rows * T;
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t u = i % T, t = (i / T) % T;
    Pd[i] = u <= t ? P[i] * dropout_factor<float>(m, i) : 0.0f;
  }
}

// Threads per row block: a whole number of warps, about one per element for short rows, at most
// 256 (longer rows are strided over).
int row_block(int64_t T) {
  const int64_t warps = std::min<int64_t>(8, std::max<int64_t>(1, (T + 31) / 32));
  return static_cast<int>(warps * 32);
}

int row_grid(int64_t rows) { return static_cast<int>(std::min<int64_t>(rows, int64_t(1) << 20)); }

float attention_scale(int64_t hs) {  // 1/sqrt(hs), rounded like the CPU's
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(hs)));
}

// One product per head over all B*NH heads: C_i (M, N) = alpha op(A_i) op(B_i), every matrix
// contiguous (its row stride is its width), head i of each starting at i * its size.
void per_head(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              const float* Bm, float* C, int64_t heads) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  gemm_batched_cuda<float>(ta, tb, M, N, K, alpha, A, lda, Bm, ldb, 0.0f, C, N, heads, M * K,
                           K * N, M * N);
}

}  // namespace

// ---- launchers ---------------------------------------------------------------------------------

template <typename F>
void attention_forward_cuda(F* out, F* P, const F* qkv, const DropoutMask* mask, int64_t B,
                            int64_t T, int64_t C, int64_t NH) {
  static_assert(sizeof(F) == 4, "attention_forward_cuda is instantiated for float only");
  if (B == 0 || T == 0 || C == 0) return;
  const int64_t hs = C / NH, BNH = B * NH, rows = BNH * T, head = T * hs;
  Tensor qkvh = Tensor::empty({3, BNH, T, hs}, DType::F32, cuda());  // q, k, v per head
  Tensor outh = Tensor::empty({BNH, T, hs}, DType::F32, cuda());
  Tensor pd = mask ? Tensor::empty({BNH, T, T}, DType::F32, cuda()) : Tensor();  // P * M
  float* q = qkvh.data<float>(true);
  const float *k = q + BNH * head, *v = k + BNH * head;
  float* pdp = mask ? pd.data<float>(true) : nullptr;
  split_heads(q, qkv, HeadLayout{B, T, C, NH, hs, 3});
  per_head(false, true, T, T, hs, attention_scale(hs), q, k, P, BNH);  // S = q k^T / sqrt(hs)
  causal_softmax_kernel<<<row_grid(rows), row_block(T)>>>(P, pdp, mask ? *mask : DropoutMask{},
                                                         rows, T);
  CUDA_LAUNCH_CHECK();
  float* oh = outh.data<float>(true);
  per_head(false, false, T, hs, T, 1.0f, mask ? pdp : P, v, oh, BNH);  // out_h = Pd v
  merge_heads(out, oh, HeadLayout{B, T, C, NH, hs, 1});
}

template <typename F>
void attention_backward_cuda(F* dqkv, const F* dout, const F* qkv, const F* P,
                             const DropoutMask* mask, int64_t B, int64_t T, int64_t C,
                             int64_t NH) {
  static_assert(sizeof(F) == 4, "attention_backward_cuda is instantiated for float only");
  if (B == 0 || T == 0 || C == 0) return;
  const int64_t hs = C / NH, BNH = B * NH, rows = BNH * T, head = T * hs;
  const float scale = attention_scale(hs);
  Tensor qkvh = Tensor::empty({3, BNH, T, hs}, DType::F32, cuda());   // q, k, v per head
  Tensor douth = Tensor::empty({BNH, T, hs}, DType::F32, cuda());
  Tensor dqkvh = Tensor::empty({3, BNH, T, hs}, DType::F32, cuda());  // dq, dk, dv per head
  Tensor work = Tensor::empty({BNH, T, T}, DType::F32, cuda());       // Pd, then dPd -> dS
  float *q = qkvh.data<float>(true), *go = douth.data<float>(true);
  const float *k = q + BNH * head, *v = k + BNH * head;
  float* dq = dqkvh.data<float>(true);
  float *dk = dq + BNH * head, *dv = dk + BNH * head;
  float* X = work.data<float>(true);
  split_heads(q, qkv, HeadLayout{B, T, C, NH, hs, 3});
  split_heads(go, dout, HeadLayout{B, T, C, NH, hs, 1});
  const DropoutMask m = mask ? *mask : DropoutMask{};
  if (mask) {  // Pd = P * M, recomputed from the draw
    apply_dropout_kernel<<<grid_size_for(rows * T, kBlock), kBlock>>>(X, P, m, rows, T);
    CUDA_LAUNCH_CHECK();
  }
  // forward: out = Pd v;  backward: dv = Pd^T dout, dPd = dout v^T (X is free once dv is queued)
  per_head(true, false, T, hs, T, 1.0f, mask ? X : P, go, dv, BNH);
  per_head(false, true, T, T, hs, 1.0f, go, v, X, BNH);
  causal_softmax_backward_kernel<<<row_grid(rows), row_block(T)>>>(X, P, m, mask != nullptr,
                                                                  rows, T);
  CUDA_LAUNCH_CHECK();
  // forward: S = q k^T * scale;  backward: dq = scale * dS k,  dk = scale * dS^T q
  per_head(false, false, T, hs, T, scale, X, k, dq, BNH);
  per_head(true, false, T, hs, T, scale, X, q, dk, BNH);
  merge_heads(dqkv, dq, HeadLayout{B, T, C, NH, hs, 3});
}

template void attention_forward_cuda<float>(float*, float*, const float*, const DropoutMask*,
                                            int64_t, int64_t, int64_t, int64_t);
template void attention_backward_cuda<float>(float*, const float*, const float*, const float*,
                                             const DropoutMask*, int64_t, int64_t, int64_t,
                                             int64_t);

}  // namespace moe
