// Tests for ops/layernorm: forward against a naive double loop, gradients by central differences
// in f64 for x, gamma and beta (all and mixed requires-grad), f32 vs f64, non-contiguous input,
// thread-count invariance, and shape/dtype errors.
#include <gtest/gtest.h>

#include <cmath>

#include "core/parallel.h"
#include "gradcheck.h"
#include "ops/layernorm.h"

using namespace moe;
using namespace moe::testing;

namespace {

// y[r, c] = (x[r, c] - mean_r) / sqrt(var_r + eps) * gamma[c] + beta[c], biased variance.
std::vector<double> naive_layernorm(const std::vector<double>& x, const std::vector<double>& g,
                                    const std::vector<double>& b, int64_t R, int64_t C,
                                    double eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < R; ++r) {
    double mean = 0.0;
    for (int64_t c = 0; c < C; ++c) mean += x[r * C + c];
    mean /= C;
    double var = 0.0;
    for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mean) * (x[r * C + c] - mean);
    var /= C;
    for (int64_t c = 0; c < C; ++c)
      y[r * C + c] = (x[r * C + c] - mean) / std::sqrt(var + eps) * g[c] + b[c];
  }
  return y;
}

const std::vector<Shape> kShapes = {Shape{1, 1}, Shape{2, 1}, Shape{1, 3}, Shape{3, 5},
                                    Shape{2, 3, 7}, Shape{5}, Shape{4, 64}};

}  // namespace

TEST(LayerNorm, ForwardMatchesNaive) {
  for (const Shape& s : kShapes) {
    const int64_t C = s.back(), R = shape_numel(s) / C;
    Tensor x = random_f64(s, 1, -3.0, 3.0);
    Tensor g = random_f64({C}, 2, 0.5, 1.5), b = random_f64({C}, 3);
    std::vector<double> want = naive_layernorm(x.to_f64_vector(), g.to_f64_vector(),
                                               b.to_f64_vector(), R, C, 1e-5);
    Tensor y = layernorm(x, g, b);
    ASSERT_EQ(y.shape(), s);
    std::vector<double> got = y.to_f64_vector();
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-12) << "shape " << shape_str(s) << " element " << i;
  }
}

TEST(LayerNorm, NormalisedRowsHaveZeroMeanUnitVariance) {
  const int64_t R = 6, C = 33;
  Tensor x = random_f64({R, C}, 4, 100.0, 101.0);  // large mean, small spread: two-pass variance
  Tensor y = layernorm(x, Tensor::full({C}, 1.0, DType::F64), Tensor::zeros({C}, DType::F64));
  std::vector<double> v = y.to_f64_vector();
  for (int64_t r = 0; r < R; ++r) {
    double m = 0.0, q = 0.0;
    for (int64_t c = 0; c < C; ++c) m += v[r * C + c];
    for (int64_t c = 0; c < C; ++c) q += v[r * C + c] * v[r * C + c];
    EXPECT_NEAR(m / C, 0.0, 1e-9);
    EXPECT_NEAR(q / C, 1.0, 1e-3);  // eps = 1e-5 against a variance of ~1/12
  }
}

TEST(LayerNorm, ConstantRowGivesBeta) {
  Tensor x = Tensor::full({2, 4}, 7.0, DType::F64);
  Tensor g = random_f64({4}, 5), b = random_f64({4}, 6);
  std::vector<double> y = layernorm(x, g, b).to_f64_vector(), bv = b.to_f64_vector();
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(y[i], bv[i % 4]);
}

TEST(LayerNorm, GradCheck) {
  auto f = [](const std::vector<Tensor>& in) { return layernorm(in[0], in[1], in[2]); };
  for (const Shape& s : kShapes) {
    if (shape_numel(s) > 64) continue;  // keep central differences fast
    const int64_t C = s.back();
    expect_gradcheck(f, {param_f64(s, 10, -2.0, 2.0), param_f64({C}, 11, 0.5, 1.5),
                         param_f64({C}, 12)});
  }
  expect_gradcheck(f, {param_f64({3, 40}, 13, -2.0, 2.0), param_f64({40}, 14),
                       param_f64({40}, 15)});
}

TEST(LayerNorm, MixedRequiresGrad) {
  auto f = [](const std::vector<Tensor>& in) { return layernorm(in[0], in[1], in[2]); };
  const Shape s{3, 7};
  // only x; only gamma; only beta; x and beta
  expect_gradcheck(f, {param_f64(s, 20), random_f64({7}, 21), random_f64({7}, 22)});
  expect_gradcheck(f, {random_f64(s, 20), param_f64({7}, 21), random_f64({7}, 22)});
  expect_gradcheck(f, {random_f64(s, 20), random_f64({7}, 21), param_f64({7}, 22)});
  expect_gradcheck(f, {param_f64(s, 20), random_f64({7}, 21), param_f64({7}, 22)});
}

TEST(LayerNorm, F32MatchesF64) {
  const Shape s{5, 3, 19};
  Tensor x = random_f64(s, 30, -2.0, 2.0), g = param_f64({19}, 31), b = param_f64({19}, 32);
  x.set_requires_grad(true);
  Tensor x32 = x.detach().to(DType::F32).set_requires_grad(true);
  Tensor g32 = g.detach().to(DType::F32).set_requires_grad(true);
  Tensor b32 = b.detach().to(DType::F32).set_requires_grad(true);
  Tensor seed = random_f64(s, 33);
  backward(layernorm(x, g, b), seed);
  Tensor y32 = layernorm(x32, g32, b32);
  backward(y32, seed.to(DType::F32));
  std::vector<double> y64 = layernorm(x.detach(), g.detach(), b.detach()).to_f64_vector();
  std::vector<double> y32v = y32.to_f64_vector();
  for (size_t i = 0; i < y64.size(); ++i) EXPECT_NEAR(y32v[i], y64[i], 1e-5);
  for (auto [a, b2] : {std::pair{x.grad(), x32.grad()}, std::pair{g.grad(), g32.grad()},
                       std::pair{b.grad(), b32.grad()}}) {
    std::vector<double> u = a.to_f64_vector(), w = b2.to_f64_vector();
    for (size_t i = 0; i < u.size(); ++i) EXPECT_NEAR(w[i], u[i], 1e-4 * (1 + std::fabs(u[i])));
  }
}

TEST(LayerNorm, NonContiguousInput) {
  Tensor base = random_f64({6, 4}, 40);
  Tensor xt = base.transpose_view(0, 1);  // (4, 6), not contiguous
  Tensor g = random_f64({6}, 41), b = random_f64({6}, 42);
  EXPECT_EQ(layernorm(xt, g, b).to_f64_vector(), layernorm(xt.contiguous(), g, b).to_f64_vector());
}

TEST(LayerNorm, SameBitsForAnyThreadCount) {
  const int64_t R = 300, C = 77;  // big enough that both row and column loops split
  Tensor x = random_f64({R, C}, 50).to(DType::F32), seed = random_f64({R, C}, 51).to(DType::F32);
  std::vector<std::vector<float>> runs;
  const int before = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tensor xl = x.clone().set_requires_grad(true);
    Tensor g = Tensor::full({C}, 1.1).set_requires_grad(true);
    Tensor b = Tensor::zeros({C}).set_requires_grad(true);
    Tensor y = layernorm(xl, g, b);
    backward(y, seed);
    std::vector<float> all = y.to_f32_vector();
    for (const Tensor& t : {xl.grad(), g.grad(), b.grad()}) {
      std::vector<float> v = t.to_f32_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    runs.push_back(all);
  }
  set_num_threads(before);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(LayerNorm, ShapeAndDtypeErrors) {
  Tensor x = Tensor::zeros({2, 5}), g = Tensor::zeros({5}), b = Tensor::zeros({5});
  EXPECT_THROW(layernorm(x, Tensor::zeros({4}), b), Error);
  EXPECT_THROW(layernorm(x, g, Tensor::zeros({5, 1})), Error);
  EXPECT_THROW(layernorm(Tensor::zeros({}), g, b), Error);
  EXPECT_THROW(layernorm(x, Tensor::zeros({5}, DType::F64), b), Error);
  EXPECT_THROW(layernorm(x, g, b, 0.0), Error);
  try {
    layernorm(x, Tensor::zeros({4}), b);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 5)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(4,)"), std::string::npos) << e.what();
  }
}
