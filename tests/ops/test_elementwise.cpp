// Tests for ops/elementwise: forward values by hand, gradients by central differences in f64,
// mixed requires-grad inputs, and gradient accumulation when a tensor is used twice.
#include <gtest/gtest.h>

#include "gradcheck.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;

TEST(Elementwise, ForwardValues) {
  Tensor a = Tensor::from_f32({1, 2, 3}, {3});
  Tensor b = Tensor::from_f32({10, 20, 30}, {3});
  EXPECT_EQ(add(a, b).to_f32_vector(), (std::vector<float>{11, 22, 33}));
  EXPECT_EQ(mul(a, b).to_f32_vector(), (std::vector<float>{10, 40, 90}));
  EXPECT_EQ(scale(a, -2).to_f32_vector(), (std::vector<float>{-2, -4, -6}));
  EXPECT_DOUBLE_EQ(sum(a).item(), 6.0);
  EXPECT_DOUBLE_EQ(mean(b).item(), 20.0);
}

TEST(Elementwise, GradCheck) {
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 7}}) {
    expect_gradcheck([](const std::vector<Tensor>& in) { return add(in[0], in[1]); },
                     {param_f64(s, 1), param_f64(s, 2)});
    expect_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); },
                     {param_f64(s, 3), param_f64(s, 4)});
    expect_gradcheck([](const std::vector<Tensor>& in) { return scale(in[0], 0.37); },
                     {param_f64(s, 5)});
    expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {param_f64(s, 6)});
    expect_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {param_f64(s, 7)});
  }
}

TEST(Elementwise, MixedRequiresGrad) {
  // Only the second operand requires grad: its gradient must be dout * a (not dout * b), and
  // the first must get none. This is the slot-alignment bug seen in small autograd engines.
  Tensor a = Tensor::from_f64({3.0}, {1});
  Tensor b = Tensor::from_f64({5.0}, {1});
  b.set_requires_grad(true);
  backward(sum(mul(a, b)));
  EXPECT_FALSE(a.grad().defined());
  EXPECT_DOUBLE_EQ(b.grad().item(), 3.0);
  expect_gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); },
                   {random_f64({4, 3}, 8), param_f64({4, 3}, 9)});
}

TEST(Elementwise, TensorUsedTwiceAccumulates) {
  // y = x*x + x  =>  dy/dx = 2x + 1
  Tensor x = Tensor::from_f64({2.0, -1.5}, {2});
  x.set_requires_grad(true);
  backward(sum(add(mul(x, x), x)));
  EXPECT_DOUBLE_EQ(x.grad().at({0}), 5.0);
  EXPECT_DOUBLE_EQ(x.grad().at({1}), -2.0);
}

TEST(Elementwise, ShapeMismatchIsAnError) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  EXPECT_THROW(add(a, b), Error);
  try {
    mul(a, b);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
  }
}
