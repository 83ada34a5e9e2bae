// Tests for ops/shape: reshape (view vs copy), transpose, slice and concat — forward values
// against index arithmetic written out in the test, gradients by central differences in f64 on
// odd shapes, mixed requires-grad inputs of concat, i32 pass-through, negative dims, edge cases
// (empty slices, swapping a dim with itself) and errors naming the shapes.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "ops/elementwise.h"
#include "ops/shape.h"

using namespace moe;
using namespace moe::testing;

namespace {

// Row-major flat index of `idx` in `shape`.
int64_t flat(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

// Visit every multi-index of `shape` in row-major order.
template <typename F>
void for_each_index(const Shape& shape, F&& f) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t n = 0; n < shape_numel(shape); ++n) {
    f(idx);
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

void expect_error_mentions(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected moe::Error mentioning " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// reshape

TEST(Reshape, ViewWhenContiguousCopyOtherwise) {
  Tensor x = random_f64({2, 3, 4}, 1);
  Tensor y = reshape(x, {6, -1});
  EXPECT_EQ(y.shape(), (Shape{6, 4}));
  EXPECT_EQ(y.storage(), x.storage());  // a view: same memory
  EXPECT_EQ(y.to_f64_vector(), x.to_f64_vector());
  Tensor xt = x.transpose_view(0, 2);   // (4, 3, 2), not contiguous
  Tensor z = reshape(xt, {24});
  EXPECT_NE(z.storage(), x.storage());  // had to copy
  EXPECT_EQ(z.to_f64_vector(), xt.to_f64_vector());
}

TEST(Reshape, GradCheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {5, 3}); },
                   {param_f64({3, 5}, 2)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return reshape(in[0], {-1}); },
                   {param_f64({2, 1, 7}, 3)});
  // through a non-contiguous input (the copy path)
  expect_gradcheck(
      [](const std::vector<Tensor>& in) { return reshape(transpose(in[0], 0, 1), {-1, 2}); },
      {param_f64({2, 3}, 4)});
}

TEST(Reshape, Errors) {
  Tensor x = Tensor::zeros({2, 3});
  expect_error_mentions([&] { reshape(x, {4, 2}); }, "(2, 3)");
  EXPECT_THROW(reshape(x, {-1, -1}), Error);
  EXPECT_THROW(reshape(x, {4, -1}), Error);
  EXPECT_THROW(reshape(x, {-2, 3}), Error);
}

// ---------------------------------------------------------------------------------------------
// transpose

TEST(Transpose, ForwardMatchesIndexing) {
  struct Case { Shape s; int d0, d1; };
  for (const Case& c : {Case{{3, 5}, 0, 1}, Case{{2, 3, 4}, 0, 2}, Case{{2, 3, 4, 5}, 1, 2},
                        Case{{2, 3, 4, 5}, -1, 1}, Case{{1, 7, 1}, 2, 0}}) {
    Tensor x = random_f64(c.s, 5);
    Tensor y = transpose(x, c.d0, c.d1);
    const int nd = static_cast<int>(c.s.size());
    const int d0 = c.d0 < 0 ? c.d0 + nd : c.d0, d1 = c.d1 < 0 ? c.d1 + nd : c.d1;
    Shape ys = c.s;
    std::swap(ys[d0], ys[d1]);
    ASSERT_EQ(y.shape(), ys);
    EXPECT_TRUE(y.is_contiguous());
    std::vector<double> xv = x.to_f64_vector(), yv = y.to_f64_vector();
    for_each_index(c.s, [&](const std::vector<int64_t>& idx) {
      std::vector<int64_t> j = idx;
      std::swap(j[d0], j[d1]);
      ASSERT_EQ(yv[flat(ys, j)], xv[flat(c.s, idx)]);
    });
  }
}

TEST(Transpose, GradCheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 1); },
                   {param_f64({3, 5}, 6)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 1, 3); },
                   {param_f64({2, 3, 1, 5, 2}, 7)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return transpose(in[0], 1, 1); },
                   {param_f64({2, 3}, 8)});
}

TEST(Transpose, IdsAndErrors) {
  Tensor ids = Tensor::from_i32({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(transpose(ids, 0, 1).to_i32_vector(), (std::vector<int32_t>{1, 4, 2, 5, 3, 6}));
  expect_error_mentions([&] { transpose(ids, 0, 2); }, "(2, 3)");
  EXPECT_THROW(transpose(ids, -3, 0), Error);
}

// ---------------------------------------------------------------------------------------------
// slice

TEST(Slice, ForwardMatchesIndexing) {
  Tensor x = random_f64({3, 7, 5}, 9);
  std::vector<double> xv = x.to_f64_vector();
  for (int d = 0; d < 3; ++d) {
    const int64_t start = 1, end = x.size(d) - 1;
    Tensor y = slice(x, d, start, end);
    Shape ys = x.shape();
    ys[d] = end - start;
    ASSERT_EQ(y.shape(), ys);
    std::vector<double> yv = y.to_f64_vector();
    for_each_index(ys, [&](const std::vector<int64_t>& idx) {
      std::vector<int64_t> src = idx;
      src[d] += start;
      ASSERT_EQ(yv[flat(ys, idx)], xv[flat(x.shape(), src)]);
    });
  }
  EXPECT_EQ(slice(x, -1, 2, 2).shape(), (Shape{3, 7, 0}));  // empty slice is fine
}

TEST(Slice, GradCheck) {
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 1, 2, 5); },
                   {param_f64({3, 7, 2}, 10)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], 0, 0, 1); },
                   {param_f64({13}, 11)});
  expect_gradcheck([](const std::vector<Tensor>& in) { return slice(in[0], -1, 3, 5); },
                   {param_f64({2, 5}, 12)});
}

TEST(Slice, Errors) {
  Tensor x = Tensor::zeros({4, 6});
  expect_error_mentions([&] { slice(x, 1, 2, 7); }, "(4, 6)");
  EXPECT_THROW(slice(x, 0, 3, 2), Error);
  EXPECT_THROW(slice(x, 0, -1, 2), Error);
  EXPECT_THROW(slice(x, 2, 0, 1), Error);
}

// ---------------------------------------------------------------------------------------------
// concat

TEST(Concat, ForwardMatchesIndexing) {
  Tensor a = random_f64({2, 3, 4}, 13), b = random_f64({2, 1, 4}, 14);
  Tensor c = random_f64({2, 5, 4}, 15);
  Tensor y = concat({a, b, c}, 1);
  ASSERT_EQ(y.shape(), (Shape{2, 9, 4}));
  // slicing the result back must give the pieces
  EXPECT_EQ(slice(y, 1, 0, 3).to_f64_vector(), a.to_f64_vector());
  EXPECT_EQ(slice(y, 1, 3, 4).to_f64_vector(), b.to_f64_vector());
  EXPECT_EQ(slice(y, 1, 4, 9).to_f64_vector(), c.to_f64_vector());
  // and element by element
  std::vector<double> yv = y.to_f64_vector(), av = a.to_f64_vector();
  for_each_index(a.shape(), [&](const std::vector<int64_t>& idx) {
    ASSERT_EQ(yv[flat(y.shape(), idx)], av[flat(a.shape(), idx)]);
  });
  Tensor z = concat({a, a}, -1);
  EXPECT_EQ(z.shape(), (Shape{2, 3, 8}));
  EXPECT_EQ(z.at({1, 2, 5}), a.at({1, 2, 1}));
  Tensor ids = concat({Tensor::from_i32({1, 2}, {2}), Tensor::from_i32({3}, {1})}, 0);
  EXPECT_EQ(ids.to_i32_vector(), (std::vector<int32_t>{1, 2, 3}));
}

TEST(Concat, GradCheck) {
  auto f = [](const std::vector<Tensor>& in) { return concat(in, 1); };
  expect_gradcheck(f, {param_f64({2, 3, 2}, 16), param_f64({2, 1, 2}, 17),
                       param_f64({2, 5, 2}, 18)});
  auto f0 = [](const std::vector<Tensor>& in) { return concat(in, 0); };
  expect_gradcheck(f0, {param_f64({7}, 19)});
  expect_gradcheck(f0, {param_f64({1, 3}, 20), param_f64({13, 3}, 21)});
}

TEST(Concat, MixedRequiresGrad) {
  // The middle input does not require grad: it must get no gradient, and the others must get
  // their own pieces of dout (not shifted by the missing slot).
  Tensor a = param_f64({3, 2}, 22), b = random_f64({3, 5}, 23), c = param_f64({3, 1}, 24);
  expect_gradcheck([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, b, c});
  EXPECT_FALSE(b.grad().defined());
}

TEST(Concat, SameTensorTwiceAccumulates) {
  Tensor a = param_f64({2, 3}, 25);
  expect_gradcheck([](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, 0); }, {a});
}

TEST(Concat, Errors) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 3});
  EXPECT_THROW(concat({}, 0), Error);
  expect_error_mentions([&] { concat({a, b}, 1); }, "(3, 3)");
  EXPECT_THROW(concat({a, Tensor::zeros({2, 3}, DType::F64)}, 0), Error);
  EXPECT_THROW(concat({a, Tensor::zeros({2, 3, 1})}, 0), Error);
  EXPECT_THROW(concat({a, a}, 2), Error);
}

// ---------------------------------------------------------------------------------------------
// composition: the head split of attention, (B, T, C) -> (B, NH, T, hs) -> back

TEST(Shape, HeadSplitRoundTripGradCheck) {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor x = reshape(in[0], {2, 3, 2, 5});              // (B, T, NH, hs)
    Tensor h = transpose(x, 1, 2);                         // (B, NH, T, hs)
    Tensor q = slice(h, 3, 1, 4);                          // part of each head
    return mul(reshape(transpose(q, 1, 2), {2, 3, 6}), reshape(transpose(q, 1, 2), {2, 3, 6}));
  };
  expect_gradcheck(f, {param_f64({2, 3, 10}, 26)});
}

TEST(Shape, LargeTensorsOnThreads) {
  // Big enough for parallel_for to split the copies (the unit tests above run inline): the
  // threaded kernels must give the same values as the index arithmetic.
  Tensor x = random_f64({4, 300, 6, 40}, 27);  // (B, T, NH, hs)
  Tensor h = transpose(x, 1, 2);               // (B, NH, T, hs)
  EXPECT_EQ(h.to_f64_vector(), x.transpose_view(1, 2).to_f64_vector());
  Tensor s = slice(x, 1, 7, 290);
  EXPECT_EQ(s.to_f64_vector(), x.slice_view(1, 7, 290).to_f64_vector());
  Tensor c = concat({slice(x, 3, 0, 13), slice(x, 3, 13, 40)}, 3);
  EXPECT_EQ(c.to_f64_vector(), x.to_f64_vector());
  Tensor xr = param_f64({4, 300, 6, 40}, 28);
  Tensor g = random_f64({4, 6, 300, 40}, 29);
  backward(transpose(xr, 1, 2), g);
  EXPECT_EQ(xr.grad().to_f64_vector(), g.transpose_view(1, 2).to_f64_vector());
}
