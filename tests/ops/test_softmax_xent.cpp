// Tests for ops/softmax_xent: the loss and per-row NLL against a naive double loop, stability for
// huge logits, ignore_index (including a batch with every row ignored), the gradient formula
// (softmax - onehot) / count, gradient checks in f64, f32 vs f64, thread-count invariance, and
// bad targets/shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "core/parallel.h"
#include "gradcheck.h"
#include "ops/softmax_xent.h"

using namespace moe;
using namespace moe::testing;

namespace {

// Per-row -log softmax(l)_t (0 where t == ignore), computed the textbook way in double.
std::vector<double> naive_rows(const std::vector<double>& l, const std::vector<int32_t>& t,
                               int64_t N, int64_t V, int ignore) {
  std::vector<double> out(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore) continue;
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, l[n * V + v]);
    double z = 0.0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(l[n * V + v] - mx);
    out[n] = -(l[n * V + t[n]] - mx - std::log(z));
  }
  return out;
}

Tensor random_targets(int64_t N, int64_t V, uint64_t seed, double ignore_frac = 0.0) {
  Rng rng(seed);
  std::vector<int32_t> t(N);
  for (auto& x : t) x = rng.uniform() < ignore_frac ? -1 : static_cast<int32_t>(rng.below(V));
  return Tensor::from_i32(t, {N});
}

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{1, 1}, {1, 5}, {3, 7}, {5, 3},
                                                          {7, 1}, {4, 50}};

}  // namespace

TEST(SoftmaxXent, ForwardMatchesNaive) {
  for (auto [N, V] : kShapes) {
    Tensor l = random_f64({N, V}, 1, -4.0, 4.0);
    Tensor t = random_targets(N, V, 2, 0.3);
    std::vector<double> rows = naive_rows(l.to_f64_vector(), t.to_i32_vector(), N, V, -1);
    double total = 0.0;
    int count = 0;
    for (int64_t n = 0; n < N; ++n) {
      total += rows[n];
      count += t.to_i32_vector()[n] != -1;
    }
    Tensor loss = softmax_cross_entropy(l, t);
    EXPECT_EQ(loss.shape(), Shape{});
    EXPECT_NEAR(loss.item(), count ? total / count : 0.0, 1e-12) << N << "x" << V;
    std::vector<double> got = cross_entropy_rows(l, t).to_f64_vector();
    for (int64_t n = 0; n < N; ++n) EXPECT_NEAR(got[n], rows[n], 1e-12);
  }
}

TEST(SoftmaxXent, HugeLogitsAreStable) {
  // Shifting a row by a constant leaves softmax unchanged; exp(1000) would overflow.
  Tensor l = random_f64({3, 6}, 3);
  std::vector<double> shifted = l.to_f64_vector();
  for (double& v : shifted) v += 1000.0;
  Tensor t = Tensor::from_i32({0, 5, 2}, {3});
  const double a = softmax_cross_entropy(l, t).item();
  const double b = softmax_cross_entropy(Tensor::from_f64(shifted, {3, 6}), t).item();
  EXPECT_TRUE(std::isfinite(b));
  EXPECT_NEAR(a, b, 1e-10);
  Tensor l32 = Tensor::from_f32({1e30f, -1e30f, 0.0f}, {1, 3});
  EXPECT_NEAR(softmax_cross_entropy(l32, Tensor::from_i32({0}, {1})).item(), 0.0, 1e-6);
}

TEST(SoftmaxXent, GradientIsSoftmaxMinusOneHotOverCount) {
  const int64_t N = 4, V = 5;
  Tensor l = param_f64({N, V}, 4);
  Tensor t = Tensor::from_i32({1, -1, 4, 0}, {N});  // 3 kept rows
  backward(softmax_cross_entropy(l, t));
  std::vector<double> lv = l.to_f64_vector(), g = l.grad().to_f64_vector();
  std::vector<int32_t> tv = t.to_i32_vector();
  for (int64_t n = 0; n < N; ++n) {
    double z = 0.0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(lv[n * V + v]);
    for (int64_t v = 0; v < V; ++v) {
      const double want = tv[n] == -1 ? 0.0 : (std::exp(lv[n * V + v]) / z - (v == tv[n])) / 3;
      EXPECT_NEAR(g[n * V + v], want, 1e-14) << n << "," << v;
    }
  }
}

TEST(SoftmaxXent, IgnoreIndex) {
  Tensor l = random_f64({4, 3}, 5);
  // a custom ignore_index inside [0, V): rows with target 2 are skipped
  Tensor t = Tensor::from_i32({2, 0, 2, 1}, {4});
  std::vector<double> rows = naive_rows(l.to_f64_vector(), t.to_i32_vector(), 4, 3, 2);
  EXPECT_NEAR(softmax_cross_entropy(l, t, 2).item(), (rows[1] + rows[3]) / 2, 1e-12);
  EXPECT_EQ(cross_entropy_rows(l, t, 2).at({0}), 0.0);
  // all rows ignored: loss 0, gradient 0 (not NaN)
  Tensor lp = param_f64({2, 3}, 6);
  Tensor loss = softmax_cross_entropy(lp, Tensor::from_i32({-1, -1}, {2}));
  EXPECT_EQ(loss.item(), 0.0);
  backward(loss);
  for (double v : lp.grad().to_f64_vector()) EXPECT_EQ(v, 0.0);
}

TEST(SoftmaxXent, GradCheck) {
  auto f = [](const std::vector<Tensor>& in) { return softmax_cross_entropy(in[0], in[1]); };
  for (auto [N, V] : kShapes) {
    expect_gradcheck(f, {param_f64({N, V}, 7, -3.0, 3.0), random_targets(N, V, 8, 0.25)});
  }
}

TEST(SoftmaxXent, RowsHaveNoAutograd) {
  Tensor l = param_f64({3, 4}, 9);
  Tensor rows = cross_entropy_rows(l, Tensor::from_i32({0, 1, 2}, {3}));
  EXPECT_FALSE(rows.requires_grad());
  EXPECT_EQ(rows.shape(), Shape{3});
}

TEST(SoftmaxXent, F32MatchesF64) {
  const int64_t N = 9, V = 37;
  Tensor l = param_f64({N, V}, 10, -5.0, 5.0);
  Tensor l32 = l.detach().to(DType::F32).set_requires_grad(true);
  Tensor t = random_targets(N, V, 11, 0.2);
  Tensor a = softmax_cross_entropy(l, t), b = softmax_cross_entropy(l32, t);
  EXPECT_NEAR(b.item(), a.item(), 1e-5);
  backward(a);
  backward(b);
  std::vector<double> ga = l.grad().to_f64_vector(), gb = l32.grad().to_f64_vector();
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(gb[i], ga[i], 1e-6);
}

TEST(SoftmaxXent, SameBitsForAnyThreadCount) {
  const int64_t N = 513, V = 97;
  Tensor l = random_f64({N, V}, 12, -6.0, 6.0).to(DType::F32);
  Tensor t = random_targets(N, V, 13, 0.1);
  std::vector<std::vector<float>> runs;
  const int before = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tensor lp = l.clone().set_requires_grad(true);
    Tensor loss = softmax_cross_entropy(lp, t);
    backward(loss);
    std::vector<float> all = lp.grad().to_f32_vector();
    all.push_back(static_cast<float>(loss.item()));
    runs.push_back(all);
  }
  set_num_threads(before);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(SoftmaxXent, Errors) {
  Tensor l = Tensor::zeros({3, 4});
  EXPECT_THROW(softmax_cross_entropy(l, Tensor::from_i32({0, 4, 1}, {3})), Error);   // t == V
  EXPECT_THROW(softmax_cross_entropy(l, Tensor::from_i32({0, -2, 1}, {3})), Error);  // t < 0
  EXPECT_THROW(cross_entropy_rows(l, Tensor::from_i32({0, 9, 1}, {3})), Error);
  EXPECT_THROW(softmax_cross_entropy(l, Tensor::from_i32({0, 1}, {2})), Error);      // N differs
  EXPECT_THROW(softmax_cross_entropy(l, Tensor::zeros({3})), Error);                 // f32 ids
  EXPECT_THROW(softmax_cross_entropy(Tensor::zeros({2, 3, 4}), Tensor::from_i32({0}, {1})),
               Error);
  EXPECT_THROW(softmax_cross_entropy(Tensor::zeros({3, 0}), Tensor::from_i32({0, 0, 0}, {3})),
               Error);
  try {
    softmax_cross_entropy(l, Tensor::from_i32({0, 4, 1}, {3}));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target 4 at row 1"), std::string::npos) << e.what();
  }
}
