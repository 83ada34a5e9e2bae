// activation.h — the FFN nonlinearity (GELU) and inverted dropout.
//
// SPEC §2: the FFN is C -> 4C -> C with GELU in the tanh approximation, "dropout after"; dropout
// (0.1 by default for pretraining) is also applied to embeddings, attention probabilities (that
// one lives inside ops/attention), residual branches and expert outputs.
//
// GELU, tanh form (Hendrycks & Gimpel 2016, the form GPT-2 and fairseq's gelu_accurate use):
//   y = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)
//
// Dropout, "inverted": in training each element is kept with probability 1-p and scaled by
// 1/(1-p), so the expected value is unchanged and evaluation is the identity. The mask comes
// from the caller's counter-based generator (core/philox.h): element i of a draw is kept iff
// u = uniform(seed, stream, first + i) >= p. It is a pure function of the index, so it is the
// same on every machine, for every thread count and on the CPU and the GPU alike, and it is
// never stored: the backward recomputes it (one Philox block per 4 elements, cheaper than
// writing and re-reading a mask tensor).
//
// Every raw function has a CUDA twin with the same name plus `_cuda` and the same arguments
// (cuda/ops/activation.cu); the wrappers pick one by the input's device (core/dispatch.h).
//
// What it leaves out: the exact erf GELU, other activations (ReLU, SwiGLU), and dropout variants
// (DropConnect, per-channel masks).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/dispatch.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace moe {

// y = gelu(x), any shape, f32/f64.
Tensor gelu(const Tensor& x);

// Inverted dropout. Identity (returns x itself, no tape node, nothing drawn) when !training or
// p == 0; otherwise y = x * mask with mask_i = (u_i >= p) / (1 - p), u_i the i-th value of
// numel(x) values taken from `rng`. Needs 0 <= p < 1. Backward: dx = dy * mask (the same mask).
Tensor dropout(const Tensor& x, double p, bool training, CounterRng& rng);

// Which random numbers one dropout call uses (passed by value to the kernels).
struct DropoutMask {
  double p = 0.0;
  PhiloxRange draw;  // value i decides element i
};
// Element i's mask value: 1/(1-p) if kept, else 0. The comparison is made in float on 24-bit
// uniforms, so both devices decide identically.
template <typename T>
MOE_HD T dropout_factor(const DropoutMask& m, int64_t i) {
  const float u = m.draw.uniform(static_cast<uint64_t>(i));
  return u >= static_cast<float>(m.p) ? static_cast<T>(1.0 / (1.0 - m.p)) : T(0);
}

// The same factors read element by element along a run of indices: one Philox block gives four
// consecutive values, so a reader keeps the last block and computes each block once instead of
// once per element (4x fewer Philox evaluations in the CPU loops; the values are identical).
template <typename T>
struct DropoutMaskReader {
  const DropoutMask& m;
  uint64_t block_id = ~uint64_t(0);
  Philox4 block{};
  MOE_HD T factor(int64_t i) {
    const uint64_t index = m.draw.first + static_cast<uint64_t>(i);
    if ((index >> 2) != block_id) {
      block_id = index >> 2;
      block = philox_block(m.draw.seed, m.draw.stream, block_id);
    }
    const float u = bits_to_uniform(block.v[index & 3]);
    return u >= static_cast<float>(m.p) ? static_cast<T>(1.0 / (1.0 - m.p)) : T(0);
  }
};

// ---- raw kernels (contiguous buffers of n elements)
template <typename T>
void gelu_forward(T* out, const T* x, int64_t n);
// dx = dout * gelu'(x); overwrites dx.
template <typename T>
void gelu_backward(T* dx, const T* dout, const T* x, int64_t n);

// out = x * mask, the mask recomputed from m (dropout_factor).
template <typename T>
void dropout_forward(T* out, const T* x, DropoutMask m, int64_t n);
// dx = dout * mask; overwrites dx.
template <typename T>
void dropout_backward(T* dx, const T* dout, DropoutMask m, int64_t n);

MOE_CUDA_BEGIN
template <typename T>
void gelu_forward_cuda(T* out, const T* x, int64_t n) MOE_CUDA_STUB
template <typename T>
void gelu_backward_cuda(T* dx, const T* dout, const T* x, int64_t n) MOE_CUDA_STUB
template <typename T>
void dropout_forward_cuda(T* out, const T* x, DropoutMask m, int64_t n) MOE_CUDA_STUB
template <typename T>
void dropout_backward_cuda(T* dx, const T* dout, DropoutMask m, int64_t n) MOE_CUDA_STUB
MOE_CUDA_END

// ---- exp and tanh for the CPU kernels (GELU here, softmax in ops/softmax_xent and ops/attention)
// In double they are the C library's, so gradient checks see exact math. In float they are short
// inline formulas instead of calls into libm: a call per element cost more than the rest of GELU
// and of the fused loss together, and inline arithmetic lets the compiler vectorise the loop.
//
// exp_fast(float): Cody-Waite range reduction x = n ln2 + f, |f| <= ln2/2, then e^f by its
// Taylor series to degree 7 (truncation error f^8/8! < 6e-9) and 2^n by writing the exponent
// bits. Relative error < 3e-7 (a few float ulps; tests/ops/test_activation.cpp checks it).
// Inputs are clamped to [-87.3, 88.3], where 2^n stays a normal float: exp of very negative x
// gives ~1e-38 instead of 0, which no kernel can tell apart from 0 after adding it to 1.
inline double exp_fast(double x) { return std::exp(x); }
inline float exp_fast(float x) {
  // NaN must come out as NaN, and must not reach the float -> int conversion below (undefined
  // behaviour): route it around the arithmetic with selects, which keep the loop vectorisable.
  const float in = x;
  const bool is_nan = x != x;
  x = is_nan ? 0.0f : x;
  // clamp, written as selects (std::min/max block vectorisation; so does -ftrapping-math, the
  // default: see notes/ops-norm-act-loss-attention.md "Compiler flags")
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round(x / ln2): 1.5 * 2^23
  const float f = (x - n * 0.693359375f) - n * -2.12194440e-4f;    // ln2 = hi + lo, hi exact
  float p = 1.0f / 5040;
  p = p * f + 1.0f / 720;
  p = p * f + 1.0f / 120;
  p = p * f + 1.0f / 24;
  p = p * f + 1.0f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return is_nan ? in : p * scale;
}
// tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|) in (0, 1]: absolute error < 2e-7.
inline double tanh_fast(double x) { return std::tanh(x); }
inline float tanh_fast(float x) {
  const float e = exp_fast(-2.0f * std::fabs(x));
  return std::copysign((1.0f - e) / (1.0f + e), x);
}

}  // namespace moe
