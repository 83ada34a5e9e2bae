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
// What it leaves out: label smoothing, class weights, a "sum" reduction, and (N, V) logits on the
// GPU (cuda/ later, same argument order).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace moe {

// Mean NLL over the rows whose target is not ignore_index.
//   logits: (N, V) f32/f64, targets: (N,) i32 in [0, V) or == ignore_index  ->  scalar ()
// Gradient flows to logits only. A target outside [0, V) that is not ignore_index is an error.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& targets, int ignore_index = -1);

// Per-row NLL for evaluation, never recorded on the tape: (N, V), (N,) -> (N,) in logits' dtype;
// rows whose target is ignore_index get 0.
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets, int ignore_index = -1);

// ---- raw kernels (contiguous buffers). Targets must already be validated.
// row_nll (N,) in double (summed by the caller in row order), lse (N,)  <-  logits (N, V), targets
template <typename T>
void softmax_xent_forward(double* row_nll, T* lse, const T* logits, const int32_t* targets,
                          int ignore_index, int64_t N, int64_t V);
// dlogits (N, V) = (softmax - onehot) * dscale for kept rows, 0 for ignored rows (overwrites);
// dscale = dloss / count.
template <typename T>
void softmax_xent_backward(T* dlogits, T dscale, const T* logits, const T* lse,
                           const int32_t* targets, int ignore_index, int64_t N, int64_t V);

}  // namespace moe
