// Tests for ops/attention: forward (with and without a dropout mask) against a naive double
// implementation written from the formula, the saved probabilities (causal zeros, rows sum to 1),
// causality of outputs and of gradients, gradient checks in f64 with dropout off and with a
// fixed-seed mask, f32 vs f64, thread-count invariance, and shape errors.
#include <gtest/gtest.h>

#include <cmath>

#include "core/parallel.h"
#include "gradcheck.h"
#include "ops/attention.h"

using namespace moe;
using namespace moe::testing;

namespace {

struct Dims {
  int64_t B, T, C, NH;
};
// T and hs include 1 and sizes that are multiples of nothing.
const std::vector<Dims> kDims = {{1, 1, 1, 1}, {1, 3, 2, 1}, {2, 5, 6, 3},
                                 {1, 7, 5, 1}, {3, 4, 8, 2}, {2, 6, 12, 4}};

// out[b, t, h*hs + d] = sum_{u <= t} softmax_u(q.k / sqrt(hs)) * m[b, h, t, u] * v[u, d], where
// m is drawn like the op documents (entry (b, h, t, u) is Philox value ((b*NH + h)*T + t)*T + u
// of the generator's stream, seed `seed`, stream 0) when p > 0, and 1 otherwise.
std::vector<double> naive_attention(const std::vector<double>& qkv, Dims d, double p,
                                    uint64_t seed) {
  const int64_t B = d.B, T = d.T, C = d.C, NH = d.NH, hs = C / NH;
  std::vector<double> out(B * T * C, 0.0);
  auto at = [&](int64_t b, int64_t t, int64_t col) { return qkv[(b * T + t) * 3 * C + col]; };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> w(t + 1);
        double mx = -INFINITY;
        for (int64_t u = 0; u <= t; ++u) {
          double s = 0.0;
          for (int64_t k = 0; k < hs; ++k) s += at(b, t, h * hs + k) * at(b, u, C + h * hs + k);
          w[u] = s / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, w[u]);
        }
        double z = 0.0;
        for (double& x : w) z += (x = std::exp(x - mx));
        for (int64_t u = 0; u <= t; ++u) {
          double m = 1.0;
          const uint64_t index = static_cast<uint64_t>(((b * NH + h) * T + t) * T + u);
          if (p > 0.0) m = philox_uniform(seed, 0, index) >= static_cast<float>(p) ? 1.0 / (1.0 - p) : 0.0;
          for (int64_t k = 0; k < hs; ++k)
            out[(b * T + t) * C + h * hs + k] += w[u] / z * m * at(b, u, 2 * C + h * hs + k);
        }
      }
    }
  }
  return out;
}

Tensor attn(const Tensor& qkv, int NH, double p = 0.0, uint64_t seed = 0) {
  CounterRng rng(seed, 0);
  return causal_self_attention(qkv, NH, p, /*training=*/true, rng);
}

}  // namespace

TEST(Attention, ForwardMatchesNaive) {
  for (const Dims& d : kDims) {
    for (double p : {0.0, 0.4}) {
      Tensor qkv = random_f64({d.B, d.T, 3 * d.C}, 1, -2.0, 2.0);
      std::vector<double> want = naive_attention(qkv.to_f64_vector(), d, p, 77);
      Tensor out = attn(qkv, static_cast<int>(d.NH), p, 77);
      ASSERT_EQ(out.shape(), (Shape{d.B, d.T, d.C}));
      std::vector<double> got = out.to_f64_vector();
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_NEAR(got[i], want[i], 1e-12) << "B,T,C,NH = " << d.B << "," << d.T << "," << d.C
                                            << "," << d.NH << " p " << p << " element " << i;
    }
  }
}

TEST(Attention, SavedProbabilitiesAreCausalAndNormalised) {
  const Dims d{2, 6, 6, 2};
  Tensor qkv = random_f64({d.B, d.T, 3 * d.C}, 2, -3.0, 3.0);
  std::vector<double> out(d.B * d.T * d.C), P(d.B * d.NH * d.T * d.T, -1.0);
  attention_forward<double>(out.data(), P.data(), qkv.data<double>(), nullptr, d.B, d.T, d.C,
                            d.NH);
  for (int64_t i = 0; i < d.B * d.NH; ++i) {
    for (int64_t t = 0; t < d.T; ++t) {
      double row = 0.0;
      for (int64_t u = 0; u < d.T; ++u) {
        const double v = P[(i * d.T + t) * d.T + u];
        if (u > t) {
          EXPECT_EQ(v, 0.0);  // no weight on the future
        }
        row += v;
      }
      EXPECT_NEAR(row, 1.0, 1e-14);
    }
  }
}

TEST(Attention, SingleTokenReturnsItsValue) {
  Tensor qkv = random_f64({2, 1, 3 * 4}, 3);
  std::vector<double> out = attn(qkv, 2).to_f64_vector(), in = qkv.to_f64_vector();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 4; ++c) EXPECT_DOUBLE_EQ(out[b * 4 + c], in[b * 12 + 8 + c]);
}

TEST(Attention, LaterTokensDoNotChangeEarlierOutputs) {
  const int64_t B = 2, T = 7, C = 6, t0 = 4;
  Tensor qkv = random_f64({B, T, 3 * C}, 4);
  std::vector<double> changed = qkv.to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = t0; t < T; ++t)
      for (int64_t c = 0; c < 3 * C; ++c) changed[(b * T + t) * 3 * C + c] += 5.0;
  std::vector<double> a = attn(qkv, 3).to_f64_vector();
  std::vector<double> b2 = attn(Tensor::from_f64(changed, {B, T, 3 * C}), 3).to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = (b * T + t) * C + c;
        if (t < t0) {
          EXPECT_EQ(a[i], b2[i]) << "t " << t;  // bitwise unchanged
        } else {
          EXPECT_NE(a[i], b2[i]) << "t " << t;  // and the test can see a change
        }
      }
}

TEST(Attention, GradientOfAnOutputReachesOnlyThePast) {
  const int64_t B = 1, T = 6, C = 4, t0 = 2;
  Tensor qkv = param_f64({B, T, 3 * C}, 5);
  Tensor out = attn(qkv, 2, 0.3, 9);
  std::vector<double> seed(B * T * C, 0.0);
  for (int64_t c = 0; c < C; ++c) seed[t0 * C + c] = 1.0;  // d(sum of out[t0]) / dqkv
  backward(out, Tensor::from_f64(seed, {B, T, C}));
  std::vector<double> g = qkv.grad().to_f64_vector();
  for (int64_t t = t0 + 1; t < T; ++t)
    for (int64_t c = 0; c < 3 * C; ++c) EXPECT_EQ(g[t * 3 * C + c], 0.0) << "t " << t;
}

TEST(Attention, GradCheckNoDropout) {
  for (const Dims& d : kDims) {
    const int NH = static_cast<int>(d.NH);
    expect_gradcheck([NH](const std::vector<Tensor>& in) { return attn(in[0], NH); },
                     {param_f64({d.B, d.T, 3 * d.C}, 6, -1.5, 1.5)});
  }
}

TEST(Attention, GradCheckWithFixedDropoutMask) {
  for (const Dims& d : kDims) {
    const int NH = static_cast<int>(d.NH);
    expect_gradcheck([NH](const std::vector<Tensor>& in) { return attn(in[0], NH, 0.3, 123); },
                     {param_f64({d.B, d.T, 3 * d.C}, 7, -1.5, 1.5)});
  }
}

TEST(Attention, EvalModeIgnoresDropout) {
  Tensor qkv = random_f64({2, 5, 3 * 6}, 8);
  CounterRng rng(1, 0);
  const uint64_t before = rng.offset;
  Tensor a = causal_self_attention(qkv, 3, 0.5, /*training=*/false, rng);
  EXPECT_EQ(rng.offset, before);  // no random numbers drawn
  EXPECT_EQ(a.to_f64_vector(), attn(qkv, 3, 0.0).to_f64_vector());
  EXPECT_NE(attn(qkv, 3, 0.5, 1).to_f64_vector(), a.to_f64_vector());
  EXPECT_EQ(attn(qkv, 3, 0.5, 1).to_f64_vector(), attn(qkv, 3, 0.5, 1).to_f64_vector());
}

TEST(Attention, F32MatchesF64) {
  const int64_t B = 2, T = 9, C = 12;
  Tensor qkv = param_f64({B, T, 3 * C}, 10, -2.0, 2.0);
  Tensor q32 = qkv.detach().to(DType::F32).set_requires_grad(true);
  Tensor seed = random_f64({B, T, C}, 11);
  Tensor a = attn(qkv, 4, 0.2, 5), b = attn(q32, 4, 0.2, 5);  // same seed: same mask
  backward(a, seed);
  backward(b, seed.to(DType::F32));
  std::vector<double> av = a.to_f64_vector(), bv = b.to_f64_vector();
  for (size_t i = 0; i < av.size(); ++i) EXPECT_NEAR(bv[i], av[i], 1e-5);
  std::vector<double> ga = qkv.grad().to_f64_vector(), gb = q32.grad().to_f64_vector();
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(gb[i], ga[i], 1e-5 * (1 + std::fabs(ga[i])));
}

TEST(Attention, SameBitsForAnyThreadCount) {
  const int64_t B = 3, T = 17, C = 20;
  Tensor qkv = random_f64({B, T, 3 * C}, 12).to(DType::F32);
  Tensor seed = random_f64({B, T, C}, 13).to(DType::F32);
  std::vector<std::vector<float>> runs;
  const int before = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tensor x = qkv.clone().set_requires_grad(true);
    Tensor y = attn(x, 5, 0.1, 3);
    backward(y, seed);
    std::vector<float> all = y.to_f32_vector(), g = x.grad().to_f32_vector();
    all.insert(all.end(), g.begin(), g.end());
    runs.push_back(all);
  }
  set_num_threads(before);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(Attention, ShapeErrors) {
  CounterRng rng(0, 0);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({2, 12}), 2, 0.0, false, rng), Error);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({1, 2, 13}), 1, 0.0, false, rng), Error);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({1, 2, 12}), 3, 0.0, false, rng), Error);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({1, 2, 12}), 0, 0.0, false, rng), Error);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({1, 2, 12}), 2, 1.0, true, rng), Error);
  EXPECT_THROW(causal_self_attention(Tensor::zeros({1, 2, 12}, DType::I32), 2, 0.0, false, rng),
               Error);
  try {
    causal_self_attention(Tensor::zeros({1, 2, 12}), 3, 0.0, false, rng);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(1, 2, 12)"), std::string::npos) << e.what();
  }
}
