// attention.cu — CUDA twins of src/ops/attention.cpp: dense causal multi-head self-attention with
// dropout on the probabilities (SPEC §2), forward and backward, f32.
//
// Plan. In qkv (B, T, 3C) the (T, hs) matrix of head h of sequence b starts at b*T*3C + h*hs with
// row stride 3C: the heads sit at two-level offsets (sequence, head). Each of the two products of
// the forward and the four of the backward is ONE batched cuBLAS call over all B*NH heads that
// reads q, k, v, dout and writes out, dqkv where they are (gemm_batched2_cuda, ops/gemm.h): no
// copies into per-head buffers (copying was 13% of a 125M step, measured with ncu on the H200;
// notes/benchmarks.md). Only the (B*NH, T, T) scores have a buffer of their own. Row kernels do
// the rest:
//   forward   S = q k^T / sqrt(hs) (written straight into P), causal softmax of each row in
//             place, Pd = P * M (only with dropout), out = Pd v;
//   backward  Pd again (only with dropout), dv = Pd^T dout, dPd = dout v^T, then per row
//             dP = dPd * M and dS = P * (dP - <P, dP>) in place, dq = dS k / sqrt(hs),
//             dk = dS^T q / sqrt(hs), all three written into their columns of dqkv.
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

// ---- row kernels -------------------------------------------------------------------------------
// A "row" is (b, h, t): row r = (b*NH + h)*T + t covers P[r*T .. r*T + T), of which only u <= t
// (t = r % T) is causal. Element (r, u) is value r*T + u of the dropout draw. Each block takes
// rows r = blockIdx.x, blockIdx.x + gridDim.x, ...; the loop bound is the same for every thread
// of a block, so the block reductions' barriers are reached by all of them.

// Running (max, sum of exp(x - max)) of a stream of scores: the pair that an online softmax
// keeps, and how two such pairs combine (the larger max wins, the other sum is rescaled).
struct MaxSum {
  float m, s;
};
__device__ MaxSum max_sum_add(MaxSum a, float x) {
  if (x <= a.m) return MaxSum{a.m, a.s + expf(x - a.m)};
  return MaxSum{x, a.s * expf(a.m - x) + 1.0f};
}
__device__ MaxSum max_sum_merge(MaxSum a, MaxSum b) {
  if (b.m == -INFINITY) return a;
  if (a.m == -INFINITY) return b;
  return a.m >= b.m ? MaxSum{a.m, a.s + b.s * expf(b.m - a.m)}
                    : MaxSum{b.m, b.s + a.s * expf(a.m - b.m)};
}

// In place: scores in, causal softmax out (0 for u > t). With dropout, also Pd = P * M.
// One pass finds each thread's (max, sum) over its entries (online softmax), one fixed-order
// block reduction merges them, and a second pass writes the probabilities: each score is read
// twice, written once (the three-pass version read it three times and wrote it twice).
__global__ void causal_softmax_kernel(float* P, float* Pd, DropoutMask m, int64_t rows,
                                      int64_t T) {
  __shared__ MaxSum part[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t t = r % T;
    float* p = P + r * T;
    MaxSum acc{-INFINITY, 0.0f};
    for (int64_t u = threadIdx.x; u <= t; u += blockDim.x) acc = max_sum_add(acc, p[u]);
    for (int off = 16; off > 0; off >>= 1) {  // warp butterfly, then warps in order
      const MaxSum o{__shfl_xor_sync(0xffffffffu, acc.m, off),
                     __shfl_xor_sync(0xffffffffu, acc.s, off)};
      acc = max_sum_merge(acc, o);
    }
    const int warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    if (threadIdx.x % 32 == 0) part[warp] = acc;
    __syncthreads();
    MaxSum row = part[0];
    for (int w = 1; w < nwarps; ++w) row = max_sum_merge(row, part[w]);
    __syncthreads();  // part is rewritten by the next row
    const float inv = 1.0f / row.s;
    for (int64_t u = threadIdx.x; u < T; u += blockDim.x) {
      const float v = u <= t ? expf(p[u] - row.m) * inv : 0.0f;
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

// The operands of attention's batched products, as (pointer, row stride, sequence stride, head
// stride): a head's (T, hs) slice of a (B, T, width) activation, or a head's (T, T) square of the
// (B*NH, T, T) scores.
struct Operand {
  const float* p;
  int64_t ld, s_seq, s_head;
};
Operand head_of(const float* x, int64_t width, int64_t T, int64_t hs) {
  return Operand{x, width, T * width, hs};
}
Operand square_of(const float* S, int64_t NH, int64_t T) { return Operand{S, T, NH * T * T, T * T}; }

// The same operand starting `row` rows and `col` columns further in (a sub-block of each head).
Operand at(Operand o, int64_t row, int64_t col) {
  return Operand{o.p + row * o.ld + col, o.ld, o.s_seq, o.s_head};
}

// For every (b, h): C = alpha op(A) op(B), C (M, N) overwritten.
void per_head(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Operand A,
              Operand Bm, Operand C, int64_t B, int64_t NH) {
  gemm_batched2_cuda<float>(ta, tb, M, N, K, alpha, A.p, A.ld, A.s_seq, A.s_head, Bm.p, Bm.ld,
                            Bm.s_seq, Bm.s_head, 0.0f, const_cast<float*>(C.p), C.ld, C.s_seq,
                            C.s_head, B, NH);
}

// Causality halves the work of every product, and cuBLAS computes full rectangles; so the rows
// of each (T, T) square are cut into bands of at least 256 (up to kMaxBands of them) and each
// band multiplies only the columns its rows can see: with 4 bands, 10 of 16 blocks (5/8 of the
// square). Three shapes of product occur (band i = rows [r0, r1)):
//   scores    X (T, T) = A (T, K) op(B)^T, only u <= t needed: band i computes columns [0, r1)
//             (S = q k^T, dPd = dout v^T)
//   mixing    Y (T, n) = P (T, T) Z (T, n), P zero for u > t: band i sums over u < r1
//             (out = P v, dq = dS k)
//   mixing^T  Y (T, n) = P^T (T, T) Z (T, n): band i (rows u) sums over t >= r0
//             (dv = P^T dout, dk = dS^T q)
// The skipped blocks of a score square hold garbage; the softmax kernels read only u <= t and
// write zeros above the diagonal, so every square is fully defined before a mixing product.
constexpr int64_t kMinBand = 256, kMaxBands = 4;

int64_t band_count(int64_t T) { return std::max<int64_t>(1, std::min(kMaxBands, T / kMinBand)); }
int64_t band_start(int64_t T, int64_t i, int64_t nb) { return T * i / nb; }

void scores(int64_t T, int64_t K, float alpha, Operand A, Operand Bm, Operand X, int64_t B,
            int64_t NH) {
  const int64_t nb = band_count(T);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t r0 = band_start(T, i, nb), r1 = band_start(T, i + 1, nb);
    per_head(false, true, r1 - r0, r1, K, alpha, at(A, r0, 0), Bm, at(X, r0, 0), B, NH);
  }
}

void mixing(int64_t T, int64_t n, float alpha, Operand P, Operand Z, Operand Y, int64_t B,
            int64_t NH) {
  const int64_t nb = band_count(T);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t r0 = band_start(T, i, nb), r1 = band_start(T, i + 1, nb);
    per_head(false, false, r1 - r0, n, r1, alpha, at(P, r0, 0), Z, at(Y, r0, 0), B, NH);
  }
}

void mixing_t(int64_t T, int64_t n, float alpha, Operand P, Operand Z, Operand Y, int64_t B,
              int64_t NH) {
  const int64_t nb = band_count(T);
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t r0 = band_start(T, i, nb), r1 = band_start(T, i + 1, nb);
    per_head(true, false, r1 - r0, n, T - r0, alpha, at(P, r0, r0), at(Z, r0, 0), at(Y, r0, 0),
             B, NH);
  }
}

}  // namespace

// ---- launchers ---------------------------------------------------------------------------------

template <typename F>
void attention_forward_cuda(F* out, F* P, const F* qkv, const DropoutMask* mask, int64_t B,
                            int64_t T, int64_t C, int64_t NH) {
  static_assert(sizeof(F) == 4, "attention_forward_cuda is instantiated for float only");
  if (B == 0 || T == 0 || C == 0) return;
  const int64_t hs = C / NH, rows = B * NH * T;
  Tensor pd = mask ? Tensor::empty({B * NH, T, T}, DType::F32, cuda()) : Tensor();  // P * M
  float* pdp = mask ? pd.data<float>(true) : nullptr;
  const Operand q = head_of(qkv, 3 * C, T, hs), k = head_of(qkv + C, 3 * C, T, hs),
                v = head_of(qkv + 2 * C, 3 * C, T, hs);
  // S = q k^T / sqrt(hs), into P
  scores(T, hs, attention_scale(hs), q, k, square_of(P, NH, T), B, NH);
  causal_softmax_kernel<<<row_grid(rows), row_block(T)>>>(P, pdp, mask ? *mask : DropoutMask{},
                                                         rows, T);
  CUDA_LAUNCH_CHECK();
  // out (B, T, C), head h in columns h*hs .. = Pd v
  mixing(T, hs, 1.0f, square_of(mask ? pdp : P, NH, T), v, head_of(out, C, T, hs), B, NH);
}

template <typename F>
void attention_backward_cuda(F* dqkv, const F* dout, const F* qkv, const F* P,
                             const DropoutMask* mask, int64_t B, int64_t T, int64_t C,
                             int64_t NH) {
  static_assert(sizeof(F) == 4, "attention_backward_cuda is instantiated for float only");
  if (B == 0 || T == 0 || C == 0) return;
  const int64_t hs = C / NH, rows = B * NH * T;
  const float scale = attention_scale(hs);
  Tensor work = Tensor::empty({B * NH, T, T}, DType::F32, cuda());  // Pd, then dPd -> dS
  float* X = work.data<float>(true);
  const Operand q = head_of(qkv, 3 * C, T, hs), k = head_of(qkv + C, 3 * C, T, hs),
                v = head_of(qkv + 2 * C, 3 * C, T, hs), go = head_of(dout, C, T, hs);
  const Operand dq = head_of(dqkv, 3 * C, T, hs), dk = head_of(dqkv + C, 3 * C, T, hs),
                dv = head_of(dqkv + 2 * C, 3 * C, T, hs);
  const DropoutMask m = mask ? *mask : DropoutMask{};
  if (mask) {  // Pd = P * M, recomputed from the draw
    apply_dropout_kernel<<<grid_size_for(rows * T, kBlock), kBlock>>>(X, P, m, rows, T);
    CUDA_LAUNCH_CHECK();
  }
  // forward: out = Pd v;  backward: dv = Pd^T dout, dPd = dout v^T (X is free once dv is queued)
  mixing_t(T, hs, 1.0f, square_of(mask ? X : P, NH, T), go, dv, B, NH);
  scores(T, hs, 1.0f, go, v, square_of(X, NH, T), B, NH);
  causal_softmax_backward_kernel<<<row_grid(rows), row_block(T)>>>(X, P, m, mask != nullptr,
                                                                  rows, T);
  CUDA_LAUNCH_CHECK();
  // forward: S = q k^T * scale;  backward: dq = scale * dS k,  dk = scale * dS^T q
  mixing(T, hs, scale, square_of(X, NH, T), k, dq, B, NH);
  mixing_t(T, hs, scale, square_of(X, NH, T), q, dk, B, NH);
}

template void attention_forward_cuda<float>(float*, float*, const float*, const DropoutMask*,
                                            int64_t, int64_t, int64_t, int64_t);
template void attention_backward_cuda<float>(float*, const float*, const float*, const float*,
                                             const DropoutMask*, int64_t, int64_t, int64_t,
                                             int64_t);

}  // namespace moe
