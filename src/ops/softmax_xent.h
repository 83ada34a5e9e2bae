// softmax_xent.h — fused softmax + cross-entropy: the language-modelling loss.
//
// SPEC §3 step 10 / §5: the training loss is the mean token negative log-likelihood (plus the
// MoE aux terms, added elsewhere); §6 perplexity is exp(mean NLL per token), and priming scores
// candidates by per-token log-probabilities — cross_entropy_rows gives those without autograd.
//
// For row n with logits l (V values) and target t:
//   lse_n = log sum_v exp(l_v)            (computed as max + log sum exp(l_v - max): no overflow)
//   nll_n = lse_n - l_t                   (= -log softmax(l)_t)
//   loss  = (1/count) sum_{n : t_n != ignore_index} nll_n
// Why fused: the (N, V) probability matrix is the largest activation of a small model; the
// forward only keeps lse_n (one number per row) and the backward rebuilds softmax row by row:
//   dlogits[n, v] = (softmax(l_n)_v - [v == t_n]) * dloss / count,  0 for ignored rows.
// A batch where every target is ignored has count = 0: the loss is defined as 0 with a zero
// gradient (PyTorch returns NaN there; a 0 cannot poison a running mean).
//
// Devices: the loss and the count of kept rows stay on the logits' device (no host read on the GPU
// path), and the backward reads dloss and the count from there. Every raw function has a CUDA twin
// with the same name plus `_cuda` and the same arguments (cuda/ops/softmax_xent.cu). On the CPU a
// target outside [0, V) that is not ignore_index is an error (the wrapper reads the targets); on
// the GPU reading them would stall the host, so such a row gets a NaN loss instead (and a NaN
// gradient row), which makes the mean loss NaN: the trainer's finite-loss check stops there.
//
// What it leaves out: label smoothing, class weights, a "sum" reduction.
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// Mean NLL over the rows whose target is not ignore_index.
//   logits: (N, V) f32/f64, targets: (N,) i32 in [0, V) or == ignore_index  ->  scalar ()
// Gradient flows to logits only. A target outside [0, V) that is not ignore_index is an error on
// the CPU and a NaN loss on the GPU.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index = -1);

// Per-row NLL for evaluation, never recorded on the tape: (N, V), (N,) -> (N,) in logits' dtype;
// rows whose target is ignore_index get 0 (an out-of-range target: an error on the CPU, NaN on
// the GPU).
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets, int ignore_index = -1);

// ---- raw kernels (contiguous buffers; every pointer on one device, scalars included).
// loss () = (1/count) sum of the kept rows' NLL (summed in double in row order on the CPU, by a
// fixed tree on the GPU; 0 when count = 0), count () = number of rows whose target is not
// ignore_index, lse (N,)  <-  logits (N, V), targets (N,)
template <typename T>
void softmax_xent_forward(T* loss, int32_t* count, T* lse, const T* logits,
                          const int32_t* targets, int ignore_index, int64_t N, int64_t V);
// nll (N,) = lse_n - l[n, t_n], 0 for ignored rows  <-  logits (N, V), targets (N,)
template <typename T>
void cross_entropy_rows_forward(T* nll, const T* logits, const int32_t* targets,
                                int ignore_index, int64_t N, int64_t V);
// dlogits (N, V) = (softmax - onehot) * dloss[0] / count[0] for kept rows, 0 for ignored rows and
// everywhere when count[0] = 0 (overwrites).
template <typename T>
void softmax_xent_backward(T* dlogits, const T* dloss, const int32_t* count, const T* logits,
                           const T* lse, const int32_t* targets, int ignore_index, int64_t N,
                           int64_t V);

MOE_CUDA_BEGIN
template <typename T>
void softmax_xent_forward_cuda(T* loss, int32_t* count, T* lse, const T* logits,
                               const int32_t* targets, int ignore_index, int64_t N, int64_t V)
    MOE_CUDA_STUB
template <typename T>
void cross_entropy_rows_forward_cuda(T* nll, const T* logits, const int32_t* targets,
                                     int ignore_index, int64_t N, int64_t V) MOE_CUDA_STUB
template <typename T>
void softmax_xent_backward_cuda(T* dlogits, const T* dloss, const int32_t* count,
                                const T* logits, const T* lse, const int32_t* targets,
                                int ignore_index, int64_t N, int64_t V) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
