// Tests for moe/dispatch: dispatch and combine on the worked routing of notes/moe-gating.md
// (forward by hand), empty slots (zero rows in, never read out), dropped tokens (zero rows and
// zero gradients), and f64 gradient checks of both ops on every input, with mixed requires-grad.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "gradcheck.h"
#include "moe/dispatch.h"

using namespace moe;
using namespace moe::testing;

namespace {

// The worked example of test_gate.cpp: N = 6, E = 3; loc = (0 1)(1 1)(0 4)(2 2)(0 3)(3 2).
const std::vector<double> kP = {0.5, 0.3, 0.2, 0.6, 0.1, 0.3, 0.2, 0.7, 0.1,
                                0.7, 0.2, 0.1, 0.1, 0.2, 0.7, 0.4, 0.2, 0.4};

Routing route(const std::vector<double>& p, int64_t E, int64_t cap) {
  const int64_t N = static_cast<int64_t>(p.size()) / E;
  std::vector<double> l(p.size());
  for (size_t i = 0; i < p.size(); ++i) l[i] = std::log(p[i]);
  CounterRng rng(0, 0);
  return top2_select(Tensor::from_f64(p, {N, E}), Tensor::from_f64(l, {N, E}), cap,
                     Top2Policy::ALL, rng);
}

// Random routing for N tokens and E experts from random probabilities.
Routing random_route(int64_t N, int64_t E, int64_t cap, uint64_t seed) {
  return route(random_f64({N, E}, seed, 0.05, 1.0).to_f64_vector(), E, cap);
}

// x[s, c] = 10 (s + 1) + c: every row says which token it came from.
Tensor labelled_rows(int64_t N, int64_t C) {
  std::vector<double> v;
  for (int64_t s = 0; s < N; ++s)
    for (int64_t c = 0; c < C; ++c) v.push_back(10.0 * (s + 1) + c);
  return Tensor::from_f64(v, {N, C});
}

}  // namespace

TEST(Dispatch, ForwardByHand) {
  // Cap 4: expert 0 holds s0 s1 s3 s5 (all top-1); expert 1 holds s2 (top-1), s0 s3 s4 (top-2);
  // expert 2 holds s4 (top-1), s1 s5 (top-2) and one empty slot. s2's top-2 (loc 4) is dropped.
  Routing r = route(kP, 3, 4);
  const int64_t C = 2;
  Tensor buf = dispatch(labelled_rows(6, C), r);
  ASSERT_EQ(buf.shape(), (Shape{3, 4, C}));
  const int want_token[3][4] = {{0, 1, 3, 5}, {2, 0, 3, 4}, {4, 1, 5, -1}};
  for (int64_t e = 0; e < 3; ++e)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t j = 0; j < C; ++j) {
        const int s = want_token[e][c];
        EXPECT_EQ(buf.at({e, c, j}), s < 0 ? 0.0 : 10.0 * (s + 1) + j) << e << "," << c;
      }
}

TEST(Dispatch, GradCheck) {
  for (int64_t cap : {1, 2, 4}) {  // heavy drops, some drops (s3, s5 lose both), empty slots
    Routing r = route(kP, 3, cap);
    auto f = [&r](const std::vector<Tensor>& in) { return dispatch(in[0], r); };
    expect_gradcheck(f, {param_f64({6, 3}, 1)});
  }
  Routing r = random_route(11, 4, 5, 2);  // 22 assignments for 20 slots: some overflow
  auto f = [&r](const std::vector<Tensor>& in) { return dispatch(in[0], r); };
  expect_gradcheck(f, {param_f64({11, 7}, 3)});
}

TEST(Dispatch, TokenDroppedTwiceGetsZeroGradient) {
  Routing r = route(kP, 3, 2);  // s3 and s5 lose both slots
  Tensor x = param_f64({6, 3}, 4);
  backward(dispatch(x, r), random_f64({3, 2, 3}, 5));
  for (int64_t s : {3, 5})
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(x.grad().at({s, c}), 0.0);
  for (int64_t c = 0; c < 3; ++c) EXPECT_NE(x.grad().at({0, c}), 0.0);
}

TEST(Combine, ForwardByHand) {
  Routing r = route(kP, 3, 3);
  const int64_t C = 2;
  Tensor out = random_f64({3, 3, C}, 6);
  Tensor g = random_f64({6, 2}, 7);
  Tensor y = combine(out, g, r);
  // y_s = sum over kept k of G[s, k] * out[e_k, loc_k]; from the Cap 3 slots by hand:
  // (expert, slot) per assignment, or none if dropped.
  const int slot[6][2][2] = {{{0, 0}, {1, 1}}, {{0, 1}, {2, 1}}, {{1, 0}, {-1, -1}},
                             {{0, 2}, {1, 2}}, {{2, 0}, {-1, -1}}, {{-1, -1}, {2, 2}}};
  for (int64_t s = 0; s < 6; ++s)
    for (int64_t j = 0; j < C; ++j) {
      double want = 0;
      for (int64_t k = 0; k < 2; ++k)
        if (slot[s][k][0] >= 0)
          want += g.at({s, k}) * out.at({slot[s][k][0], slot[s][k][1], j});
      EXPECT_NEAR(y.at({s, j}), want, 1e-15) << "token " << s;
    }
}

TEST(Combine, EmptySlotsAndDroppedAssignmentsNeverLeak) {
  // Poison every slot no kept assignment fills, and the gate entries of dropped assignments,
  // with NaN: y must be unchanged and finite. Cap 4 leaves slot (2, 3) empty; Cap 2 drops.
  for (int64_t cap : {2, 4}) {
    Routing r = route(kP, 3, cap);
    Tensor out = random_f64({3, cap, 3}, 8), g = random_f64({6, 2}, 9);
    Tensor y_clean = combine(out, g, r);
    const std::vector<int32_t> src = r.slot_src.to_i32_vector(), kept = r.kept.to_i32_vector();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    double* o = out.data<double>();
    for (size_t i = 0; i < src.size(); ++i)
      if (src[i] < 0)
        for (int j = 0; j < 3; ++j) o[i * 3 + j] = nan;
    for (size_t a = 0; a < kept.size(); ++a)
      if (!kept[a]) g.data<double>()[a] = nan;
    EXPECT_EQ(combine(out, g, r).to_f64_vector(), y_clean.to_f64_vector()) << "Cap " << cap;
  }
}

TEST(Combine, GradCheck) {
  for (int64_t cap : {1, 2, 4}) {
    Routing r = route(kP, 3, cap);
    auto f = [&r](const std::vector<Tensor>& in) { return combine(in[0], in[1], r); };
    expect_gradcheck(f, {param_f64({3, cap, 5}, 10), param_f64({6, 2}, 11)});
    expect_gradcheck(f, {param_f64({3, cap, 5}, 12), random_f64({6, 2}, 13)});  // mixed
    expect_gradcheck(f, {random_f64({3, cap, 5}, 14), param_f64({6, 2}, 15)});
  }
  Routing r = random_route(11, 4, 5, 16);
  auto f = [&r](const std::vector<Tensor>& in) { return combine(in[0], in[1], r); };
  expect_gradcheck(f, {param_f64({4, 5, 7}, 17), param_f64({11, 2}, 18)});
}

TEST(Combine, BackwardWritesZerosToEmptySlotsAndDroppedGates) {
  Routing r = route(kP, 3, 4);  // slot (2, 3) empty; s2's top-2 dropped
  Tensor out = param_f64({3, 4, 3}, 19), g = param_f64({6, 2}, 20);
  backward(combine(out, g, r), random_f64({6, 3}, 21));
  for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(out.grad().at({2, 3, j}), 0.0);
  EXPECT_EQ(g.grad().at({2, 1}), 0.0);
  EXPECT_NE(g.grad().at({2, 0}), 0.0);
}

TEST(DispatchCombine, RoundTripWithUnitGatesAddsBothCopies) {
  // combine(dispatch(x), G = 1) = x * (number of kept assignments of the token): 2, 1 or 0.
  Routing r = route(kP, 3, 2);
  Tensor x = labelled_rows(6, 2);
  Tensor y = combine(dispatch(x, r), Tensor::full({6, 2}, 1.0, DType::F64), r);
  const int copies[6] = {2, 2, 1, 0, 1, 0};
  for (int64_t s = 0; s < 6; ++s)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(y.at({s, j}), copies[s] * x.at({s, j}));
}

TEST(DispatchCombine, F32MatchesF64) {
  Routing r = random_route(9, 3, 5, 22);
  Tensor x = random_f64({9, 4}, 23), g = random_f64({9, 2}, 24);
  Tensor y64 = combine(dispatch(x, r), g, r);
  Tensor y32 = combine(dispatch(x.to(DType::F32), r), g.to(DType::F32), r);
  std::vector<double> a = y64.to_f64_vector(), b = y32.to_f64_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-6);
}

TEST(DispatchCombine, BadShapesAreErrors) {
  Routing r = route(kP, 3, 2);
  EXPECT_THROW(dispatch(Tensor::zeros({5, 3}), r), Error);  // N differs
  EXPECT_THROW(combine(Tensor::zeros({3, 3, 4}), Tensor::zeros({6, 2}), r), Error);  // Cap 3
  EXPECT_THROW(combine(Tensor::zeros({3, 2, 4}), Tensor::zeros({6, 3}), r), Error);  // K 3
  EXPECT_THROW(combine(Tensor::zeros({3, 2, 4}), Tensor::zeros({6, 2}, DType::F64), r), Error);
  try {
    combine(Tensor::zeros({4, 2, 4}), Tensor::zeros({6, 2}), r);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(4, 2, 4)"), std::string::npos) << e.what();
  }
}
