// test_priming.cpp — few-shot sampling and prompts (src/eval/fewshot.h) and whole priming runs
// (src/eval/priming.h) with the recording FixedLogitsScorer: demonstrations are deterministic by
// seed and never the item itself, prompts are laid out exactly as SPEC §6 says, and accuracy,
// EM and F1 come out as computed by hand.
#include <cstdint>
#include <gtest/gtest.h>

#include <set>

#include "core/check.h"
#include "eval/fewshot.h"
#include "eval/priming.h"
#include "eval/tasks.h"
#include "eval_test_util.h"

namespace moe {
namespace {

using testing_eval::char_encoder;
using testing_eval::char_ids;
using testing_eval::char_logits;
using testing_eval::FixedLogitsScorer;
using testing_eval::kCharEos;
using testing_eval::kData;

TEST(EvalFewShot, SamplingIsDeterministicDistinctAndExcludesTheItem) {
  const auto a = sample_demonstrations(50, 5, 3, 17, 17);
  EXPECT_EQ(a, sample_demonstrations(50, 5, 3, 17, 17));
  EXPECT_NE(a, sample_demonstrations(50, 5, 4, 17, 17));   // another draw
  EXPECT_NE(a, sample_demonstrations(50, 5, 3, 18, 18));   // another item
  for (uint64_t seed = 0; seed < 25; ++seed) {
    for (int64_t item : {0, 7, 49}) {
      const auto d = sample_demonstrations(50, 8, seed, item, item);
      const std::set<int64_t> distinct(d.begin(), d.end());
      EXPECT_EQ(distinct.size(), 8u);
      EXPECT_EQ(distinct.count(item), 0u);
      for (int64_t i : d) EXPECT_TRUE(i >= 0 && i < 50);
    }
  }
  // A small pool: all but the item, in some order.
  const auto all = sample_demonstrations(4, 3, 0, 2, 2);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()), (std::set<int64_t>{0, 1, 3}));
  EXPECT_THROW(sample_demonstrations(4, 4, 0, 2, 2), Error);
}

TEST(EvalFewShot, PrefixSeparatesDemonstrationsWithEos) {
  const std::vector<int32_t> d1 = {1, 2}, d2 = {3};
  EXPECT_EQ(fewshot_prefix({&d1, &d2}, 9), (std::vector<int32_t>{9, 1, 2, 9, 3, 9}));
  EXPECT_EQ(fewshot_prefix({}, 9), (std::vector<int32_t>{9}));
}

// A task of hand-made items: context "q<j>", gold " a", wrong " z" (or reversed for odd j).
TaskData toy_task(int n, bool pool_is_eval) {
  TaskData t;
  t.name = "toy";
  for (int j = 0; j < n; ++j) {
    TaskItem it;
    const std::string ctx = "q" + std::to_string(j);
    it.candidates = {{ctx, j % 2 ? " z" : " a"}, {ctx, j % 2 ? " a" : " z"}};
    it.gold = j % 2;
    it.demo = ctx + " a";
    t.items.push_back(it);
  }
  t.pool_is_eval = pool_is_eval;
  if (!pool_is_eval)
    for (int j = 0; j < 6; ++j) {
      TaskItem demo;
      demo.demo = "d" + std::to_string(j);
      t.pool.push_back(demo);
    }
  return t;
}

TEST(EvalPriming, ZeroShotAccuracyAndOneCallPerBatch) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  PrimingOptions o;
  o.batch_size = 4;  // two items (of 2 candidates) per call
  o.progress = false;
  const PrimingResult r = evaluate_priming(toy_task(5, false), m, char_encoder(), o);
  ASSERT_EQ(r.draws.size(), 1u);
  EXPECT_DOUBLE_EQ(r.draws[0].acc, 1.0);  // " a" is always likelier than " z"
  EXPECT_EQ(r.n_items, 5);
  EXPECT_EQ(m.calls.size(), 3u);  // items {0,1} {2,3} {4}
  EXPECT_EQ(m.calls[0][0], (std::vector<int32_t>{kCharEos, 'q', '0', ' ', 'a'}));
  o.limit = 2;
  EXPECT_EQ(evaluate_priming(toy_task(5, false), m, char_encoder(), o).n_items, 2);
}

TEST(EvalPriming, FewShotPromptsAreExactAndDeterministic) {
  FixedLogitsScorer m(char_logits(), 64, kCharEos);
  PrimingOptions o;
  o.shots = 2;
  o.draws = 3;
  o.batch_size = 2;  // one item per call: calls[d * n + j] is item j of draw d
  o.progress = false;
  const TaskData task = toy_task(4, true);  // demonstrations from the items, item excluded
  const PrimingResult r = evaluate_priming(task, m, char_encoder(), o);
  ASSERT_EQ(r.draws.size(), 3u);
  ASSERT_EQ(m.calls.size(), 12u);
  for (int d = 0; d < 3; ++d)
    for (int j = 0; j < 4; ++j) {
      const auto demos = sample_demonstrations(4, 2, static_cast<uint64_t>(d), j, j);
      std::vector<int32_t> want = {kCharEos};
      for (int64_t i : demos) {
        EXPECT_NE(i, j);
        const auto ids = char_ids(task.items[static_cast<size_t>(i)].demo);
        want.insert(want.end(), ids.begin(), ids.end());
        want.push_back(kCharEos);
      }
      const auto cand = char_ids(task.items[static_cast<size_t>(j)].candidates[0].context +
                                 task.items[static_cast<size_t>(j)].candidates[0].continuation);
      want.insert(want.end(), cand.begin(), cand.end());
      EXPECT_EQ(m.calls[static_cast<size_t>(d * 4 + j)][0], want) << "draw " << d << " item " << j;
    }
  // The same seeds give the same prompts again.
  FixedLogitsScorer m2(char_logits(), 64, kCharEos);
  evaluate_priming(task, m2, char_encoder(), o);
  EXPECT_EQ(m2.calls, m.calls);
}

TEST(EvalPriming, LongPromptsAreCutFromTheLeft) {
  FixedLogitsScorer m(char_logits(), 12, kCharEos);
  PrimingOptions o;
  o.shots = 3;
  o.draws = 1;
  o.batch_size = 2;
  o.progress = false;
  const TaskData task = toy_task(2, false);  // pool demos "d0".."d5": 3 shots = 10 tokens + item
  evaluate_priming(task, m, char_encoder(), o);
  EXPECT_FALSE(m.too_long);
  const auto demos = sample_demonstrations(6, 3, 0, 0, -1);
  std::vector<int32_t> full = {kCharEos};  // 1 + 3 * 3 + 4 = 14 tokens before the cut
  for (int64_t i : demos) {
    const auto d = char_ids("d" + std::to_string(i));
    full.insert(full.end(), d.begin(), d.end());
    full.push_back(kCharEos);
  }
  for (const int32_t c : char_ids("q0 a")) full.push_back(c);
  ASSERT_EQ(full.size(), 14u);
  ASSERT_EQ(m.calls[0][0].size(), 12u);
  EXPECT_EQ(m.calls[0][0], std::vector<int32_t>(full.begin() + 2, full.end()));
}

TEST(EvalPriming, ReCoRDReportsEmAndF1OfTheChosenEntity) {
  TaskOptions opts;
  opts.data_dir = kData;
  opts.record_file = kData + "/record/val.jsonl";
  const TaskData t = load_task("record", opts);
  ASSERT_EQ(t.items.size(), 3u);
  EXPECT_TRUE(t.is_record);
  // Every character has logit 0 except 'P' and 'S' (5): the entity holding one of them wins.
  // Query 1 picks "Paris" (right), query 2 "Paris" again (the answer is "Lyon": EM 0, F1 0),
  // query 3 "Sam Hill" (right).
  std::vector<double> logits(257, 0.0);
  logits['P'] = 5.0;
  logits['S'] = 5.0;
  FixedLogitsScorer m2(logits, 4096, kCharEos);
  PrimingOptions o;
  o.progress = false;
  const PrimingResult r2 = evaluate_priming(t, m2, char_encoder(), o);
  EXPECT_NEAR(r2.draws[0].em, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r2.draws[0].f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r2.draws[0].acc, 2.0 / 3.0, 1e-12);
}


TEST(EvalPriming, DemonstrationsKeptAfterLeftTruncation) {
  // Demonstrations of 2 tokens after the leading </s> start at positions 1, 4, 7.
  const std::vector<int> len = {2, 2, 2};
  EXPECT_EQ(demonstrations_kept(len, 0), 3);
  EXPECT_EQ(demonstrations_kept(len, 1), 3);  // only the leading </s> is gone
  EXPECT_EQ(demonstrations_kept(len, 2), 2);  // the first lost a token
  EXPECT_EQ(demonstrations_kept(len, 4), 2);
  EXPECT_EQ(demonstrations_kept(len, 5), 1);
  EXPECT_EQ(demonstrations_kept(len, 100), 0);
  EXPECT_EQ(demonstrations_kept({}, 3), 0);
  // The run of LongPromptsAreCutFromTheLeft: 14 tokens in a context of 12, so 2 are cut and
  // the first of the 3 demonstrations is incomplete, for both items.
  FixedLogitsScorer m(char_logits(), 12, kCharEos);
  PrimingOptions o;
  o.shots = 3;
  o.progress = false;
  const PrimingResult r = evaluate_priming(toy_task(2, false), m, char_encoder(), o);
  EXPECT_DOUBLE_EQ(r.demos_complete_mean, 2.0);
  EXPECT_EQ(r.demos_complete_min, 2);
  EXPECT_EQ(r.truncated_prompts, 2);
  FixedLogitsScorer wide(char_logits(), 64, kCharEos);  // room for everything
  const PrimingResult all = evaluate_priming(toy_task(2, false), wide, char_encoder(), o);
  EXPECT_DOUBLE_EQ(all.demos_complete_mean, 3.0);
  EXPECT_EQ(all.truncated_prompts, 0);
}

// Every rule's accuracy from one pass, and one record per item and draw with the scores behind
// it, matching the scores computed by hand from the fixed log-probabilities.
TEST(EvalPriming, EveryRuleFromOnePassAndOneRecordPerItem) {
  // Gold " a" (or " z" reversed, see toy_task); the wrong answer " zz" is longer, which the sum
  // rule punishes and the per-token mean rule does not.
  TaskData t = toy_task(4, false);
  for (TaskItem& it : t.items)
    for (Candidate& c : it.candidates)
      if (c.continuation == " z") c.continuation = " zz";
  std::vector<double> logits = char_logits();
  logits[' '] = 0.0;
  logits['a'] = -3.0;
  logits['z'] = -1.0;
  FixedLogitsScorer m(logits, 64, kCharEos);
  std::vector<ItemRecord> records;
  PrimingOptions o;
  o.shots = 1;
  o.draws = 2;
  o.progress = false;
  o.on_item = [&](const ItemRecord& r) { records.push_back(r); };
  const PrimingResult r = evaluate_priming(t, m, char_encoder(), o);
  ASSERT_EQ(records.size(), 8u);
  ASSERT_EQ(r.draws.size(), 2u);
  double right[3] = {0, 0, 0};
  for (const ItemRecord& rec : records) {
    const TaskItem& item = t.items[static_cast<size_t>(rec.index)];
    ASSERT_EQ(rec.scores.size(), 3u);
    for (size_t c = 0; c < 2; ++c) {
      const std::string& cont = item.candidates[c].continuation;
      double sum = 0.0;
      for (const char ch : cont) sum += m.lp(ch);
      // mean: after the common prefix " " (the space is shared), so only the letters
      EXPECT_NEAR(rec.scores[0][c], (sum - m.lp(' ')) / (cont.size() - 1), 1e-12);
      EXPECT_NEAR(rec.scores[1][c], sum, 1e-12);
      EXPECT_NEAR(rec.scores[2][c], sum / cont.size(), 1e-12);
    }
    for (int k = 0; k < 3; ++k)
      right[k] += (rec.scores[k][0] >= rec.scores[k][1] ? 0 : 1) == item.gold ? 1 : 0;
    EXPECT_EQ(rec.prediction, rec.scores[0][0] >= rec.scores[0][1] ? 0 : 1);  // --scoring mean
    EXPECT_EQ(rec.demos.size(), 1u);
  }
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR((r.draws[0].acc_by_rule[k] + r.draws[1].acc_by_rule[k]) / 2, right[k] / 8, 1e-12);
    double items = 0.0;
    for (const double x : r.item_acc[k]) items += x;
    EXPECT_NEAR(items / 4, right[k] / 8, 1e-12);
  }
  EXPECT_DOUBLE_EQ(r.draws[0].acc, r.draws[0].acc_by_rule[0]);
  // The rules disagree here, so the test can tell them apart.
  EXPECT_NE(right[0], right[1]);
}

}  // namespace
}  // namespace moe
