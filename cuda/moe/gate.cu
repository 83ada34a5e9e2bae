// gate.cu — CUDA twins of src/moe/gate.cpp: the router (P = softmax(X Wg^T)) and its backward,
// top-2 selection with capacity, the renormalised gate weights and the load-balancing loss
// (SPEC §3 steps 1-8; the math is derived in notes/moe-gating.md).
//
// How each maps to the GPU:
//   router       cuBLAS for the two products (ops/gemm.h), a warp per row for the softmax over E
//                (expf, f32, max-shifted like the CPU) and for its backward's row dot product.
//   top2_select  a warp per token picks e1 and e2 (warp argmax, lowest index on ties); the slots
//                are two stable counting sorts without atomics (core/scan.cuh): loc1 = rank of e1
//                among the top-1 picks, loc2 = rank of e2 among the *made* top-2 picks plus the
//                total top-1 count of e2 — Note [Slot order: every top-1 outranks every top-2] in
//                gate.cpp. Padding (token mask 0) gets sort key -1 for both choices, so it takes
//                part in no rank and no count (Note [Padding takes no slot]) and its loc comes out
//                -1. Then a thread per token writes loc, kept and its slots. Every slot is
//                written by at most one assignment (ranks are unique per expert), so the scatter
//                into slot_src is race-free and needs no atomics either.
//   gate_weights a thread per token forward; a thread per (token, expert) entry backward.
//   aux loss     me by the deterministic column sums of core/reduce.cuh, the real tokens' top-1
//                counts by count_experts_cuda (moe_common.cuh), one block to combine them.
//                l_aux stays on the device: nothing here copies to the host or synchronises.
// Identical decisions on both devices: the argmaxes compare the same f32 values with the same
// tie rule, the Gumbel noise and the RANDOM rule are the shared MOE_HD helpers of gate.h, and the
// ranks are exact integer counts. Kernels take the storage type T and compute in f32.
#include "core/reduce.cuh"
#include "core/scan.cuh"
#include "core/tensor.h"
#include "core/tensor_math.h"
#include "moe/gate.h"
#include "moe/moe_common.cuh"
#include "ops/gemm.h"

namespace moe {
namespace {

// ---------------------------------------------------------------------------------------------
// router

// P[s, :] = softmax(logits[s, :]): max-shifted, expf, divided by the sum (the CPU's loop).
template <typename T>
__global__ void softmax_rows_kernel(T* probs, const T* logits, int64_t N, int64_t E) {
  const int lane = lane_id();
  for (int64_t s = warp_row(); s < N; s += warp_row_stride()) {
    const T* l = logits + s * E;
    T* p = probs + s * E;
    float mx = -INFINITY;
    for (int64_t e = lane; e < E; e += kWarp) mx = fmaxf(mx, static_cast<float>(l[e]));
    mx = warp_max(mx);
    float total = 0.0f;
    for (int64_t e = lane; e < E; e += kWarp) {
      const float v = expf(static_cast<float>(l[e]) - mx);
      p[e] = static_cast<T>(v);
      total += v;
    }
    total = warp_sum(total);
    for (int64_t e = lane; e < E; e += kWarp)
      p[e] = static_cast<T>(static_cast<float>(p[e]) / total);
  }
}

// forward: P = softmax(logits)  =>  dlogits = P * (dP - sum_e dP[e] P[e])   (row by row)
template <typename T>
__global__ void softmax_rows_backward_kernel(T* dlogits, const T* dprobs, const T* probs,
                                             int64_t N, int64_t E) {
  const int lane = lane_id();
  for (int64_t s = warp_row(); s < N; s += warp_row_stride()) {
    const T* p = probs + s * E;
    const T* dp = dprobs + s * E;
    float dot = 0.0f;
    for (int64_t e = lane; e < E; e += kWarp)
      dot += static_cast<float>(dp[e]) * static_cast<float>(p[e]);
    dot = warp_sum(dot);
    for (int64_t e = lane; e < E; e += kWarp) {
      const float pe = static_cast<float>(p[e]), dpe = static_cast<float>(dp[e]);
      dlogits[s * E + e] = static_cast<T>(pe * (dpe - dot));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// top-2 selection

struct Best {
  float v;
  int32_t i;  // < 0: nothing seen yet
};

// The larger value, the lower index on equal values. Commutative and associative (for non-NaN
// values), so the butterfly below gives every lane the CPU's sequential argmax.
__device__ __forceinline__ Best better_of(Best a, Best b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

// argmax over e in [0, E), e != skip, of value(e); the lowest index wins ties (gate.cpp
// argmax_except). Each lane scans e = lane, lane + 32, ... with a strict '>' (so its own ties keep
// the lower index), then the lanes combine by better_of. Every lane returns the answer.
template <typename F>
__device__ int32_t warp_argmax(F value, int64_t E, int64_t skip) {
  Best best{0.0f, -1};
  for (int64_t e = lane_id(); e < E; e += kWarp) {
    if (e == skip) continue;
    const float v = value(e);
    if (best.i < 0 || v > best.v) best = Best{v, static_cast<int32_t>(e)};
  }
  for (int off = kWarp / 2; off > 0; off >>= 1) {
    const Best other{__shfl_xor_sync(0xffffffffu, best.v, off),
                     __shfl_xor_sync(0xffffffffu, best.i, off)};
    best = better_of(best, other);
  }
  return best.i;
}

// A warp per token: e1 = argmax P; e2 = argmax of the logits (plus Gumbel noise for SAMPLING)
// without e1; RANDOM keeps e2 iff u < 2 P[e2]. Writes expert (N, K) and the sort keys: key1 = e1,
// key2 = e2, or -1 where the second choice is skipped (it then takes part in no rank); both keys
// are -1 for a padding token (mask[s] == 0; mask null = every token real).
template <typename T>
__global__ void top2_choose_kernel(int32_t* expert, int32_t* key1, int32_t* key2, const T* probs,
                                   const T* logits, const int32_t* mask, Top2Policy policy,
                                   PhiloxRange draw, int64_t N, int64_t E) {
  for (int64_t s = warp_row(); s < N; s += warp_row_stride()) {
    const T* p = probs + s * E;
    const T* l = logits + s * E;
    const int32_t e1 = warp_argmax([&](int64_t e) { return static_cast<float>(p[e]); }, E, -1);
    int32_t e2;
    if (policy == Top2Policy::SAMPLING) {  // value s*E + e of the draw is logit (s, e)'s noise
      e2 = warp_argmax([&](int64_t e) {
        const uint64_t i = static_cast<uint64_t>(s * E + e);
        return static_cast<float>(l[e]) + static_cast<float>(gumbel_from_bits(draw.bits(i)));
      }, E, e1);
    } else {
      e2 = warp_argmax([&](int64_t e) { return static_cast<float>(l[e]); }, E, e1);
    }
    bool keep2 = true;
    if (policy == Top2Policy::RANDOM)
      keep2 = random_policy_keeps(draw.uniform(static_cast<uint64_t>(s)),
                                  static_cast<double>(static_cast<float>(p[e2])));
    if (lane_id() == 0) {
      const bool real = mask == nullptr || mask[s] != 0;
      expert[s * 2] = e1;
      expert[s * 2 + 1] = e2;
      key1[s] = real ? e1 : -1;
      key2[s] = real && keep2 ? e2 : -1;
    }
  }
}

// A thread per token: loc from the ranks (top-2 ranks start after all top-1 picks of their
// expert), kept = 0 <= loc < Cap, and slot_src[e * Cap + loc] = s*K + k for kept assignments.
// A key of -1 (padding, or a skipped second choice) has rank -1, so its loc is -1 and it is not
// kept.
__global__ void top2_slots_kernel(int32_t* loc, int32_t* kept, int32_t* slot_src,
                                  const int32_t* expert, const int32_t* key2,
                                  const int32_t* rank1, const int32_t* rank2,
                                  const int32_t* count1, int64_t N, int64_t Cap) {
  for (int64_t s = grid_index(); s < N; s += grid_stride()) {
    const int32_t e1 = expert[s * 2], l1 = rank1[s];
    const bool k1 = l1 >= 0 && l1 < Cap;
    loc[s * 2] = l1;
    kept[s * 2] = k1 ? 1 : 0;
    if (k1) slot_src[e1 * Cap + l1] = static_cast<int32_t>(s * 2);
    const int32_t e2 = key2[s];
    const int32_t l2 = e2 >= 0 ? rank2[s] + count1[e2] : -1;
    const bool k2 = l2 >= 0 && l2 < Cap;
    loc[s * 2 + 1] = l2;
    kept[s * 2 + 1] = k2 ? 1 : 0;
    if (k2) slot_src[e2 * Cap + l2] = static_cast<int32_t>(s * 2 + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// gate weights: G_k = g_k / max(g_1 + g_2, eps), g_k = kept_k * P[e_k]
// (Note [Gate renormalisation and its gradient] in gate.cpp)

constexpr float kEps = static_cast<float>(kGateDenomEps);  // 2^-23, exact in f32

template <typename T>
__global__ void gate_weights_forward_kernel(T* gates, const T* probs, const int32_t* expert,
                                            const int32_t* kept, int64_t N, int64_t E) {
  for (int64_t s = grid_index(); s < N; s += grid_stride()) {
    const float g1 = kept[s * 2] ? static_cast<float>(probs[s * E + expert[s * 2]]) : 0.0f;
    const float g2 = kept[s * 2 + 1] ? static_cast<float>(probs[s * E + expert[s * 2 + 1]]) : 0.0f;
    const float sum = g1 + g2;
    const float denom = sum >= kEps ? sum : kEps;
    gates[s * 2] = static_cast<T>(g1 / denom);
    gates[s * 2 + 1] = static_cast<T>(g2 / denom);
  }
}

// One thread per entry (s, e) of dprobs, so the writes are coalesced: zero unless e is one of the
// token's kept choices, then (dG_k - [not clamped] sum_j dG_j G_j) / D. The products are rounded
// one by one (__fmul_rn: no fused multiply-add), as the CPU computes them.
template <typename T>
__global__ void gate_weights_backward_kernel(T* dprobs, const T* dgates, const T* probs,
                                             const int32_t* expert, const int32_t* kept,
                                             int64_t N, int64_t E) {
  for (int64_t i = grid_index(); i < N * E; i += grid_stride()) {
    const int64_t s = i / E, e = i - s * E;
    const int32_t e1 = expert[s * 2], e2 = expert[s * 2 + 1];
    const bool k1 = kept[s * 2] != 0, k2 = kept[s * 2 + 1] != 0;
    const bool is1 = k1 && e == e1, is2 = k2 && e == e2;
    if (!is1 && !is2) {
      dprobs[i] = T(0);
      continue;
    }
    const float g1 = k1 ? static_cast<float>(probs[s * E + e1]) : 0.0f;
    const float g2 = k2 ? static_cast<float>(probs[s * E + e2]) : 0.0f;
    const float sum = g1 + g2;
    const bool clamped = !(sum >= kEps);
    const float denom = clamped ? kEps : sum;
    const float dG1 = static_cast<float>(dgates[s * 2]);
    const float dG2 = static_cast<float>(dgates[s * 2 + 1]);
    const float through = clamped ? 0.0f : (__fmul_rn(dG1, g1) + __fmul_rn(dG2, g2)) / denom;
    dprobs[i] = static_cast<T>(((is1 ? dG1 : dG2) - through) / denom);
  }
}

// ---------------------------------------------------------------------------------------------
// load-balancing loss: l_aux = E * sum_e me[e] ce[e]

// One block: ce[e] = count1[e] / N (in f32, as the CPU; count1 holds real tokens only, N counts
// padding too), and l_aux = E * sum_e (me_sum[e] / N) * ce[e] accumulated in double by a fixed
// tree.
template <typename T>
__global__ void load_balance_finish_kernel(T* loss, T* ce, const float* me_sum,
                                           const int32_t* count1, int64_t N, int64_t E) {
  double acc = 0.0;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    const float c = static_cast<float>(count1[e]) / static_cast<float>(N);
    ce[e] = static_cast<T>(c);
    acc += (static_cast<double>(me_sum[e]) / static_cast<double>(N)) * static_cast<double>(c);
  }
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) loss[0] = static_cast<T>(static_cast<double>(E) * acc);
}

// dP[s, e] = dloss * E * ce[e] / N, the same for every token; dloss read on the device.
template <typename T>
__global__ void load_balance_backward_kernel(T* dprobs, const T* dloss, const T* ce, int64_t N,
                                             int64_t E) {
  const float scale =
      static_cast<float>(dloss[0]) * static_cast<float>(E) / static_cast<float>(N);
  for (int64_t i = grid_index(); i < N * E; i += grid_stride())
    dprobs[i] = static_cast<T>(scale * static_cast<float>(ce[i % E]));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// launchers

template <typename T>
void router_forward_cuda(T* probs, T* logits, const T* x, const T* wg, int64_t N, int64_t C,
                         int64_t E) {
  // logits (N, E) = x (N, C) @ wg^T (C, E)
  gemm_cuda<T>(false, true, N, E, C, T(1), x, C, wg, C, T(0), logits, E);
  if (N == 0) return;
  softmax_rows_kernel<<<row_blocks(N), kBlock>>>(probs, logits, N, E);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void router_backward_cuda(T* dx, T* dwg, const T* dprobs, const T* probs, const T* x,
                          const T* wg, int64_t N, int64_t C, int64_t E) {
  if (dx == nullptr && dwg == nullptr) return;
  Tensor dlogits = Tensor::empty({N, E}, dtype_of<T>(), cuda());  // (N, E)
  T* dl = dlogits.data<T>(true);
  if (N > 0) {
    softmax_rows_backward_kernel<<<row_blocks(N), kBlock>>>(dl, dprobs, probs, N, E);
    CUDA_LAUNCH_CHECK();
  }
  // forward: logits = x @ wg^T  =>  dx (N, C) = dlogits (N, E) @ wg (E, C)
  if (dx != nullptr) gemm_cuda<T>(false, false, N, C, E, T(1), dl, E, wg, C, T(0), dx, C);
  //                                 dwg (E, C) = dlogits^T (E, N) @ x (N, C)
  if (dwg != nullptr) gemm_cuda<T>(true, false, E, C, N, T(1), dl, E, x, C, T(0), dwg, C);
}

template <typename T>
void top2_select_forward_cuda(int32_t* expert, int32_t* loc, int32_t* kept, int32_t* slot_src,
                              const T* probs, const T* logits, const int32_t* mask,
                              Top2Policy policy, PhiloxRange draw, int64_t N, int64_t E,
                              int64_t Cap) {
  CHECK(N < (int64_t{1} << 30) && E * Cap < (int64_t{1} << 31),
        "top2_select: N = ", N, ", E * Cap = ", E * Cap, " do not fit the i32 routing tensors");
  fill_bits_cuda(slot_src, 0xFFFFFFFFu, 4, E * Cap);  // every slot starts empty (-1)
  if (N == 0) return;
  // scratch: key1, key2, rank1, rank2 (N each), count1, count2 (E each)
  Tensor scratch = Tensor::empty({4 * N + 2 * E}, DType::I32, cuda());
  int32_t* key1 = scratch.data<int32_t>(true);
  int32_t *key2 = key1 + N, *rank1 = key1 + 2 * N, *rank2 = key1 + 3 * N;
  int32_t *count1 = key1 + 4 * N, *count2 = count1 + E;
  top2_choose_kernel<<<row_blocks(N), kBlock>>>(expert, key1, key2, probs, logits, mask, policy,
                                                draw, N, E);
  CUDA_LAUNCH_CHECK();
  stable_rank_by_key_cuda(rank1, count1, nullptr, key1, N, E);  // loc1, real top-1 counts
  stable_rank_by_key_cuda(rank2, count2, nullptr, key2, N, E);  // ranks among made top-2 picks
  top2_slots_kernel<<<grid_size_for(N, kBlock), kBlock>>>(loc, kept, slot_src, expert, key2,
                                                          rank1, rank2, count1, N, Cap);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void gate_weights_forward_cuda(T* gates, const T* probs, const int32_t* expert,
                               const int32_t* kept, int64_t N, int64_t E) {
  if (N == 0) return;
  gate_weights_forward_kernel<<<grid_size_for(N, kBlock), kBlock>>>(gates, probs, expert, kept,
                                                                    N, E);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void gate_weights_backward_cuda(T* dprobs, const T* dgates, const T* probs,
                                const int32_t* expert, const int32_t* kept, int64_t N,
                                int64_t E) {
  if (N * E == 0) return;
  gate_weights_backward_kernel<<<grid_size_for(N * E, kBlock), kBlock>>>(dprobs, dgates, probs,
                                                                         expert, kept, N, E);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void load_balance_loss_forward_cuda(T* loss, T* ce, const T* probs, const int32_t* expert,
                                    const int32_t* mask, int64_t N, int64_t E) {
  CHECK(N >= 1, "load_balance_loss: need at least one token");
  Tensor scratch_f = Tensor::empty({E}, DType::F32, cuda());  // (E) column sums of P
  Tensor scratch_i = Tensor::empty({E}, DType::I32, cuda());  // (E) top-1 counts
  float* me_sum = scratch_f.data<float>(true);
  int32_t* count1 = scratch_i.data<int32_t>(true);
  column_sums_cuda<T>(me_sum, probs, N, E);
  // e1 = expert[s, 0] (key stride 2) of the real tokens (mask[s], stride 1)
  count_experts_cuda(count1, expert, /*key_stride=*/2, mask, /*mask_stride=*/1, N, E);
  load_balance_finish_kernel<<<1, kBlock>>>(loss, ce, me_sum, count1, N, E);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void load_balance_loss_backward_cuda(T* dprobs, const T* dloss, const T* ce, int64_t N,
                                     int64_t E) {
  if (N * E == 0) return;
  load_balance_backward_kernel<<<grid_size_for(N * E, kBlock), kBlock>>>(dprobs, dloss, ce, N, E);
  CUDA_LAUNCH_CHECK();
}

template void router_forward_cuda<float>(float*, float*, const float*, const float*, int64_t,
                                         int64_t, int64_t);
template void router_backward_cuda<float>(float*, float*, const float*, const float*,
                                          const float*, const float*, int64_t, int64_t, int64_t);
template void top2_select_forward_cuda<float>(int32_t*, int32_t*, int32_t*, int32_t*,
                                              const float*, const float*, const int32_t*,
                                              Top2Policy, PhiloxRange, int64_t, int64_t, int64_t);
template void gate_weights_forward_cuda<float>(float*, const float*, const int32_t*,
                                               const int32_t*, int64_t, int64_t);
template void gate_weights_backward_cuda<float>(float*, const float*, const float*,
                                                const int32_t*, const int32_t*, int64_t, int64_t);
template void load_balance_loss_forward_cuda<float>(float*, float*, const float*, const int32_t*,
                                                    const int32_t*, int64_t, int64_t);
template void load_balance_loss_backward_cuda<float>(float*, const float*, const float*, int64_t,
                                                     int64_t);

}  // namespace moe
