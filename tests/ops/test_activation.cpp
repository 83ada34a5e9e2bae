// Tests for ops/activation: GELU (tanh form) against a naive double formula and known values,
// gradients in f64, f32 vs f64; dropout's identity cases, mask statistics and scaling,
// determinism by seed, backward with the same mask, gradient check with a fixed mask, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "core/parallel.h"
#include "gradcheck.h"
#include "ops/activation.h"

using namespace moe;
using namespace moe::testing;

namespace {

double naive_gelu(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// exp_fast / tanh_fast (the float path of GELU and of every softmax)

TEST(FastMath, FloatExpIsAccurateToAFewUlps) {
  double worst = 0.0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 200000;  // normal results only
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(exp_fast(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(exp_fast(0.0f), 1.0f);
  EXPECT_LT(exp_fast(-1000.0f), 1e-37f);  // clamped, tiny, finite and not negative
  EXPECT_GE(exp_fast(-1000.0f), 0.0f);
  EXPECT_DOUBLE_EQ(exp_fast(-0.3), std::exp(-0.3));  // double is the C library's
}

TEST(FastMath, FloatTanhIsAccurate) {
  double worst = 0.0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -12.0f + 24.0f * static_cast<float>(i) / 200000;
    worst = std::max(worst, std::fabs(tanh_fast(x) - std::tanh(static_cast<double>(x))));
  }
  EXPECT_LT(worst, 2e-7);
  EXPECT_EQ(tanh_fast(0.0f), 0.0f);
  EXPECT_EQ(tanh_fast(50.0f), 1.0f);
  EXPECT_EQ(tanh_fast(-50.0f), -1.0f);
}

// ---------------------------------------------------------------------------------------------
// GELU

TEST(Gelu, ForwardMatchesNaive) {
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 5}}) {
    Tensor x = random_f64(s, 1, -5.0, 5.0);
    std::vector<double> xv = x.to_f64_vector(), y = gelu(x).to_f64_vector();
    ASSERT_EQ(gelu(x).shape(), s);
    for (size_t i = 0; i < xv.size(); ++i) EXPECT_NEAR(y[i], naive_gelu(xv[i]), 1e-14);
  }
}

TEST(Gelu, KnownValues) {
  Tensor x = Tensor::from_f64({0.0, 1.0, -1.0, 10.0, -10.0}, {5});
  std::vector<double> y = gelu(x).to_f64_vector();
  EXPECT_DOUBLE_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.8411919906, 1e-9);   // tanh-form GELU(1)
  EXPECT_NEAR(y[2], -0.1588080094, 1e-9);  // GELU(-1) = GELU(1) - 1
  EXPECT_NEAR(y[3], 10.0, 1e-12);          // ~identity for large x
  EXPECT_NEAR(y[4], 0.0, 1e-12);           // ~0 for very negative x
}

TEST(Gelu, GradCheck) {
  auto f = [](const std::vector<Tensor>& in) { return gelu(in[0]); };
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 5}})
    expect_gradcheck(f, {param_f64(s, 2, -4.0, 4.0)});
}

TEST(Gelu, NoGradInputGivesNoNode) {
  Tensor x = random_f64({3}, 3);
  EXPECT_FALSE(gelu(x).requires_grad());
}

TEST(Gelu, F32MatchesF64) {
  Tensor x = param_f64({4, 33}, 4, -6.0, 6.0);
  Tensor x32 = x.detach().to(DType::F32).set_requires_grad(true);
  Tensor seed = random_f64({4, 33}, 5);
  Tensor y = gelu(x), y32 = gelu(x32);
  backward(y, seed);
  backward(y32, seed.to(DType::F32));
  std::vector<double> a = y.to_f64_vector(), b = y32.to_f64_vector();
  std::vector<double> ga = x.grad().to_f64_vector(), gb = x32.grad().to_f64_vector();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(b[i], a[i], 1e-6 * (1 + std::fabs(a[i])));
    EXPECT_NEAR(gb[i], ga[i], 1e-6 * (1 + std::fabs(ga[i])));
  }
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST(Dropout, IdentityInEvalOrWithZeroP) {
  Tensor x = param_f64({3, 4}, 10);
  CounterRng rng(1, 0);
  const uint64_t before = rng.offset;
  Tensor a = dropout(x, 0.5, /*training=*/false, rng);
  Tensor b = dropout(x, 0.0, /*training=*/true, rng);
  EXPECT_EQ(a.raw_data(), x.raw_data());  // the same tensor: no copy
  EXPECT_EQ(b.raw_data(), x.raw_data());
  EXPECT_EQ(a.meta(), x.meta());          // and no tape node
  EXPECT_EQ(rng.offset, before);          // and no random numbers drawn
}

TEST(Dropout, MaskFractionAndScale) {
  const int64_t n = 200000;
  const double p = 0.3;
  CounterRng rng(7, 0);
  std::vector<float> y = dropout(Tensor::full({n}, 2.0), p, true, rng).to_f32_vector();
  int64_t dropped = 0;
  for (float v : y) {
    if (v == 0.0f) {
      ++dropped;
    } else {
      EXPECT_FLOAT_EQ(v, static_cast<float>(2.0 / (1.0 - p)));
    }
  }
  // binomial: std of the fraction is sqrt(p(1-p)/n) ~ 0.001; allow 5 sigma
  EXPECT_NEAR(static_cast<double>(dropped) / n, p, 0.005);
  double mean = 0.0;
  for (float v : y) mean += v;
  EXPECT_NEAR(mean / n, 2.0, 0.02);  // inverted dropout keeps the expectation
}

TEST(Dropout, DeterministicBySeed) {
  Tensor x = random_f64({1000}, 11);
  CounterRng r1(42, 0), r2(42, 0), r3(43, 0);
  std::vector<double> a = dropout(x, 0.5, true, r1).to_f64_vector();
  std::vector<double> b = dropout(x, 0.5, true, r2).to_f64_vector();
  std::vector<double> c = dropout(x, 0.5, true, r3).to_f64_vector();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(dropout(x, 0.5, true, r1).to_f64_vector(), a);  // the rng moved on
  // and the mask does not depend on the thread count
  const int before = num_threads();
  set_num_threads(1);
  CounterRng r4(42, 0);
  std::vector<double> d = dropout(random_f64({100000}, 12), 0.5, true, r4).to_f64_vector();
  set_num_threads(before);
  CounterRng r5(42, 0);
  EXPECT_EQ(dropout(random_f64({100000}, 12), 0.5, true, r5).to_f64_vector(), d);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  Tensor x = random_f64({5, 9}, 13, 0.5, 1.5);  // no zeros, so y == 0 <=> dropped
  x.set_requires_grad(true);
  CounterRng rng(3, 0);
  Tensor y = dropout(x, 0.4, true, rng);
  Tensor seed = Tensor::full({5, 9}, 1.0, DType::F64);
  backward(y, seed);
  std::vector<double> yv = y.to_f64_vector(), xv = x.to_f64_vector(),
                      gv = x.grad().to_f64_vector();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_DOUBLE_EQ(gv[i], yv[i] / xv[i]);  // = mask
}

TEST(Dropout, GradCheckWithFixedMask) {
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 5}}) {
    expect_gradcheck([](const std::vector<Tensor>& in) {
      CounterRng rng(99, 0);  // reseeded on every call: the same mask each time
      return dropout(in[0], 0.35, true, rng);
    }, {param_f64(s, 14)});
  }
}

// The mask is a pure function of (seed, stream, index): the value the generator's documentation
// promises, element by element, and a second draw continues the stream where the first stopped.
TEST(Dropout, MaskIsPhiloxOfTheIndex) {
  const double p = 0.5;
  CounterRng rng(5, 3);
  Tensor x = Tensor::full({10}, 1.0);
  std::vector<float> a = dropout(x, p, true, rng).to_f32_vector();
  EXPECT_EQ(rng.offset, 12u) << "10 values, rounded up to whole Philox blocks of 4";
  for (int i = 0; i < 10; ++i) {
    const bool keep = philox_uniform(5, 3, i) >= 0.5f;
    EXPECT_EQ(a[i], keep ? 2.0f : 0.0f) << i;
  }
  std::vector<float> b = dropout(x, p, true, rng).to_f32_vector();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b[i], philox_uniform(5, 3, 12 + i) >= 0.5f ? 2.0f : 0.0f);
}

TEST(Dropout, Errors) {
  CounterRng rng(0, 0);
  Tensor x = Tensor::zeros({4});
  EXPECT_THROW(dropout(x, 1.0, true, rng), Error);
  EXPECT_THROW(dropout(x, -0.1, true, rng), Error);
  EXPECT_THROW(dropout(x, 1.5, false, rng), Error);  // bad p is an error even in eval
  EXPECT_THROW(dropout(Tensor::zeros({4}, DType::I32), 0.1, true, rng), Error);
}
