// Tests for ops/linear: linear and matmul forward against naive loops in double, gradients by
// central differences in f64 (every input, odd sizes, with and without bias, mixed
// requires-grad), a larger backward against naive loops (exercises the parallel gemm paths),
// f32 vs f64 agreement, non-contiguous inputs and shape errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "ops/elementwise.h"
#include "ops/linear.h"

using namespace moe;
using namespace moe::testing;

namespace {

// y[n, o] = sum_i x[n, i] w[o, i] + b[o], written from the definition (x flattened to rows).
std::vector<double> naive_linear(const std::vector<double>& x, const std::vector<double>& w,
                                 const std::vector<double>* b, int64_t N, int64_t Cin,
                                 int64_t Cout) {
  std::vector<double> y(N * Cout);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < Cout; ++o) {
      double acc = b ? (*b)[o] : 0.0;
      for (int64_t i = 0; i < Cin; ++i) acc += x[n * Cin + i] * w[o * Cin + i];
      y[n * Cout + o] = acc;
    }
  return y;
}

// out[z, m, n] = sum_k a[z, m, k] b[z, k, n]
std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b,
                                 int64_t Z, int64_t M, int64_t K, int64_t N) {
  std::vector<double> out(Z * M * N, 0.0);
  for (int64_t z = 0; z < Z; ++z)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
          out[(z * M + m) * N + n] += a[(z * M + m) * K + k] * b[(z * K + k) * N + n];
  return out;
}

void expect_all_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << "element " << i;
}

Tensor linear_of(const std::vector<Tensor>& in) {
  return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
}
Tensor matmul_of(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// linear

TEST(Linear, ForwardMatchesNaive) {
  Tensor x = random_f64({2, 3, 5}, 1), w = random_f64({7, 5}, 2), b = random_f64({7}, 3);
  Tensor y = linear(x, w, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 7}));
  std::vector<double> bv = b.to_f64_vector();
  expect_all_near(y.to_f64_vector(),
                  naive_linear(x.to_f64_vector(), w.to_f64_vector(), &bv, 6, 5, 7), 1e-14);
  Tensor y0 = linear(x, w, Tensor());  // no bias
  expect_all_near(y0.to_f64_vector(),
                  naive_linear(x.to_f64_vector(), w.to_f64_vector(), nullptr, 6, 5, 7), 1e-14);
}

TEST(Linear, GradCheck) {
  struct Case { Shape x; int64_t cout; };
  for (const Case& c : {Case{{1, 1}, 1}, Case{{3, 5}, 7}, Case{{13, 7}, 5}, Case{{2, 3, 5}, 3},
                        Case{{5, 1}, 13}}) {
    const int64_t cin = c.x.back();
    expect_gradcheck(linear_of, {param_f64(c.x, 1), param_f64({c.cout, cin}, 2),
                                 param_f64({c.cout}, 3)});
    expect_gradcheck(linear_of, {param_f64(c.x, 4), param_f64({c.cout, cin}, 5)});
  }
}

TEST(Linear, MixedRequiresGrad) {
  // Every subset of {x, w, b} requiring grad: slots must line up by position, and inputs that do
  // not require grad must get none (gradcheck asserts both).
  for (int mask = 1; mask < 8; ++mask) {
    Tensor x = random_f64({3, 4}, 6), w = random_f64({5, 4}, 7), b = random_f64({5}, 8);
    if (mask & 1) x.set_requires_grad(true);
    if (mask & 2) w.set_requires_grad(true);
    if (mask & 4) b.set_requires_grad(true);
    expect_gradcheck(linear_of, {x, w, b});
    if (!(mask & 1)) {
      EXPECT_FALSE(x.grad().defined()) << mask;
    }
    if (!(mask & 2)) {
      EXPECT_FALSE(w.grad().defined()) << mask;
    }
  }
}

TEST(Linear, LargeBackwardMatchesNaive) {
  // Big enough for the threaded gemm paths and several K panels (N = 300 rows > 256).
  const int64_t N = 300, Cin = 70, Cout = 130;
  Tensor x = param_f64({N, Cin}, 9), w = param_f64({Cout, Cin}, 10), b = param_f64({Cout}, 11);
  Tensor dy = random_f64({N, Cout}, 12);
  backward(linear(x, w, b), dy);
  std::vector<double> xv = x.to_f64_vector(), wv = w.to_f64_vector(), g = dy.to_f64_vector();
  std::vector<double> dx(N * Cin, 0.0), dw(Cout * Cin, 0.0), db(Cout, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < Cout; ++o) {
      db[o] += g[n * Cout + o];
      for (int64_t i = 0; i < Cin; ++i) {
        dx[n * Cin + i] += g[n * Cout + o] * wv[o * Cin + i];
        dw[o * Cin + i] += g[n * Cout + o] * xv[n * Cin + i];
      }
    }
  expect_all_near(x.grad().to_f64_vector(), dx, 1e-12);
  expect_all_near(w.grad().to_f64_vector(), dw, 1e-12);
  expect_all_near(b.grad().to_f64_vector(), db, 1e-12);
}

TEST(Linear, F32AgreesWithF64) {
  Tensor x = random_f64({4, 9, 33}, 13), w = random_f64({17, 33}, 14), b = random_f64({17}, 15);
  Tensor y64 = linear(x, w, b);
  Tensor y32 = linear(x.to(DType::F32), w.to(DType::F32), b.to(DType::F32));
  EXPECT_EQ(y32.dtype(), DType::F32);
  expect_all_near(y32.to_f64_vector(), y64.to_f64_vector(), 1e-5);
}

TEST(Linear, NonContiguousInput) {
  // x given as a transposed view: linear must read it by value, not by raw memory order.
  Tensor xt = random_f64({5, 3}, 16);
  Tensor x = xt.transpose_view(0, 1);  // (3, 5), not contiguous
  Tensor w = random_f64({2, 5}, 17);
  expect_all_near(linear(x, w, Tensor()).to_f64_vector(),
                  naive_linear(x.to_f64_vector(), w.to_f64_vector(), nullptr, 3, 5, 2), 1e-14);
}

TEST(Linear, EdgeShapes) {
  // 1-D x is one row; no rows gives an empty output; Cin = 0 leaves only the bias.
  Tensor w = random_f64({3, 5}, 31), b = random_f64({3}, 32);
  EXPECT_EQ(linear(random_f64({5}, 33), w, b).shape(), (Shape{3}));
  expect_gradcheck(linear_of, {param_f64({5}, 34), param_f64({3, 5}, 35), param_f64({3}, 36)});
  EXPECT_EQ(linear(Tensor::zeros({0, 5}, DType::F64), w, b).shape(), (Shape{0, 3}));
  Tensor y = linear(Tensor::zeros({2, 0}, DType::F64), Tensor::zeros({3, 0}, DType::F64), b);
  std::vector<double> bv = b.to_f64_vector(), want = bv;
  want.insert(want.end(), bv.begin(), bv.end());
  EXPECT_EQ(y.to_f64_vector(), want);
}

TEST(Linear, ShapeErrors) {
  Tensor x = Tensor::zeros({4, 3}), w = Tensor::zeros({5, 3});
  EXPECT_THROW(linear(x, Tensor::zeros({5, 4}), Tensor()), Error);     // Cin mismatch
  EXPECT_THROW(linear(x, Tensor::zeros({15}), Tensor()), Error);       // w not 2-D
  EXPECT_THROW(linear(x, w, Tensor::zeros({4})), Error);               // bias length
  EXPECT_THROW(linear(x, w.to(DType::F64), Tensor()), Error);          // dtype mismatch
  EXPECT_THROW(linear(Tensor::from_i32({1, 2, 3}, {1, 3}), w, Tensor()), Error);  // int input
  try {
    linear(x, Tensor::zeros({5, 4}), Tensor());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(4, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(5, 4)"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// matmul

TEST(Matmul, ForwardMatchesNaive) {
  Tensor a = random_f64({3, 5}, 18), b = random_f64({5, 7}, 19);
  expect_all_near(matmul(a, b).to_f64_vector(),
                  naive_matmul(a.to_f64_vector(), b.to_f64_vector(), 1, 3, 5, 7), 1e-14);
  Tensor a4 = random_f64({2, 3, 4, 5}, 20), b4 = random_f64({2, 3, 5, 1}, 21);
  Tensor y = matmul(a4, b4);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4, 1}));
  expect_all_near(y.to_f64_vector(),
                  naive_matmul(a4.to_f64_vector(), b4.to_f64_vector(), 6, 4, 5, 1), 1e-14);
}

TEST(Matmul, GradCheck) {
  struct Case { Shape a, b; };
  for (const Case& c : {Case{{1, 1}, {1, 1}}, Case{{3, 5}, {5, 7}}, Case{{2, 7, 3}, {2, 3, 5}},
                        Case{{3, 1, 13, 2}, {3, 1, 2, 1}}}) {
    expect_gradcheck(matmul_of, {param_f64(c.a, 22), param_f64(c.b, 23)});
  }
}

TEST(Matmul, MixedRequiresGrad) {
  expect_gradcheck(matmul_of, {random_f64({2, 3, 4}, 24), param_f64({2, 4, 5}, 25)});
  expect_gradcheck(matmul_of, {param_f64({2, 3, 4}, 26), random_f64({2, 4, 5}, 27)});
}

TEST(Matmul, SameTensorTwiceAccumulates) {
  // y = sum(a @ a) for square a: d/da = dout @ a^T + a^T @ dout, with dout = ones.
  Tensor a = param_f64({3, 3}, 28);
  expect_gradcheck(matmul_of, {a, a});
}

TEST(Matmul, F32AgreesWithF64) {
  Tensor a = random_f64({4, 17, 29}, 29), b = random_f64({4, 29, 11}, 30);
  expect_all_near(matmul(a.to(DType::F32), b.to(DType::F32)).to_f64_vector(),
                  matmul(a, b).to_f64_vector(), 1e-5);
}

TEST(Matmul, ShapeErrors) {
  EXPECT_THROW(matmul(Tensor::zeros({3, 4}), Tensor::zeros({5, 2})), Error);        // inner dims
  EXPECT_THROW(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({3, 4, 2})), Error);  // batch dims
  EXPECT_THROW(matmul(Tensor::zeros({2, 3, 4}), Tensor::zeros({4, 2})), Error);     // no broadcast
  EXPECT_THROW(matmul(Tensor::zeros({4}), Tensor::zeros({4})), Error);              // 1-D
  EXPECT_THROW(matmul(Tensor::zeros({2, 2}), Tensor::zeros({2, 2}, DType::F64)), Error);
}
