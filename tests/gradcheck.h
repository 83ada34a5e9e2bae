// gradcheck.h — the one gradient-check routine every op test uses (notes/design.md "Tests").
//
// How it checks an op: inputs are f64 tensors. The op's output `y = f(inputs)` is contracted with
// a fixed random seed tensor R of the same shape, giving the scalar L = sum(y * R) (so every
// output element matters, with different weights). Analytic gradients come from one
// backward(y, R). Numeric gradients come from central differences of L, computed with plain
// double arithmetic on each input element in turn:  dL/dx_i ~ (L(x_i + h) - L(x_i - h)) / 2h.
// Every element of every input that requires grad is checked (no sampling), with
// |analytic - numeric| <= atol + rtol * |numeric|. On failure the first mismatches are printed
// with their index, so a student sees where the derivative is wrong.
//
// Inputs that do not require grad must come back with an undefined gradient — this is the
// mixed requires-grad check (gradient slots must line up with inputs by position).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/autograd.h"
#include "core/rng.h"

namespace moe::testing {

// Random f64 tensor with values in [lo, hi), from a fixed seed.
inline Tensor random_f64(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Rng rng(seed);
  std::vector<double> v(shape_numel(shape));
  for (double& x : v) x = lo + (hi - lo) * rng.uniform();
  return Tensor::from_f64(v, shape);
}

inline double contract(const Tensor& y, const std::vector<double>& r) {
  std::vector<double> yv = y.to_f64_vector();
  double acc = 0.0;
  for (size_t i = 0; i < yv.size(); ++i) acc += yv[i] * r[i];
  return acc;
}

// `f` must build its output from `inputs` only (it is called many times).
inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                             std::vector<Tensor> inputs, double atol = 1e-6,
                             double rtol = 1e-5, double h = 1e-6) {
  for (Tensor& t : inputs) {
    if (t.dtype() != DType::I32) {
      ASSERT_EQ(t.dtype(), DType::F64) << "gradcheck needs f64 inputs";
    }
    if (t.requires_grad()) t.zero_grad();
  }
  Tensor y = f(inputs);
  ASSERT_TRUE(y.requires_grad()) << "output does not require grad";
  Tensor r = random_f64(y.shape(), 12345, -1.0, 1.0);
  std::vector<double> rv = r.to_f64_vector();
  backward(y, r);

  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    Tensor g = x.grad();
    ASSERT_TRUE(g.defined()) << "input " << k << " requires grad but got none";
    ASSERT_EQ(g.shape(), x.shape()) << "input " << k;
    std::vector<double> gv = g.to_f64_vector();
    double* xp = x.data<double>();
    int failures = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = xp[i];
      double lp, lm;
      {
        NoGradGuard ng;
        xp[i] = orig + h;
        lp = contract(f(inputs), rv);
        xp[i] = orig - h;
        lm = contract(f(inputs), rv);
      }
      xp[i] = orig;
      const double num = (lp - lm) / (2 * h);
      if (std::fabs(gv[i] - num) > atol + rtol * std::fabs(num)) {
        if (++failures <= 5)
          ADD_FAILURE() << "input " << k << " element " << i << ": analytic " << gv[i]
                        << " vs numeric " << num;
      }
    }
    EXPECT_EQ(failures, 0) << "input " << k << " of shape " << shape_str(x.shape()) << ": "
                           << failures << " of " << x.numel() << " elements mismatch";
  }
}

// A leaf input for gradcheck: random f64, requires grad.
inline Tensor param_f64(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Tensor t = random_f64(shape, seed, lo, hi);
  t.set_requires_grad(true);
  return t;
}

}  // namespace moe::testing
