// test_eval_results.cpp — what a whole evaluation reports (notes/design.md "Hardening"): it stops
// on non-finite weights or a non-finite perplexity instead of printing -nan; the results file records every
// setting, every scoring rule from the one pass and a standard error per accuracy; --log-samples
// writes one line per item and draw that agrees with the results; in-domain perplexity comes from
// the checkpoint's own held-out text when the checkpoint records it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/check.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval_ckpt_util.h"
#include "io/json.h"

namespace moe {
namespace {

using testing_eval::checkpoint_param;
using testing_eval::eval_flags;
using testing_eval::kData;
using testing_eval::save_eval_checkpoint;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const ResultRow* find(const ResultsFile& f, const std::string& task, const std::string& metric) {
  for (const ResultRow& r : f.rows)
    if (r.task == task && r.metric == metric) return &r;
  return nullptr;
}

TEST(EvalResults, NonFiniteWeightsStopTheRunNamingTheParameter) {
  const std::string dir = testing_eval::fresh_temp_dir("nan-weights");
  const std::string ckpt = save_eval_checkpoint(dir, "nan.bin", 0, [](Checkpoint& ck) {
    checkpoint_param(ck, "blocks.0.attn.proj.weight").data<float>()[5] =
        std::numeric_limits<float>::quiet_NaN();
  });
  const std::string e = error_of([&] {
    run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task", "piqa",
                               "--out-dir", dir + "/out"}));
  });
  EXPECT_NE(e.find("parameter blocks.0.attn.proj.weight holds 1 non-finite value(s)"),
            std::string::npos) << e;
  EXPECT_NE(e.find("at index 5"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/eval_piqa.json"));
}

TEST(EvalResults, NonFinitePerplexityIsAnErrorNotANumber) {
  const std::string dir = testing_eval::fresh_temp_dir("nan-ppl");
  // Finite but enormous weights: the forward pass overflows, and the perplexity is NaN.
  const std::string ckpt = save_eval_checkpoint(dir, "big.bin", 0, [](Checkpoint& ck) {
    Tensor& w = checkpoint_param(ck, "wte");
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = 3e38f;
  });
  const std::string e = error_of([&] {
    run_evaluation(eval_flags({"--ckpt", ckpt, "--task", "ppl", "--ppl-data",
                               kData + "/gutenberg/gutenberg.valid.txt", "--limit", "2",
                               "--out-dir", dir + "/out"}));
  });
  EXPECT_NE(e.find("the perplexity of gutenberg.valid.txt is "), std::string::npos) << e;
  EXPECT_NE(e.find("not finite"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/eval_ppl.json"));
  // A priming task on the same model stops too, instead of counting NaN scores.
  EXPECT_NE(error_of([&] {
              run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task", "piqa",
                                         "--out-dir", dir + "/out"}));
            }).find("score is NaN"),
            std::string::npos);
}

// Every setting is in the file; acc_mean / acc_sum / acc_norm come from one pass, so a run with
// --scoring sum has as its headline acc exactly the acc_sum of a run with --scoring mean.
TEST(EvalResults, ResultsRecordSettingsRulesAndStandardErrors) {
  const std::string dir = testing_eval::fresh_temp_dir("settings");
  const std::string ckpt = save_eval_checkpoint(dir, "moe.bin", 4);
  const auto run = [&](const std::string& scoring, const std::string& out) {
    EXPECT_EQ(run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task",
                                         "piqa,winogrande", "--shots", "1", "--draws", "3",
                                         "--limit", "2", "--scoring", scoring, "--out-dir",
                                         dir + "/" + out, "--eval-capacity-fraction", "0.5",
                                         "--log-samples"})),
              0);
    return read_results(dir + "/" + out + "/eval_piqa+winogrande_k1.json");
  };
  const ResultsFile mean = run("mean", "m"), sum = run("sum", "s");
  // Not only the decisions: every score of every rule is the same whichever rule led the run.
  for (const char* task : {"piqa", "winogrande"}) {
    const std::string name = std::string("/samples_") + task + ".jsonl";
    const std::vector<std::string> a = split_lines(read_text_file(dir + "/m" + name));
    const std::vector<std::string> b = split_lines(read_text_file(dir + "/s" + name));
    ASSERT_EQ(a.size(), 6u);  // 2 items x 3 draws
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (const char* rule : {"mean", "sum", "char"}) {
        const Json ja = parse_json(a[i]), jb = parse_json(b[i]);
        const auto& x = ja.at("scores").at(rule).as_array();
        const auto& y = jb.at("scores").at(rule).as_array();
        ASSERT_EQ(x.size(), y.size());
        for (size_t c = 0; c < x.size(); ++c)
          EXPECT_EQ(x[c].as_number(), y[c].as_number()) << task << " line " << i << " " << rule;
      }
  }
  const Json j = parse_json(read_text_file(dir + "/m/eval_piqa+winogrande_k1.json"));
  EXPECT_EQ(j.at("limit").as_number(), 2);
  EXPECT_EQ(j.at("step").as_number(), 5);
  EXPECT_EQ(j.at("checkpoint").as_string(), ckpt);
  EXPECT_EQ(j.at("eval_capacity_fraction").as_number(), 0.5);
  EXPECT_NE(j.at("eval_capacity_rule").as_string().find("Cap = ceil(0.5 * N)"), std::string::npos);
  const Json& st = j.at("settings");
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"limit", "2"}, {"shots", "1"}, {"draws", "3"}, {"scoring", "mean"},
           {"winogrande-mode", "full"}, {"eval-capacity-fraction", "0.5"}, {"data-dir", kData},
           {"ckpt", ckpt}})
    EXPECT_EQ(st.at(k).as_string(), v) << k;
  for (const char* task : {"piqa", "winogrande"}) {
    for (const char* metric : {"acc", "acc_mean", "acc_sum", "acc_norm"})
      ASSERT_NE(find(mean, task, metric), nullptr) << task << " " << metric;
    const ResultRow& acc = *find(mean, task, "acc");
    EXPECT_EQ(acc.mean, find(mean, task, "acc_mean")->mean);
    EXPECT_EQ(find(sum, task, "acc")->mean, find(mean, task, "acc_sum")->mean) << task;
    EXPECT_EQ(find(sum, task, "acc_norm")->mean, find(mean, task, "acc_norm")->mean) << task;
    EXPECT_EQ(acc.limit, 2);
    EXPECT_EQ(acc.draws, 3);
    EXPECT_GE(acc.files.size(), 2u);
    for (const std::string& f : acc.files) EXPECT_TRUE(std::filesystem::exists(f)) << f;
    EXPECT_GE(acc.std_err, 0.0);
    EXPECT_TRUE(std::isfinite(acc.std_err_draws));
    EXPECT_GE(acc.demos_min, 0);
    EXPECT_LE(acc.demos_mean, 1.0);
  }
}

TEST(EvalResults, ZeroShotStandardErrorIsBinomial) {
  const std::string dir = testing_eval::fresh_temp_dir("stderr");
  const std::string ckpt = save_eval_checkpoint(dir, "dense.bin");
  ASSERT_EQ(run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task", "piqa",
                                       "--out-dir", dir + "/out"})),
            0);
  const ResultsFile r = read_results(dir + "/out/eval_piqa.json");
  for (const char* metric : {"acc", "acc_mean", "acc_sum", "acc_norm"}) {
    const ResultRow& row = *find(r, "piqa", metric);
    EXPECT_NEAR(row.std_err, std::sqrt(row.mean * (1 - row.mean) / row.n), 1e-12) << metric;
    EXPECT_EQ(row.std_err_draws, 0.0);
    EXPECT_EQ(row.demos_min, -1);  // zero-shot: nothing to fit
  }
}

TEST(EvalResults, LogSamplesWritesOneLinePerItemAndDraw) {
  const std::string dir = testing_eval::fresh_temp_dir("samples");
  const std::string ckpt = save_eval_checkpoint(dir, "dense.bin");
  ASSERT_EQ(run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task",
                                       "storycloze", "--shots", "1", "--draws", "2",
                                       "--log-samples", "--scoring", "char", "--out-dir",
                                       dir + "/out"})),
            0);
  const ResultsFile r = read_results(dir + "/out/eval_storycloze_k1.json");
  const ResultRow& acc = *find(r, "storycloze", "acc");
  const std::vector<std::string> lines =
      split_lines(read_text_file(dir + "/out/samples_storycloze.jsonl"));
  ASSERT_EQ(static_cast<int64_t>(lines.size()), acc.n * 2);
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/samples_storycloze.jsonl.tmp"));
  double correct = 0;
  for (const std::string& line : lines) {
    const Json s = parse_json(line);
    EXPECT_EQ(s.at("task").as_string(), "storycloze");
    const auto& choices = s.at("choices").as_array();
    const auto& chars = s.at("scores").at("char").as_array();
    ASSERT_EQ(choices.size(), 2u);
    ASSERT_EQ(chars.size(), 2u);
    EXPECT_EQ(s.at("scores").at("mean").as_array().size(), 2u);
    EXPECT_EQ(s.at("scores").at("sum").as_array().size(), 2u);
    const int pred = chars[1].as_number() > chars[0].as_number() ? 1 : 0;  // --scoring char
    EXPECT_EQ(s.at("prediction").as_number(), pred);
    const bool ok = pred == s.at("gold").as_number();
    EXPECT_EQ(s.at("correct").as_bool(), ok);
    correct += ok;
    EXPECT_EQ(s.at("demos").as_array().size(), 1u);
    EXPECT_FALSE(s.at("prompt").as_string().empty());
  }
  EXPECT_NEAR(correct / lines.size(), acc.mean, 1e-12);
}

// A checkpoint that records its training data: in-domain perplexity is measured on that data's
// held-out tail, not on the data folder's Gutenberg file.
TEST(EvalResults, InDomainPerplexityUsesTheCheckpointsHeldOutText) {
  const std::string dir = testing_eval::fresh_temp_dir("indomain-run");
  const std::string corpus = kData + "/gutenberg/gutenberg.valid.txt";
  const std::string ckpt = save_eval_checkpoint(dir, "dense.bin", 0, [&](Checkpoint& ck) {
    ck.set_meta("train.data", std::filesystem::absolute(corpus).string());
    ck.set_meta("train.val-data", "");
    ck.set_meta("train.val-fraction", "0.25");
    ck.set_meta("train.cache-dir", dir + "/cache");
  });
  ASSERT_EQ(run_evaluation(eval_flags({"--ckpt", ckpt, "--data-dir", kData, "--task", "ppl",
                                       "--out-dir", dir + "/out"})),
            0);
  const ResultsFile r = read_results(dir + "/out/eval_ppl.json");
  const ResultRow* in = nullptr;
  for (const ResultRow& row : r.rows)
    if (row.task == "ppl" && row.setting == "in-domain") in = &row;
  ASSERT_NE(in, nullptr);
  EXPECT_NE(in->note.find("held-out: the last 0.25 of "), std::string::npos) << in->note;
  ASSERT_EQ(in->files.size(), 1u);
  EXPECT_EQ(in->files[0], std::filesystem::absolute(corpus).string());
  // An older checkpoint (no train.* keys) falls back to the data folder's file and says so.
  const std::string old = save_eval_checkpoint(dir, "old.bin");
  ASSERT_EQ(run_evaluation(eval_flags({"--ckpt", old, "--data-dir", kData, "--task", "ppl",
                                       "--out-dir", dir + "/out2"})),
            0);
  const ResultsFile o = read_results(dir + "/out2/eval_ppl.json");
  EXPECT_NE(o.rows[0].note.find("the checkpoint does not record its training data"),
            std::string::npos) << o.rows[0].note;
}

}  // namespace
}  // namespace moe
