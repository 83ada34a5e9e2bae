// dispatch.h — moving tokens into per-expert buffers and expert outputs back (SPEC §3 step 9).
//
// Artetxe et al. 2021, §2: each token is processed by its top-2 experts and the two outputs are
// mixed by the gate weights. With the routing of moe/gate.h (expert e_k and slot loc_k of each
// assignment, kept or dropped) the two data movements are:
//   dispatch   buf (E, Cap, C):  buf[e_k(s), loc_k(s), :] = x[s, :]  for every kept (s, k);
//                                rows of slots nobody fills are 0
//   combine    y (N, C):         y[s, :] = sum_k kept_k(s) * G[s, k] * out[e_k(s), loc_k(s), :]
// Both move rows by index (a gather), never through fairseq's dense (N, E, Cap) one-hot einsum,
// which costs N*E*Cap*C multiply-adds to move N*2*C numbers (SPEC §3 step 9).
//
// Derivatives (notes/moe-gating.md, notes/ops-moe.md):
//   dispatch   dx[s, :]  = sum_k kept_k(s) * dbuf[e_k(s), loc_k(s), :]     (a gather per token)
//   combine    dout[e, c, :] = G[s, k] * dy[s, :] for the assignment (s, k) in slot (e, c),
//                              0 for an empty slot                          (a gather per slot)
//              dG[s, k] = kept_k(s) * <dy[s, :], out[e_k(s), loc_k(s), :]>, 0 if dropped
//
// Note [Empty expert slots never reach the output]
// Slots past an expert's fill hold zero rows after dispatch, and the expert FFN turns a zero row
// into gelu(b1) @ W2 + b2, which is not zero. That value must not leak into y, and it does not:
// combine reads only the slots of kept assignments (the dropped ones have no slot at all), and in
// backward it writes dout = 0 into empty slots, so the experts' weight gradients get nothing from
// them either. (fairseq gets the same effect from its one-hot combine weights.)
//
// Parallelism: every loop runs over independent *outputs* — slots for the forward of dispatch
// and for dout, tokens for the forward of combine, dx and dG — so no two threads write the same
// row and no scatter-add is needed: results are bitwise identical for any thread count.
// The CUDA twins (cuda/moe/dispatch.cu) are the same gathers, one thread per output element (a
// warp per token for dG's dot products): no atomics there either, and dispatch, dx, dout and y
// come out bitwise equal to the CPU's (the same additions in the same order, no fused
// multiply-add); only dG's dot product sums in another order.
//
// What it leaves out: the expert-parallel all-to-all between dispatch and the experts (src/dist),
// and variable-length (dropless) buffers.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"
#include "moe/gate.h"

namespace moe {

// x (N, C) f32/f64 -> buf (E, Cap, C) on x's device (the routing's). Differentiable wrt x.
Tensor dispatch(const Tensor& x, const Routing& r);

// expert_out (E, Cap, C), gates (N, K) -> y (N, C), all on the routing's device. Differentiable
// wrt expert_out and gates.
Tensor combine(const Tensor& expert_out, const Tensor& gates, const Routing& r);

// ---- raw kernels (contiguous row-major buffers; T = float or double on the CPU, float on CUDA) --
// Backward kernels overwrite their outputs; a null output pointer means "not needed". Each has a
// CUDA twin below with the same name plus _cuda and the same arguments.

//   buf (E, Cap, C)  <-  x (N, C), slot_src (E, Cap)
template <typename T>
void dispatch_forward(T* buf, const T* x, const int32_t* slot_src, int64_t E, int64_t Cap,
                      int64_t C);
//   dx (N, C)  <-  dbuf (E, Cap, C), expert, loc, kept (N, K)
template <typename T>
void dispatch_backward(T* dx, const T* dbuf, const int32_t* expert, const int32_t* loc,
                       const int32_t* kept, int64_t N, int64_t Cap, int64_t C);

//   y (N, C)  <-  expert_out (E, Cap, C), gates (N, K), expert, loc, kept (N, K)
template <typename T>
void combine_forward(T* y, const T* expert_out, const T* gates, const int32_t* expert,
                     const int32_t* loc, const int32_t* kept, int64_t N, int64_t Cap, int64_t C);
//   dexpert_out (E, Cap, C), dgates (N, K)  <-  dy (N, C), expert_out, gates, routing
template <typename T>
void combine_backward(T* dexpert_out, T* dgates, const T* dy, const T* expert_out, const T* gates,
                      const int32_t* expert, const int32_t* loc, const int32_t* kept,
                      const int32_t* slot_src, int64_t N, int64_t E, int64_t Cap, int64_t C);

MOE_CUDA_BEGIN
template <typename T>
void dispatch_forward_cuda(T* buf, const T* x, const int32_t* slot_src, int64_t E, int64_t Cap,
                           int64_t C) MOE_CUDA_STUB
template <typename T>
void dispatch_backward_cuda(T* dx, const T* dbuf, const int32_t* expert, const int32_t* loc,
                            const int32_t* kept, int64_t N, int64_t Cap, int64_t C) MOE_CUDA_STUB
template <typename T>
void combine_forward_cuda(T* y, const T* expert_out, const T* gates, const int32_t* expert,
                          const int32_t* loc, const int32_t* kept, int64_t N, int64_t Cap,
                          int64_t C) MOE_CUDA_STUB
template <typename T>
void combine_backward_cuda(T* dexpert_out, T* dgates, const T* dy, const T* expert_out,
                           const T* gates, const int32_t* expert, const int32_t* loc,
                           const int32_t* kept, const int32_t* slot_src, int64_t N, int64_t E,
                           int64_t Cap, int64_t C) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
