// Tests for moe/experts: the batched expert FFN against naive per-expert double loops, f64
// gradient checks of all five inputs (together and one at a time), independence of the experts,
// f32 against f64, the same bits with 1 and 2 threads, and shape errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "moe/experts.h"

using namespace moe;
using namespace moe::testing;

namespace {

double gelu_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

struct Inputs {
  Tensor buf, w1, b1, w2, b2;
  std::vector<Tensor> all() const { return {buf, w1, b1, w2, b2}; }
};

Inputs make_inputs(int64_t E, int64_t Cap, int64_t C, int64_t H, uint64_t seed,
                   bool grad = true) {
  auto mk = [&](const Shape& s, uint64_t k) {
    return grad ? param_f64(s, seed + k) : random_f64(s, seed + k);
  };
  return {mk({E, Cap, C}, 0), mk({E, C, H}, 1), mk({E, H}, 2), mk({E, H, C}, 3), mk({E, C}, 4)};
}

Tensor run(const std::vector<Tensor>& in) { return expert_ffn(in[0], in[1], in[2], in[3], in[4]); }

}  // namespace

TEST(ExpertFfn, ForwardMatchesNaive) {
  const int64_t E = 3, Cap = 4, C = 5, H = 7;
  Inputs in = make_inputs(E, Cap, C, H, 1, false);
  Tensor out = run(in.all());
  ASSERT_EQ(out.shape(), (Shape{E, Cap, C}));
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = 0; r < Cap; ++r) {
      std::vector<double> a(H);
      for (int64_t h = 0; h < H; ++h) {  // act = gelu(x @ W1[e] + b1[e])   (W1 is (C, H): no ^T)
        double pre = in.b1.at({e, h});
        for (int64_t c = 0; c < C; ++c) pre += in.buf.at({e, r, c}) * in.w1.at({e, c, h});
        a[h] = gelu_ref(pre);
      }
      for (int64_t c = 0; c < C; ++c) {  // out = act @ W2[e] + b2[e]
        double o = in.b2.at({e, c});
        for (int64_t h = 0; h < H; ++h) o += a[h] * in.w2.at({e, h, c});
        EXPECT_NEAR(out.at({e, r, c}), o, 1e-13) << e << "," << r << "," << c;
      }
    }
}

TEST(ExpertFfn, GradCheck) {
  for (const Shape& s : {Shape{1, 1, 1, 1}, Shape{2, 3, 4, 5}, Shape{3, 5, 3, 7}}) {
    Inputs in = make_inputs(s[0], s[1], s[2], s[3], 10);
    expect_gradcheck(run, in.all());
  }
}

TEST(ExpertFfn, GradCheckOneInputAtATime) {
  // Each input alone requires grad: the op must save what that one gradient reads and return
  // undefined slots for the rest (gradcheck asserts both).
  for (int k = 0; k < 5; ++k) {
    std::vector<Tensor> in = make_inputs(2, 3, 4, 5, 20, false).all();
    in[k].set_requires_grad(true);
    expect_gradcheck(run, in);
  }
}

TEST(ExpertFfn, ExpertsAreIndependent) {
  // Changing expert 1's weights leaves expert 0's output bitwise unchanged.
  Inputs in = make_inputs(2, 3, 4, 5, 30, false);
  std::vector<double> before = run(in.all()).to_f64_vector();
  in.w1.data<double>()[1 * 4 * 5 + 3] += 0.5;
  in.b2.data<double>()[1 * 4 + 2] -= 0.25;
  std::vector<double> after = run(in.all()).to_f64_vector();
  for (size_t i = 0; i < 3 * 4; ++i) EXPECT_EQ(after[i], before[i]) << i;  // expert 0: 12 values
  bool changed = false;
  for (size_t i = 12; i < 24; ++i) changed |= after[i] != before[i];
  EXPECT_TRUE(changed);
}

TEST(ExpertFfn, ZeroRowGivesTheBiasPath) {
  // An empty slot (zero row) yields gelu(b1) @ W2 + b2 — not zero, which is why combine must not
  // read empty slots (Note [Empty expert slots never reach the output]).
  Inputs in = make_inputs(1, 1, 2, 3, 40, false);
  in.buf.fill(0.0);
  Tensor out = run(in.all());
  for (int64_t c = 0; c < 2; ++c) {
    double o = in.b2.at({0, c});
    for (int64_t h = 0; h < 3; ++h) o += gelu_ref(in.b1.at({0, h})) * in.w2.at({0, h, c});
    EXPECT_NEAR(out.at({0, 0, c}), o, 1e-15);
    EXPECT_NE(out.at({0, 0, c}), 0.0);
  }
}

TEST(ExpertFfn, F32MatchesF64) {
  Inputs in = make_inputs(3, 6, 8, 16, 50);
  std::vector<Tensor> in32;
  for (const Tensor& t : in.all())
    in32.push_back(t.detach().to(DType::F32).set_requires_grad(true));
  Tensor seed = random_f64({3, 6, 8}, 51);
  Tensor y64 = run(in.all()), y32 = run(in32);
  backward(y64, seed);
  backward(y32, seed.to(DType::F32));
  std::vector<double> a = y64.to_f64_vector(), b = y32.to_f64_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-5 + 1e-5 * std::fabs(a[i]));
  std::vector<Tensor> in64 = in.all();
  for (size_t k = 0; k < 5; ++k) {
    std::vector<double> g = in64[k].grad().to_f64_vector(), h = in32[k].grad().to_f64_vector();
    for (size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(h[i], g[i], 1e-5 + 1e-4 * std::fabs(g[i])) << "input " << k << " [" << i << "]";
  }
}

TEST(ExpertFfn, SameBitsWithOneAndTwoThreads) {
  const int old = num_threads();
  std::vector<std::vector<float>> results[2];
  for (int t = 0; t < 2; ++t) {
    set_num_threads(t + 1);
    Inputs in64 = make_inputs(4, 64, 48, 96, 60, false);
    std::vector<Tensor> in;
    for (const Tensor& x : in64.all()) in.push_back(x.to(DType::F32).set_requires_grad(true));
    Tensor y = run(in);
    backward(y, random_f64({4, 64, 48}, 61).to(DType::F32));
    results[t].push_back(y.to_f32_vector());
    for (const Tensor& x : in) results[t].push_back(x.grad().to_f32_vector());
  }
  set_num_threads(old);
  for (size_t k = 0; k < results[0].size(); ++k) EXPECT_EQ(results[0][k], results[1][k]) << k;
}

TEST(ExpertFfn, BadShapesAreErrors) {
  Inputs in = make_inputs(2, 3, 4, 5, 70, false);
  // w1 given as (E, H, C), the nn.Linear (out, in) habit: the message says the layout.
  try {
    expert_ffn(in.buf, Tensor::zeros({2, 5, 4}, DType::F64), in.b1, in.w2, in.b2);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(E, C, H)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expert_ffn(in.buf, in.w1, Tensor::zeros({2, 4}, DType::F64), in.w2, in.b2), Error);
  EXPECT_THROW(expert_ffn(in.buf, in.w1, in.b1, in.w2, Tensor::zeros({3, 4}, DType::F64)), Error);
  EXPECT_THROW(expert_ffn(in.buf.to(DType::F32), in.w1, in.b1, in.w2, in.b2), Error);
}
