// test_templates.cpp — the exact text of every task's candidates and demonstrations (SPEC §6,
// src/eval/templates.h), from the fixture records.
#include <gtest/gtest.h>

#include "core/check.h"
#include "eval/readers.h"
#include "eval/templates.h"
#include "eval_test_util.h"

namespace moe {
namespace {

using testing_eval::kData;

TEST(EvalTemplates, HellaSwagTextForm) {
  ReadStats st;
  const TaskItem it =
      hellaswag_item(read_hellaswag(kData + "/hellaswag/hellaswag_val_full.txt", {}, &st)[0]);
  ASSERT_EQ(it.candidates.size(), 4u);
  EXPECT_EQ(it.candidates[1].context, "Roof shingle removal: A man is sitting on a roof. he");
  EXPECT_EQ(it.candidates[1].continuation, " is ripping level tiles off.");
  EXPECT_EQ(it.gold, 3);
  EXPECT_EQ(it.demo,
            "Roof shingle removal: A man is sitting on a roof. he starts pulling up roofing on a "
            "roof.");
}

TEST(EvalTemplates, HellaSwagJsonlCapitalisesCtxBAndCleans) {
  ReadStats st;
  const auto recs = read_hellaswag(kData + "/hellaswag/hellaswag_val.jsonl", {}, &st);
  const TaskItem a = hellaswag_item(recs[0]);
  EXPECT_EQ(a.candidates[0].context, "Roof shingle removal: A man is sitting on a roof. He");
  EXPECT_EQ(a.candidates[0].continuation, " is using wrap to wrap a pair of skis.");
  const TaskItem b = hellaswag_item(recs[1]);  // bracket markers dropped, empty ctx_b
  EXPECT_EQ(b.candidates[0].context, "Home and Garden: How to clean a grill. Heat the grill.");
  EXPECT_EQ(b.candidates[0].continuation, " Pour water on it.");
  EXPECT_EQ(hellaswag_clean("  [title] Foo  bar [step] Do "), "Foo bar Do");
  EXPECT_EQ(capitalize_first("the man"), "The man");
}

TEST(EvalTemplates, PiqaStoryClozeOpenBookQA) {
  ReadStats st;
  const TaskItem p = piqa_item(
      read_piqa(kData + "/piqa/valid.jsonl", kData + "/piqa/valid-labels.lst", {}, &st)[1]);
  EXPECT_EQ(p.candidates[0].context, "To open a jar with a tight lid,");
  EXPECT_EQ(p.candidates[1].continuation, " run the lid under hot water, then twist.");
  EXPECT_EQ(p.gold, 1);

  const TaskItem s = storycloze_item(
      read_storycloze(kData + "/storycloze/cloze_test_test__spring2016.csv", {}, &st)[0]);
  EXPECT_EQ(s.candidates[0].context,
            "Rick grew up in a troubled household. He never found good support in family, and "
            "turned to gangs. It wasn't long before Rick got shot in a robbery. The incident "
            "caused him to turn a new leaf.");
  EXPECT_EQ(s.candidates[1].continuation, " He joined a gang.");
  EXPECT_EQ(s.gold, 0);

  const TaskItem o = openbookqa_item(read_openbookqa(kData + "/openbookqa/test.jsonl", {}, &st)[1]);
  ASSERT_EQ(o.candidates.size(), 4u);
  EXPECT_EQ(o.candidates[3].context, "Gas can fill any container it is given, and liquid");
  EXPECT_EQ(o.candidates[3].continuation, " uses what it needs");
  EXPECT_EQ(o.demo, "Gas can fill any container it is given, and liquid uses what it needs");
}

TEST(EvalTemplates, WinoGrandeFullAndPartial) {
  ReadStats st;
  const WinoGrandeRecord r = read_winogrande(kData + "/winogrande/dev.jsonl",
                                             kData + "/winogrande/dev-labels.lst", {}, &st)[0];
  const TaskItem full = winogrande_item(r, WinoGrandeMode::Full);
  EXPECT_EQ(full.candidates[0].context, "Sarah was a much better surgeon than Maria so");
  EXPECT_EQ(full.candidates[0].continuation, " Sarah always got the easier cases.");
  EXPECT_EQ(full.candidates[1].continuation, " Maria always got the easier cases.");
  EXPECT_FALSE(full.continuation_only);
  EXPECT_EQ(full.demo,
            "Sarah was a much better surgeon than Maria so Maria always got the easier cases.");

  const TaskItem part = winogrande_item(r, WinoGrandeMode::Partial);
  EXPECT_EQ(part.candidates[0].context, "Sarah was a much better surgeon than Maria so Sarah");
  EXPECT_EQ(part.candidates[1].context, "Sarah was a much better surgeon than Maria so Maria");
  EXPECT_EQ(part.candidates[0].continuation, " always got the easier cases.");
  EXPECT_EQ(part.candidates[1].continuation, part.candidates[0].continuation);
  EXPECT_TRUE(part.continuation_only);
  EXPECT_EQ(part.demo, full.demo);

  // A blank at the very start: empty context, the option opens the continuation.
  WinoGrandeRecord start{"_ liked tea.", "Ann", "Tom", 1, "x:1"};
  const TaskItem s = winogrande_item(start, WinoGrandeMode::Full);
  EXPECT_EQ(s.candidates[1].context, "");
  EXPECT_EQ(s.candidates[1].continuation, "Tom liked tea.");
}

TEST(EvalTemplates, ReCoRDPassageAndSubstitution) {
  ReadStats st;
  const auto recs = read_record(kData + "/record/val.jsonl", {}, &st);
  const TaskItem it = record_item(recs[0]);
  const std::string passage =
      "Caf\xC3\xA9 owner Ren\xC3\xA9" "e Dubois opened a shop in Paris on Monday. Dubois said the "
      "shop sells bread from Lyon. Ren\xC3\xA9" "e Dubois opens a caf\xC3\xA9 in Paris. The bread "
      "comes from Lyon.";
  ASSERT_EQ(it.candidates.size(), 4u);
  EXPECT_EQ(it.candidates[1].context, passage);
  EXPECT_EQ(it.candidates[1].continuation, " The shop in Paris sells bread.");
  EXPECT_EQ(it.candidates[3].continuation, " The shop in Dubois sells bread.");
  EXPECT_EQ(it.labels[2], "Lyon");
  EXPECT_EQ(it.gold, 1);
  EXPECT_EQ(it.demo, passage + " The shop in Paris sells bread.");
  // A highlight that already ends a sentence keeps its own punctuation.
  EXPECT_EQ(record_passage("A b.\n@highlight\nWin 3-1!\n@highlight\nNo stop"),
            "A b. Win 3-1! No stop.");
}

}  // namespace
}  // namespace moe
