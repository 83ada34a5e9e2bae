// test_scoring.cpp — which tokens count and what a candidate scores (src/eval/scoring.h), with the
// context-free FixedLogitsScorer and the char encoder, so every expected number is a sum of known
// per-character log-probabilities; and GPTScorer against GPT::forward_logits.
#include <algorithm>
#include <cstdint>
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "eval/priming.h"
#include "eval/scoring.h"
#include "eval_test_util.h"
#include "nn/gpt.h"
#include "ops/softmax_xent.h"

namespace moe {
namespace {

using testing_eval::char_encoder;
using testing_eval::char_ids;
using testing_eval::char_logits;
using testing_eval::FixedLogitsScorer;
using testing_eval::kCharEos;

// Sum of the fixed log-probs of the characters of s.
double lp_sum(const FixedLogitsScorer& m, const std::string& s) {
  double t = 0.0;
  for (const char c : s) t += m.lp(c);
  return t;
}

TaskItem two_choice(const std::string& ctx, const std::string& a, const std::string& b) {
  TaskItem it;
  it.candidates = {{ctx, a}, {ctx, b}};
  it.gold = 0;
  return it;
}

TEST(EvalScoring, CommonPrefixRuleScoresOnlyWhereCandidatesDiffer) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  const EncodedItem e = encode_item(two_choice("ab", " cd", " cexy"), char_encoder());
  const ItemSequences s = build_item_sequences(e, {kCharEos}, 64, Scoring::Mean);
  // </s> a b ' ' c are shared (5 tokens): only "d" and "exy" are scored.
  EXPECT_EQ(s.begin, (std::vector<int>{5, 5}));
  EXPECT_EQ(s.end, (std::vector<int>{6, 8}));
  const std::vector<double> sc = candidate_scores(s, m.token_logprobs(s.seqs), Scoring::Mean);
  EXPECT_DOUBLE_EQ(sc[0], m.lp('d'));
  EXPECT_DOUBLE_EQ(sc[1], lp_sum(m, "exy") / 3);
}

TEST(EvalScoring, SumAndCharScoreTheWholeContinuation) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  const EncodedItem e = encode_item(two_choice("ab", " cd", " c\xC3\xA9"), char_encoder());
  const ItemSequences sum = build_item_sequences(e, {kCharEos}, 64, Scoring::Sum);
  EXPECT_EQ(sum.begin, (std::vector<int>{3, 3}));
  const std::vector<double> s1 = candidate_scores(sum, m.token_logprobs(sum.seqs), Scoring::Sum);
  EXPECT_DOUBLE_EQ(s1[0], lp_sum(m, " cd"));
  EXPECT_DOUBLE_EQ(s1[1], lp_sum(m, " c\xC3\xA9"));
  const ItemSequences ch = build_item_sequences(e, {kCharEos}, 64, Scoring::Char);
  const std::vector<double> s2 = candidate_scores(ch, m.token_logprobs(ch.seqs), Scoring::Char);
  EXPECT_DOUBLE_EQ(s2[0], lp_sum(m, " cd") / 3);
  EXPECT_DOUBLE_EQ(s2[1], lp_sum(m, " c\xC3\xA9") / 3);  // 4 bytes, 3 characters
}

TEST(EvalScoring, PrefixCandidateStillScoresItsLastToken) {
  const EncodedItem e = encode_item(two_choice("a", " b", " bc"), char_encoder());
  const ItemSequences s = build_item_sequences(e, {kCharEos}, 64, Scoring::Mean);
  // Shared prefix "</s> a ' ' b" is all of candidate 0: it keeps its last token.
  EXPECT_EQ(s.begin, (std::vector<int>{3, 4}));
  EXPECT_EQ(s.end, (std::vector<int>{4, 5}));
}

TEST(EvalScoring, WinoGrandePartialScoresTheSameTokens) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  WinoGrandeRecord r{"X so _ won.", "Al", "Bea", 2, "f:1"};
  const EncodedItem part = encode_item(winogrande_item(r, WinoGrandeMode::Partial), char_encoder());
  const ItemSequences p = build_item_sequences(part, {kCharEos}, 64, Scoring::Mean);
  // Both score " won." (5 characters) at the end of their sequences.
  EXPECT_EQ(p.end[0] - p.begin[0], 5);
  EXPECT_EQ(p.end[1] - p.begin[1], 5);
  const std::vector<double> sp = candidate_scores(p, m.token_logprobs(p.seqs), Scoring::Mean);
  EXPECT_DOUBLE_EQ(sp[0], lp_sum(m, " won.") / 5);
  EXPECT_DOUBLE_EQ(sp[1], sp[0]);
  // Full mode: the options and the rest are scored, after the shared "</s>X so ".
  const EncodedItem full = encode_item(winogrande_item(r, WinoGrandeMode::Full), char_encoder());
  const ItemSequences f = build_item_sequences(full, {kCharEos}, 64, Scoring::Mean);
  const std::vector<double> sf = candidate_scores(f, m.token_logprobs(f.seqs), Scoring::Mean);
  EXPECT_DOUBLE_EQ(sf[0], lp_sum(m, "Al won.") / 7);
  EXPECT_DOUBLE_EQ(sf[1], lp_sum(m, "Bea won.") / 8);
}

TEST(EvalScoring, LeftTruncationKeepsTheLastTokens) {
  const EncodedItem e = encode_item(two_choice("0123456789", " ab", " abc"), char_encoder());
  const ItemSequences s = build_item_sequences(e, {kCharEos}, 8, Scoring::Sum);
  // Candidate 1 is </s> 0..9 ' ' a b c = 15 tokens; its last 8 are "6789 abc".
  EXPECT_EQ(s.seqs[1], char_ids("6789 abc"));
  EXPECT_EQ(s.seqs[0], char_ids("56789 ab"));  // each candidate is cut on its own
  EXPECT_EQ(s.begin, (std::vector<int>{5, 4}));
  EXPECT_EQ(s.end, (std::vector<int>{8, 8}));
  // A continuation longer than the context: position 0 is never scored.
  const EncodedItem l = encode_item(two_choice("", "abcdefghij", "abcdefghik"), char_encoder());
  const ItemSequences t = build_item_sequences(l, {kCharEos}, 4, Scoring::Sum);
  EXPECT_EQ(t.seqs[0], char_ids("ghij"));
  EXPECT_EQ(t.begin[0], 1);
}

TEST(EvalScoring, ChooseCandidatesBatchesItemsInOneCall) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  std::vector<ItemSequences> batch;
  // Lower byte values are likelier, so " a" beats " z" and " b" beats " y".
  batch.push_back(build_item_sequences(encode_item(two_choice("q", " z", " a"), char_encoder()),
                                       {kCharEos}, 64, Scoring::Mean));
  batch.push_back(build_item_sequences(encode_item(two_choice("q", " b", " y"), char_encoder()),
                                       {kCharEos}, 64, Scoring::Mean));
  EXPECT_EQ(choose_candidates(batch, m, Scoring::Mean), (std::vector<int>{1, 0}));
  ASSERT_EQ(m.calls.size(), 1u);
  EXPECT_EQ(m.calls[0].size(), 4u);
}

// ---- GPTScorer ----------------------------------------------------------------------------------

GPTConfig tiny_config() {
  GPTConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 8;
  c.vocab_size = 11;
  c.dropout = 0.0;
  return c;
}

// log p(seq[i] | seq[<i]) from forward_logits on the sequence alone, in double.
std::vector<double> reference_logprobs(GPT& model, const std::vector<int32_t>& seq) {
  NoGradGuard ng;
  CounterRng rng(0, 0);
  const int T = static_cast<int>(seq.size());
  const std::vector<float> logits =
      model.forward_logits(Tensor::from_i32(seq, {1, T}), rng).to_f32_vector();
  const int V = model.config().vocab_size;
  std::vector<double> out(seq.size(), 0.0);
  for (int i = 1; i < T; ++i) {
    const float* row = &logits[static_cast<size_t>(i - 1) * V];
    double mx = row[0], z = 0.0;
    for (int v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int v = 0; v < V; ++v) z += std::exp(row[v] - mx);
    out[static_cast<size_t>(i)] = row[seq[static_cast<size_t>(i)]] - mx - std::log(z);
  }
  return out;
}

TEST(EvalGPTScorer, MatchesForwardLogitsAndIgnoresPadding) {
  GPT model(tiny_config(), 7);
  GPTScorer scorer(model, 10);
  EXPECT_EQ(scorer.context_length(), 8);
  const std::vector<std::vector<int32_t>> seqs = {
      {1, 2, 3}, {4, 5, 6, 7, 8, 9, 0, 1}, {2, 2, 9, 3, 1}};
  const auto lp = scorer.token_logprobs(seqs);  // padded to 8 in one pass
  ASSERT_EQ(lp.size(), 3u);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const std::vector<double> ref = reference_logprobs(model, seqs[s]);
    ASSERT_EQ(lp[s].size(), seqs[s].size());
    EXPECT_EQ(lp[s][0], 0.0);
    for (size_t i = 1; i < ref.size(); ++i) EXPECT_NEAR(lp[s][i], ref[i], 2e-5) << s << "," << i;
  }
  // Only the positions asked for are computed; the others stay 0.
  const auto part = scorer.token_logprobs_from(seqs, {2, 7, 9});
  EXPECT_EQ(part[0][1], 0.0);
  EXPECT_NEAR(part[0][2], lp[0][2], 1e-9);
  EXPECT_NEAR(part[1][7], lp[1][7], 1e-9);
  EXPECT_EQ(part[2], std::vector<double>(5, 0.0));
  EXPECT_THROW(scorer.token_logprobs({std::vector<int32_t>(9, 1)}), Error);
}


// The three rules from ONE scorer call: the positions read start at the earlier of the two span
// starts, and each rule's score equals what an item built for that rule alone gives.
TEST(EvalScoring, OnePassGivesEveryRule) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  const EncodedItem e = encode_item(two_choice("ab", " cd", " cexy"), char_encoder());
  const ItemSequences built = build_item_sequences(e, {kCharEos}, 64, Scoring::Mean);
  EXPECT_EQ(built.shared_begin, (std::vector<int>{5, 5}));
  EXPECT_EQ(built.continuation_begin, (std::vector<int>{3, 3}));
  EXPECT_EQ(first_scored(built, 0), 3);
  const auto lp = m.token_logprobs(built.seqs);
  for (const Scoring rule : kAllScorings) {
    const ItemSequences alone = build_item_sequences(e, {kCharEos}, 64, rule);
    EXPECT_EQ(candidate_scores(built, lp, rule), candidate_scores(alone, lp, rule))
        << scoring_name(rule);
  }
  EXPECT_DOUBLE_EQ(candidate_scores(built, lp, Scoring::Sum)[1], lp_sum(m, " cexy"));
  EXPECT_DOUBLE_EQ(candidate_scores(built, lp, Scoring::Char)[1], lp_sum(m, " cexy") / 5);
  // score_items reads every rule from one call.
  FixedLogitsScorer counted(char_logits(), 64, kCharEos);
  const auto scores = score_items({built}, counted);
  EXPECT_EQ(counted.calls.size(), 1u);
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0][static_cast<size_t>(scoring_index(Scoring::Sum))],
            candidate_scores(built, lp, Scoring::Sum));
}

}  // namespace
}  // namespace moe
