// test_perplexity.cpp — perplexity windows and arithmetic (src/eval/perplexity.h): every token
// but the first is predicted exactly once, windows hold at most T tokens, and ppl =
// exp(mean NLL) with the FixedLogitsScorer's known log-probabilities.
#include <algorithm>
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>

#include "data/bpe.h"
#include "core/check.h"
#include "eval/perplexity.h"
#include "eval_test_util.h"

namespace moe {
namespace {

using testing_eval::char_logits;
using testing_eval::FixedLogitsScorer;
using testing_eval::kCharEos;

TEST(EvalPerplexity, WindowsShareOneBoundaryTokenAndCoverEveryToken) {
  FixedLogitsScorer m(char_logits(), 4, kCharEos);
  const std::vector<int32_t> stream = {256, 10, 11, 12, 13, 14, 15, 16, 17, 18};  // N = 10
  const PerplexityResult r = evaluate_perplexity(stream, m, 2, 0, false, "toy");
  // stride T-1 = 3: windows [0,4) [3,7) [6,10), two per call.
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(m.calls[0][0], (std::vector<int32_t>{256, 10, 11, 12}));
  EXPECT_EQ(m.calls[0][1], (std::vector<int32_t>{12, 13, 14, 15}));
  EXPECT_EQ(m.calls[1][0], (std::vector<int32_t>{15, 16, 17, 18}));
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.tokens, 9);
  double nll = 0.0;
  for (int t = 10; t <= 18; ++t) nll -= m.lp(t);
  EXPECT_NEAR(r.nll_sum, nll, 1e-12);
  EXPECT_NEAR(r.ppl(), std::exp(nll / 9), 1e-12);
  // A shorter last window, and --limit.
  FixedLogitsScorer m2(char_logits(), 4, kCharEos);
  const std::vector<int32_t> s2(stream.begin(), stream.begin() + 8);  // N = 8: [0,4) [3,7) [6,8)
  const PerplexityResult r2 = evaluate_perplexity(s2, m2, 8, 0, false, "toy");
  EXPECT_EQ(r2.tokens, 7);
  EXPECT_EQ(m2.calls[0][2], (std::vector<int32_t>{15, 16}));
  EXPECT_EQ(evaluate_perplexity(stream, m2, 8, 1, false, "toy").tokens, 3);
}

TEST(EvalPerplexity, StreamStartsWithEosAndEncodesLinesAsDocuments) {
  const BpeTokenizer tok = BpeTokenizer::train("hello world\nhello there\n", 270);
  const std::vector<int32_t> s = perplexity_stream("hello\n\nworld\n", tok);
  std::vector<int32_t> want = {tok.eos_id()};
  const std::vector<int32_t> doc = tok.encode_document("hello\n\nworld\n");
  want.insert(want.end(), doc.begin(), doc.end());
  EXPECT_EQ(s, want);
  // "hello" </s> </s> "world" </s>: newlines are </s>, the empty line adds one.
  EXPECT_EQ(std::count(s.begin(), s.end(), tok.eos_id()), 4);
}

}  // namespace
}  // namespace moe
