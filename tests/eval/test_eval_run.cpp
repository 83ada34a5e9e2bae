// test_eval_run.cpp — `eval` end to end, in process (src/eval/runner.h): a tiny random GPT and a
// tokenizer trained on the fixtures are saved as a checkpoint, then run_evaluation reads the
// fixture data folder (MANIFEST layout) and writes a results file with every task, perplexity and
// the summary rows. Also: the same run twice gives the same numbers; a malformed record stops
// the run naming FILE:LINE, and --skip-bad counts it instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "data/bpe.h"
#include "core/check.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "io/text_io.h"
#include "eval_test_util.h"
#include "io/checkpoint.h"
#include "io/flags.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"

namespace moe {
namespace {

using testing_eval::kData;

// A checkpoint of a random 1-layer model with a 300-token BPE trained on the fixture texts.
std::string make_checkpoint(const std::string& dir) {
  std::string text;
  for (const char* f : {"/gutenberg/gutenberg.valid.txt", "/piqa/train.jsonl",
                        "/openbookqa/train.jsonl", "/winogrande/train_xl.jsonl"})
    text += read_text_file(kData + f);
  const BpeTokenizer tok = BpeTokenizer::train(text, 300);
  GPTConfig c;
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 48;
  c.vocab_size = tok.vocab_size();
  GPT model(c, 3);
  Checkpoint ck;
  add_gpt_to_checkpoint(ck, model);
  add_tokenizer_to_checkpoint(ck, tok);
  ck.set_meta("compute-paper-flops", "123456789");
  ck.set_meta("tokens", "1000");
  ck.set_meta("step", "5");
  const std::string path = dir + "/checkpoint.bin";
  save_checkpoint(path, ck);
  return path;
}

Flags eval_flags(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"eval"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data(), PROG_EVAL);
}

const ResultRow* find(const ResultsFile& f, const std::string& task, const std::string& metric) {
  for (const ResultRow& r : f.rows)
    if (r.task == task && r.metric == metric) return &r;
  return nullptr;
}

class EvalRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing_eval::fresh_temp_dir("run");
    ckpt_ = make_checkpoint(dir_);
  }
  static std::string dir_, ckpt_;
};
std::string EvalRun::dir_, EvalRun::ckpt_;

TEST_F(EvalRun, AllTasksOnTheFixtureFolder) {
  const std::vector<std::string> args = {
      "--ckpt", ckpt_, "--data-dir", kData, "--out-dir", dir_ + "/out", "--fewshot-k", "2",
      "--draws", "2", "--record-file", kData + "/record/val.jsonl", "--batch-size", "8"};
  ASSERT_EQ(run_evaluation(eval_flags(args)), 0);
  const ResultsFile r = read_results(dir_ + "/out/eval_all.json");
  EXPECT_DOUBLE_EQ(r.training_compute, 123456789.0);
  struct Want { const char* task; const char* metric; int n; int shots; int draws; };
  for (const Want& w : {Want{"hellaswag", "acc", 3, 0, 1}, Want{"piqa", "acc", 3, 0, 1},
                        Want{"record", "em", 3, 0, 1}, Want{"record", "f1", 3, 0, 1},
                        Want{"winogrande", "acc", 2, 2, 2}, Want{"storycloze", "acc", 3, 2, 2},
                        Want{"openbookqa", "acc", 2, 2, 2}}) {
    const ResultRow* row = find(r, w.task, w.metric);
    ASSERT_NE(row, nullptr) << w.task;
    EXPECT_EQ(row->n, w.n) << w.task;
    EXPECT_EQ(row->shots, w.shots) << w.task;
    EXPECT_GE(row->mean, 0.0);
    EXPECT_LE(row->mean, 1.0);
  }
  EXPECT_NE(find(r, "ppl-in-domain", "ppl"), nullptr);
  EXPECT_NE(find(r, "ppl-out-of-domain", "ppl"), nullptr);
  EXPECT_NE(find(r, "zero-shot-avg", "acc"), nullptr);
  EXPECT_NE(find(r, "few-shot-avg", "acc"), nullptr);
  // A random model over a 300-token vocabulary: perplexity is finite and of that order.
  const double ppl = find(r, "ppl-in-domain", "ppl")->mean;
  EXPECT_GT(ppl, 50.0);
  EXPECT_LT(ppl, 3000.0);

  // Deterministic: the same run again gives the same numbers.
  ASSERT_EQ(run_evaluation(eval_flags(args)), 0);
  const ResultsFile again = read_results(dir_ + "/out/eval_all.json");
  ASSERT_EQ(again.rows.size(), r.rows.size());
  for (size_t i = 0; i < r.rows.size(); ++i) EXPECT_EQ(again.rows[i].mean, r.rows[i].mean) << i;
}

TEST_F(EvalRun, RecordIsSkippedWithoutItsFile) {
  const std::vector<std::string> args = {"--ckpt", ckpt_, "--data-dir", kData, "--out-dir",
                                         dir_ + "/out2", "--fewshot-k", "1", "--draws", "1",
                                         "--limit", "1"};
  ASSERT_EQ(run_evaluation(eval_flags(args)), 0);
  const ResultsFile r = read_results(dir_ + "/out2/eval_all.json");
  EXPECT_EQ(find(r, "record", "em"), nullptr);
  EXPECT_EQ(find(r, "piqa", "acc")->n, 1);
  // Asked for explicitly, ReCoRD without a file is an error with a hint.
  EXPECT_THROW(run_evaluation(eval_flags({"--ckpt", ckpt_, "--data-dir", kData, "--task",
                                          "record", "--out-dir", dir_ + "/out2"})),
               Error);
}

TEST_F(EvalRun, MalformedRecordStopsOrIsSkipped) {
  const std::string bad = "tests/fixtures/eval/bad";
  try {
    run_evaluation(eval_flags({"--ckpt", ckpt_, "--data-dir", bad, "--task", "piqa",
                               "--out-dir", dir_ + "/out3"}));
    FAIL() << "a malformed record must stop the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + "/piqa/valid.jsonl:2: malformed record"),
              std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out3/eval_piqa.json"));
  ASSERT_EQ(run_evaluation(eval_flags({"--ckpt", ckpt_, "--data-dir", bad, "--task", "piqa",
                                       "--skip-bad", "--out-dir", dir_ + "/out3"})),
            0);
  const ResultsFile r = read_results(dir_ + "/out3/eval_piqa.json");
  const ResultRow* row = find(r, "piqa", "acc");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->n, 2);
  EXPECT_EQ(row->skipped, 1);
}

TEST(EvalRunFlags, TaskListsShotsAndDraws) {
  EXPECT_EQ(expand_task_list("all").size(), 7u);
  EXPECT_EQ(expand_task_list("piqa, ppl"), (std::vector<std::string>{"piqa", "ppl"}));
  EXPECT_THROW(expand_task_list("piqa,squad"), Error);
  EXPECT_EQ(shots_for("hellaswag", -1, 32), 0);
  EXPECT_EQ(shots_for("winogrande", -1, 32), 32);
  EXPECT_EQ(shots_for("hellaswag", 5, 32), 5);
  EXPECT_EQ(draws_for(5, 0), 25);
  EXPECT_EQ(draws_for(5, 3), 3);
  EXPECT_EQ(draws_for(0, 3), 1);
}

}  // namespace
}  // namespace moe
