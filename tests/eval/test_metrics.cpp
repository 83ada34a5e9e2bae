// test_metrics.cpp — ReCoRD's SQuAD-style normalisation, EM and F1, argmax ties, mean/std over
// draws (src/eval/metrics.h), against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/metrics.h"

namespace moe {
namespace {

TEST(EvalMetrics, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("The  Eiffel-Tower!"), "eiffeltower");
  EXPECT_EQ(normalize_answer("  A cat, an   owl and THE dog. "), "cat owl and dog");
  EXPECT_EQ(normalize_answer("theme park"), "theme park");  // "the" only as a whole word
  EXPECT_EQ(normalize_answer("Ren\xC3\xA9" "e"), "ren\xC3\xA9" "e");  // non-ASCII kept
}

TEST(EvalMetrics, ExactMatchAndF1) {
  EXPECT_EQ(exact_match("the Paris", "Paris!"), 1.0);
  EXPECT_EQ(exact_match("Paris", "Lyon"), 0.0);
  // prediction {renée, dubois}, gold {dubois}: precision 1/2, recall 1 -> F1 = 2/3
  EXPECT_NEAR(token_f1("Renée Dubois", "Dubois"), 2.0 / 3.0, 1e-12);
  // prediction {a1 b c c}, gold {c d}: common 1 (c once), P = 1/4, R = 1/2 -> F1 = 1/3
  EXPECT_NEAR(token_f1("a1 b c c", "c d"), 1.0 / 3.0, 1e-12);
  EXPECT_EQ(token_f1("x", "y"), 0.0);
  EXPECT_EQ(token_f1("the", "a"), 1.0);  // both normalise to empty
  EXPECT_EQ(max_exact_match("Lyon", {"Paris", "lyon"}), 1.0);
  EXPECT_NEAR(max_token_f1("Sam", {"Sam Hill", "Hill"}), 2.0 / 3.0, 1e-12);
}

TEST(EvalMetrics, ArgmaxTakesTheFirstOfTies) {
  EXPECT_EQ(argmax_first({-1.0, -0.5, -0.5, -2.0}), 1);
  EXPECT_EQ(argmax_first({3.0}), 0);
}

TEST(EvalMetrics, MeanStdIsThePopulationSpread) {
  const MeanStd m = mean_std({0.5, 0.7, 0.6, 0.6});
  EXPECT_NEAR(m.mean, 0.6, 1e-12);
  EXPECT_NEAR(m.std, std::sqrt(0.02 / 4), 1e-12);
  EXPECT_EQ(mean_std({}).mean, 0.0);
  EXPECT_EQ(mean_std({0.25}).std, 0.0);
}


TEST(EvalMetrics, StandardErrorsOverItemsAndDraws) {
  // 0/1 outcomes: the binomial sqrt(p (1 - p) / n), p = 3/8.
  const std::vector<double> outcomes = {1, 0, 1, 0, 0, 1, 0, 0};
  EXPECT_NEAR(items_standard_error(outcomes), std::sqrt(3.0 / 8 * 5.0 / 8 / 8), 1e-12);
  EXPECT_EQ(items_standard_error({}), 0.0);
  // Draws 0.5 and 0.7: sample std 0.1 * sqrt(2), over sqrt(2) -> 0.1.
  EXPECT_NEAR(draws_standard_error({0.5, 0.7}), 0.1, 1e-12);
  EXPECT_EQ(draws_standard_error({0.4}), 0.0);  // one draw: nothing to compare
}

}  // namespace
}  // namespace moe
