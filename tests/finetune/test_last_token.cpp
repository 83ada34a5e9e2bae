// Tests for finetune/last_token: the gather of one position per sequence (forward against a naive
// loop, backward = scatter into zeros), f64 gradient checks of the op and of the whole head path
// (gather + linear + cross-entropy, SPEC §7), mixed requires-grad, and the error messages.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "finetune/last_token.h"
#include "gradcheck.h"
#include "ops/linear.h"
#include "ops/softmax_xent.h"

using namespace moe;
using namespace moe::testing;

TEST(LastToken, ForwardPicksTheLastRealPosition) {
  const int64_t B = 3, T = 5, C = 4;
  Tensor h = random_f64({B, T, C}, 7);
  Tensor len = Tensor::from_i32({5, 1, 3}, {B});
  Tensor z = last_token(h, len);
  ASSERT_EQ(z.shape(), (Shape{B, C}));
  const std::vector<double> hv = h.to_f64_vector(), zv = z.to_f64_vector();
  const int pos[3] = {4, 0, 2};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      EXPECT_EQ(zv[b * C + c], hv[(b * T + pos[b]) * C + c]) << "b " << b << " c " << c;
}

TEST(LastToken, BackwardScattersIntoZeros) {
  const int64_t B = 2, T = 4, C = 3;
  Tensor h = param_f64({B, T, C}, 3);
  Tensor z = gather_rows(h, Tensor::from_i32({2, 0}, {B}));
  Tensor seed = random_f64({B, C}, 11);
  backward(z, seed);
  const std::vector<double> g = h.grad().to_f64_vector(), s = seed.to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const double want = (t == (b == 0 ? 2 : 0)) ? s[b * C + c] : 0.0;
        EXPECT_EQ(g[(b * T + t) * C + c], want) << b << "," << t << "," << c;
      }
}

TEST(LastToken, GradCheckGather) {
  struct Case { int64_t B, T, C; std::vector<int32_t> idx; };
  for (const Case& k : {Case{1, 1, 1, {0}}, Case{3, 5, 7, {4, 0, 2}}, Case{4, 3, 5, {1, 1, 2, 0}},
                        Case{2, 7, 3, {6, 6}}}) {
    Tensor idx = Tensor::from_i32(k.idx, {k.B});
    expect_gradcheck([idx](const std::vector<Tensor>& in) { return gather_rows(in[0], idx); },
                     {param_f64({k.B, k.T, k.C}, 5)});
  }
}

// The whole head of SPEC §7 in f64: hidden (B, T, C) -> last token -> linear (K, C) -> mean
// cross-entropy. Every element of hidden, W and b is checked.
TEST(LastToken, GradCheckHeadPath) {
  const int64_t B = 4, T = 6, C = 5, K = 3;
  Tensor len = Tensor::from_i32({6, 2, 1, 4}, {B});
  Tensor labels = Tensor::from_i32({2, 0, 1, 2}, {B});
  auto head = [len, labels](const std::vector<Tensor>& in) {
    Tensor logits = linear(last_token(in[0], len), in[1], in[2]);  // (B, K)
    return softmax_cross_entropy(logits, labels);
  };
  expect_gradcheck(head, {param_f64({B, T, C}, 1), param_f64({K, C}, 2), param_f64({K}, 3)});
  // and the logits themselves (every output element weighted differently by gradcheck)
  auto logits_of = [len](const std::vector<Tensor>& in) {
    return linear(last_token(in[0], len), in[1], in[2]);
  };
  expect_gradcheck(logits_of, {param_f64({B, T, C}, 4), param_f64({K, C}, 5), param_f64({K}, 6)});
}

TEST(LastToken, MixedRequiresGrad) {
  // hidden without grad, head with grad: the head gets gradients, hidden's slot stays empty.
  Tensor h = random_f64({2, 3, 4}, 1);
  Tensor len = Tensor::from_i32({3, 1}, {2});
  expect_gradcheck([h, len](const std::vector<Tensor>& in) {
    return linear(last_token(h, len), in[0], in[1]);
  }, {param_f64({2, 4}, 2), param_f64({2}, 3)});
  EXPECT_FALSE(h.grad().defined());
  // no input requires grad: no node is recorded
  EXPECT_FALSE(last_token(h, len).requires_grad());
}

TEST(LastToken, F32MatchesF64) {
  Tensor h64 = random_f64({3, 4, 5}, 9);
  Tensor len = Tensor::from_i32({1, 4, 2}, {3});
  const std::vector<float> a = last_token(h64.to(DType::F32), len).to_f32_vector();
  const std::vector<double> b = last_token(h64, len).to_f64_vector();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], static_cast<float>(b[i]));
}

TEST(LastToken, Errors) {
  Tensor h = random_f64({2, 3, 4}, 1);
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message([&] { last_token(h, Tensor::from_i32({0, 2}, {2})); }).find("length 0"),
            std::string::npos);
  EXPECT_NE(message([&] { last_token(h, Tensor::from_i32({4, 2}, {2})); }).find("[1, 3]"),
            std::string::npos);
  EXPECT_NE(message([&] { last_token(h, Tensor::from_i32({1, 2, 3}, {3})); }).find("(2,)"),
            std::string::npos);
  EXPECT_NE(message([&] { gather_rows(h, Tensor::from_i32({-1, 0}, {2})); }).find("index[0] = -1"),
            std::string::npos);
  EXPECT_NE(message([&] { gather_rows(random_f64({2, 3}, 1), Tensor::from_i32({0, 0}, {2})); })
                .find("(B, T, C)"),
            std::string::npos);
  EXPECT_THROW(last_token(h, Tensor::from_f64({1, 1}, {2})), Error);  // lengths must be i32
}
