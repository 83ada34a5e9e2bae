// dispatch.cu — CUDA twins of src/moe/dispatch.cpp: moving tokens into the per-expert buffers
// (E, Cap, C) and expert outputs back, by index (SPEC §3 step 9), and both backward passes.
//
// Every kernel is a gather over its *outputs*, as on the CPU (dispatch.h, "Parallelism"): one
// thread per output element reads the one or two rows it needs, so no two threads write the same
// place and nothing needs atomics or a scatter-add. Neighbouring threads handle neighbouring
// columns of a row, so every read and write of a row is coalesced. dG, a dot product per
// assignment, takes a warp per token instead (a fixed butterfly sum over C).
//
// Note [Empty expert slots never reach the output] (dispatch.h) holds here as there: combine's
// forward reads only the slots of kept assignments, and its backward writes 0 into empty slots.
// The sums are written in the CPU's order with separately rounded products (__fmul_rn, no fused
// multiply-add), so dispatch, dx, y and dout are bitwise equal to the CPU's results.
#include "moe/dispatch.h"
#include "moe/moe_common.cuh"

namespace moe {
namespace {

// buf[e, c, :] = x[s, :] for the assignment s*K + k in slot (e, c); 0 for an empty slot.
template <typename T>
__global__ void dispatch_forward_kernel(T* buf, const T* x, const int32_t* slot_src, int64_t n,
                                        int64_t C) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t slot = i / C, c = i - slot * C;
    const int32_t a = slot_src[slot];
    buf[i] = a < 0 ? T(0) : x[static_cast<int64_t>(a / 2) * C + c];
  }
}

// forward: buf[e_k(s), loc_k(s), :] = x[s, :] for each kept k
//   =>  dx[s, :] = sum_k kept_k(s) * dbuf[e_k(s), loc_k(s), :]   (0 for a token dropped twice)
template <typename T>
__global__ void dispatch_backward_kernel(T* dx, const T* dbuf, const int32_t* expert,
                                         const int32_t* loc, const int32_t* kept, int64_t N,
                                         int64_t Cap, int64_t C) {
  for (int64_t i = grid_index(); i < N * C; i += grid_stride()) {
    const int64_t s = i / C, c = i - s * C;
    float acc = 0.0f;
    for (int k = 0; k < 2; ++k) {
      if (!kept[s * 2 + k]) continue;
      const int64_t slot = static_cast<int64_t>(expert[s * 2 + k]) * Cap + loc[s * 2 + k];
      acc += static_cast<float>(dbuf[slot * C + c]);
    }
    dx[i] = static_cast<T>(acc);
  }
}

// y[s, :] = sum_k kept_k(s) * G[s, k] * out[e_k(s), loc_k(s), :]; only kept slots are read.
template <typename T>
__global__ void combine_forward_kernel(T* y, const T* out, const T* gates, const int32_t* expert,
                                       const int32_t* loc, const int32_t* kept, int64_t N,
                                       int64_t Cap, int64_t C) {
  for (int64_t i = grid_index(); i < N * C; i += grid_stride()) {
    const int64_t s = i / C, c = i - s * C;
    float acc = 0.0f;
    for (int k = 0; k < 2; ++k) {
      if (!kept[s * 2 + k]) continue;
      const int64_t slot = static_cast<int64_t>(expert[s * 2 + k]) * Cap + loc[s * 2 + k];
      acc += __fmul_rn(static_cast<float>(gates[s * 2 + k]), static_cast<float>(out[slot * C + c]));
    }
    y[i] = static_cast<T>(acc);
  }
}

// dout[e, c, :] = G[s, k] * dy[s, :] for the assignment s*K + k in slot (e, c); 0 if empty.
template <typename T>
__global__ void combine_backward_out_kernel(T* dout, const T* dy, const T* gates,
                                            const int32_t* slot_src, int64_t n, int64_t C) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t slot = i / C, c = i - slot * C;
    const int32_t a = slot_src[slot];
    dout[i] = a < 0 ? T(0)
                    : static_cast<T>(static_cast<float>(gates[a]) *
                                     static_cast<float>(dy[static_cast<int64_t>(a / 2) * C + c]));
  }
}

// dG[s, k] = kept_k(s) * <dy[s, :], out[e_k(s), loc_k(s), :]>, a warp per token.
template <typename T>
__global__ void combine_backward_gates_kernel(T* dgates, const T* dy, const T* out,
                                              const int32_t* expert, const int32_t* loc,
                                              const int32_t* kept, int64_t N, int64_t Cap,
                                              int64_t C) {
  const int lane = lane_id();
  for (int64_t s = warp_row(); s < N; s += warp_row_stride()) {
    for (int k = 0; k < 2; ++k) {
      float dot = 0.0f;
      if (kept[s * 2 + k]) {  // the same for the whole warp: one token per warp
        const T* o = out + (static_cast<int64_t>(expert[s * 2 + k]) * Cap + loc[s * 2 + k]) * C;
        const T* d = dy + s * C;
        for (int64_t c = lane; c < C; c += kWarp)
          dot += static_cast<float>(d[c]) * static_cast<float>(o[c]);
        dot = warp_sum(dot);
      }
      if (lane == 0) dgates[s * 2 + k] = static_cast<T>(dot);
    }
  }
}

}  // namespace

template <typename T>
void dispatch_forward_cuda(T* buf, const T* x, const int32_t* slot_src, int64_t E, int64_t Cap,
                           int64_t C) {
  const int64_t n = E * Cap * C;
  if (n == 0) return;
  dispatch_forward_kernel<<<grid_size_for(n, kBlock), kBlock>>>(buf, x, slot_src, n, C);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void dispatch_backward_cuda(T* dx, const T* dbuf, const int32_t* expert, const int32_t* loc,
                            const int32_t* kept, int64_t N, int64_t Cap, int64_t C) {
  if (N * C == 0) return;
  dispatch_backward_kernel<<<grid_size_for(N * C, kBlock), kBlock>>>(dx, dbuf, expert, loc, kept,
                                                                     N, Cap, C);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void combine_forward_cuda(T* y, const T* expert_out, const T* gates, const int32_t* expert,
                          const int32_t* loc, const int32_t* kept, int64_t N, int64_t Cap,
                          int64_t C) {
  if (N * C == 0) return;
  combine_forward_kernel<<<grid_size_for(N * C, kBlock), kBlock>>>(y, expert_out, gates, expert,
                                                                   loc, kept, N, Cap, C);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void combine_backward_cuda(T* dexpert_out, T* dgates, const T* dy, const T* expert_out,
                           const T* gates, const int32_t* expert, const int32_t* loc,
                           const int32_t* kept, const int32_t* slot_src, int64_t N, int64_t E,
                           int64_t Cap, int64_t C) {
  const int64_t n = E * Cap * C;
  if (dexpert_out != nullptr && n > 0) {
    combine_backward_out_kernel<<<grid_size_for(n, kBlock), kBlock>>>(dexpert_out, dy, gates,
                                                                      slot_src, n, C);
    CUDA_LAUNCH_CHECK();
  }
  if (dgates != nullptr && N > 0) {
    combine_backward_gates_kernel<<<row_blocks(N), kBlock>>>(dgates, dy, expert_out, expert, loc,
                                                             kept, N, Cap, C);
    CUDA_LAUNCH_CHECK();
  }
}

template void dispatch_forward_cuda<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                           int64_t);
template void dispatch_backward_cuda<float>(float*, const float*, const int32_t*, const int32_t*,
                                            const int32_t*, int64_t, int64_t, int64_t);
template void combine_forward_cuda<float>(float*, const float*, const float*, const int32_t*,
                                          const int32_t*, const int32_t*, int64_t, int64_t,
                                          int64_t);
template void combine_backward_cuda<float>(float*, float*, const float*, const float*,
                                           const float*, const int32_t*, const int32_t*,
                                           const int32_t*, const int32_t*, int64_t, int64_t,
                                           int64_t, int64_t);

}  // namespace moe
