// elementwise.h — the glue primitives: add, mul, scale, sum, mean (DESIGN.md "The core").
//
// These are the few small ops the model uses between its coarse layer ops (the residual add
// `h = x + Attn(LN1(x))` of SPEC §2, summing loss terms in SPEC §3 step 10). No broadcasting:
// operands of add/mul have the same shape, which keeps every backward a one-liner.
//
// Each op: forward and backward as a pair of plain functions on raw pointers (templated on float
// and double), wrapped by a Tensor function that records the backward on the tape.
#pragma once
#include "core/tensor.h"

namespace moe {

// out = a + b                 a, b: any shape (same)     backward: da = dout, db = dout
Tensor add(const Tensor& a, const Tensor& b);
// out = a * b (elementwise)   a, b: any shape (same)     backward: da = dout*b, db = dout*a
Tensor mul(const Tensor& a, const Tensor& b);
// out = s * x                 s: a constant               backward: dx = s*dout
Tensor scale(const Tensor& x, double s);
// out = sum of all elements   -> shape ()                 backward: dx = dout (every element)
Tensor sum(const Tensor& x);
// out = mean of all elements  -> shape ()                 backward: dx = dout / numel
Tensor mean(const Tensor& x);

// No-grad helpers used by the engine and the optimizer (never recorded on the tape).
void add_inplace(Tensor& dst, const Tensor& src);  // dst += src, both contiguous, same shape
void scale_inplace(Tensor& dst, double s);         // dst *= s

}  // namespace moe
