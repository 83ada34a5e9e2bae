// The tape engine: topological order on shared subgraphs, accumulation, no_grad, one backward per
// graph, no recursion on deep graphs, gradients kept only for leaves.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "core/autograd.h"
#include "ops/elementwise.h"

using namespace moe;

TEST(Autograd, DiamondGraphAddsBothPaths) {
  // y = (x*a) + (x*b) with x shared: dy/dx = a + b, visited once each in topological order.
  Tensor x = Tensor::from_f64({2.0}, {1}).set_requires_grad(true);
  Tensor a = Tensor::from_f64({3.0}, {1});
  Tensor b = Tensor::from_f64({5.0}, {1});
  Tensor h = scale(x, 1.0);  // an interior node used by both branches
  backward(sum(add(mul(h, a), mul(h, b))));
  EXPECT_DOUBLE_EQ(x.grad().item(), 8.0);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCallsUntilZeroed) {
  Tensor x = Tensor::from_f64({1.0, 2.0}, {2}).set_requires_grad(true);
  backward(sum(scale(x, 3.0)));
  backward(sum(scale(x, 3.0)));
  EXPECT_EQ(x.grad().to_f64_vector(), (std::vector<double>{6.0, 6.0}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  Tensor y;
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    y = scale(x, 2.0);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(backward(sum(y)), Error);  // nothing requires grad: a clear error
}

TEST(Autograd, SecondBackwardThroughTheSameGraphIsAnError) {
  Tensor x = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  Tensor loss = sum(scale(x, 2.0));
  backward(loss);
  try {
    backward(loss);
    FAIL() << "the graph's closures were released";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Autograd, DeepChainDoesNotRecurse) {
  // 200,000 nodes deep: a recursive traversal would overflow the stack.
  Tensor x = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = scale(y, 1.0);
  backward(sum(y));
  EXPECT_DOUBLE_EQ(x.grad().item(), 1.0);
}

TEST(Autograd, InteriorGradientsAreNotKept) {
  Tensor x = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  Tensor h = scale(x, 2.0);
  backward(sum(h));
  EXPECT_FALSE(h.grad().defined());
  EXPECT_DOUBLE_EQ(x.grad().item(), 2.0);
}

TEST(Autograd, LeafGradientIsItsOwnBuffer) {
  // add's backward hands the same tensor to both inputs; each leaf must get a private copy so
  // that scaling one gradient in place (clipping) does not change the other.
  Tensor a = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  Tensor b = Tensor::from_f64({1.0}, {1}).set_requires_grad(true);
  backward(sum(add(a, b)));
  Tensor ga = a.grad();
  scale_inplace(ga, 10.0);
  EXPECT_DOUBLE_EQ(a.grad().item(), 10.0);
  EXPECT_DOUBLE_EQ(b.grad().item(), 1.0);
}

// The leaf hook (LeafReadyScope) fires once per leaf, when its gradient is final: here `a` is used
// at both ends of a chain, so a hook fired at its first accumulation would see half of it; `c`,
// used only by the last op, is final first. What the hook saw must equal the gradient in the end.
TEST(Autograd, LeafHookFiresOnceWhenTheGradientIsFinal) {
  Tensor a = Tensor::from_f64({1.0, 2.0}, {2}).set_requires_grad(true);
  Tensor b = Tensor::from_f64({3.0, -1.0}, {2}).set_requires_grad(true);
  Tensor c = Tensor::from_f64({0.5, 4.0}, {2}).set_requires_grad(true);
  std::vector<std::pair<AutogradMeta*, std::vector<double>>> seen;
  {
    LeafReadyScope hook([&seen](AutogradMeta& leaf) {
      seen.push_back({&leaf, leaf.grad.defined() ? leaf.grad.to_f64_vector() : std::vector<double>{}});
    });
    Tensor h = mul(a, b);                            // a used first ...
    for (int i = 0; i < 3; ++i) h = scale(h, 2.0);   // (a chain in between)
    backward(sum(mul(add(h, a), c)));                // ... and last, with c
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, c.meta().get());          // c: only the last op uses it
  for (Tensor* t : {&a, &b, &c}) {
    int times = 0;
    for (const auto& [leaf, g] : seen)
      if (leaf == t->meta().get()) {
        ++times;
        EXPECT_EQ(g, t->grad().to_f64_vector());
      }
    EXPECT_EQ(times, 1);
  }
  // Without a scope, no hook.
  seen.clear();
  backward(sum(mul(a, c)));
  EXPECT_TRUE(seen.empty());
}
