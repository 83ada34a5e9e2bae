// layernorm.h — layer normalisation over the last axis, with a learned scale and shift.
//
// SPEC §2: the model is pre-LN, `h = x + Attn(LN1(x))`, `y = h + FFN(LN2(h))`, plus one final LN
// before the tied output projection; every LN uses eps = 1e-5. Reference doc: PyTorch LayerNorm
// (https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html), biased variance.
//
// For each row x (the last axis, C values):
//   mean = (1/C) sum_c x_c
//   rstd = 1 / sqrt((1/C) sum_c (x_c - mean)^2 + eps)
//   xhat = (x - mean) * rstd
//   y    = xhat * gamma + beta
// The forward saves mean and rstd per row (two numbers), so backward never recomputes the
// statistics; it recomputes xhat from x, which is cheaper than storing it.
//
// Every raw function has a CUDA twin with the same name plus `_cuda` and the same arguments
// (cuda/ops/layernorm.cu); the wrapper picks one by the inputs' device (core/dispatch.h).
//
// What it leaves out: normalising over more than the last axis, elementwise_affine=false (pass
// gamma = 1, beta = 0).
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// y = layernorm(x) * gamma + beta over the last axis.
//   x: (..., C) f32/f64, gamma: (C,), beta: (C,) of the same dtype  ->  (..., C)
// Backward gives dx, dgamma, dbeta (each only when needed).
Tensor layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

// ---- raw kernels (contiguous buffers; R rows of C values). Exposed for the CUDA tests and
// benchmarks, which compare against exactly these loops.
//   out (R, C), mean (R,), rstd (R,)  <-  x (R, C), gamma (C,), beta (C,)
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                       double eps, int64_t R, int64_t C);
// dx (R, C), dgamma (C,), dbeta (C,)  <-  dout (R, C), x, mean, rstd, gamma. Any of dx, dgamma,
// dbeta may be null (not needed). All three are overwritten (=), not accumulated into.
template <typename T>
void layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                        const T* rstd, const T* gamma, int64_t R, int64_t C);

MOE_CUDA_BEGIN
template <typename T>
void layernorm_forward_cuda(T* out, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                            double eps, int64_t R, int64_t C) MOE_CUDA_STUB
template <typename T>
void layernorm_backward_cuda(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                             const T* rstd, const T* gamma, int64_t R, int64_t C) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
