// test_report.cpp — results rows, summary rows (the averages the speedup factor reads), the JSON
// file round trip and the table (src/eval/report.h).
#include <gtest/gtest.h>

#include <cmath>

#include "core/check.h"
#include "eval/report.h"
#include "io/text_io.h"
#include "io/json.h"
#include "eval_test_util.h"

namespace moe {
namespace {

ResultRow row(const std::string& task, const std::string& setting, const std::string& metric,
              double mean) {
  ResultRow r;
  r.task = task;
  r.setting = setting;
  r.metric = metric;
  r.mean = mean;
  r.checkpoint = "runs/x/checkpoint.bin";
  r.training_compute = 2.5e15;
  return r;
}

ResultsFile sample() {
  ResultsFile f;
  f.checkpoint = "runs/x/checkpoint.bin";
  f.training_compute = 2.5e15;
  f.scoring = "mean";
  f.rows = {row("hellaswag", "zero-shot", "acc", 0.30), row("piqa", "zero-shot", "acc", 0.60),
            row("record", "zero-shot", "em", 0.20),     row("record", "zero-shot", "f1", 0.25),
            row("winogrande", "few-shot", "acc", 0.52), row("storycloze", "few-shot", "acc", 0.58),
            row("ppl", "in-domain", "ppl", 40.0),       row("ppl", "out-of-domain", "ppl", 100.0),
            row("ppl", "out-of-domain", "ppl", 400.0)};
  return f;
}

const ResultRow* find(const ResultsFile& f, const std::string& task) {
  for (const ResultRow& r : f.rows)
    if (r.task == task) return &r;
  return nullptr;
}

TEST(EvalReport, SummaryRowsAverageTheMainMetrics) {
  ResultsFile f = sample();
  add_summary_rows(&f);
  ASSERT_NE(find(f, "zero-shot-avg"), nullptr);
  EXPECT_NEAR(find(f, "zero-shot-avg")->mean, (0.30 + 0.60 + 0.20) / 3, 1e-12);  // ReCoRD: EM
  EXPECT_EQ(find(f, "zero-shot-avg")->note, "tasks: hellaswag,piqa,record");
  EXPECT_NEAR(find(f, "few-shot-avg")->mean, 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(find(f, "ppl-in-domain")->mean, 40.0);
  EXPECT_NEAR(find(f, "ppl-out-of-domain")->mean, 200.0, 1e-9);  // geometric mean of 100, 400
  EXPECT_DOUBLE_EQ(find(f, "few-shot-avg")->training_compute, 2.5e15);
}

TEST(EvalReport, JsonRoundTrip) {
  ResultsFile f = sample();
  f.tokens = 1000;
  f.step = 10;
  add_summary_rows(&f);
  const std::string dir = testing_eval::fresh_temp_dir("report");
  write_results(dir + "/r.json", f);
  const Json j = parse_json(read_text_file(dir + "/r.json"));
  EXPECT_EQ(j.at("format").as_string(), "moe-gpt eval results");
  const Json& r0 = j.at("rows").as_array()[0];
  for (const char* k : {"task", "setting", "shots", "draws", "metric", "mean", "std", "n",
                        "scoring", "checkpoint", "training_compute"})
    EXPECT_NE(r0.find(k), nullptr) << k;
  const ResultsFile back = read_results(dir + "/r.json");
  EXPECT_DOUBLE_EQ(back.training_compute, 2.5e15);
  ASSERT_EQ(back.rows.size(), f.rows.size());
  EXPECT_EQ(back.rows[2].task, "record");
  EXPECT_DOUBLE_EQ(back.rows[2].mean, 0.20);
  // Unknown compute is written as null and read back as NaN.
  f.training_compute = NAN;
  write_results(dir + "/n.json", f);
  EXPECT_TRUE(std::isnan(read_results(dir + "/n.json").training_compute));
  write_file_atomic(dir + "/other.json", "{\"a\": 1}");
  EXPECT_THROW(read_results(dir + "/other.json"), Error);
}

TEST(EvalReport, TableShowsPercentAndPerplexity) {
  const std::string t = results_table(sample().rows);
  EXPECT_NE(t.find("piqa"), std::string::npos);
  EXPECT_NE(t.find("60.00%"), std::string::npos);
  EXPECT_NE(t.find("400.00"), std::string::npos);
}


// Version 2: standard errors, the files read, --limit, the demonstrations that fit and every
// eval setting survive the round trip.
TEST(EvalReport, SettingsAndStandardErrorsRoundTrip) {
  ResultsFile f = sample();
  f.limit = 7;
  f.settings = {{"limit", "7"}, {"scoring", "mean"}, {"data-dir", "../shared/data"}};
  f.rows[4].std_err = 0.031;
  f.rows[4].std_err_draws = 0.004;
  f.rows[4].limit = 7;
  f.rows[4].files = {"a/dev.jsonl", "a/dev-labels.lst"};
  f.rows[4].demos_mean = 2.5;
  f.rows[4].demos_min = 1;
  const std::string dir = testing_eval::fresh_temp_dir("report2");
  write_results(dir + "/r.json", f);
  const Json j = parse_json(read_text_file(dir + "/r.json"));
  EXPECT_EQ(j.at("version").as_number(), 2);
  EXPECT_EQ(j.at("settings").at("data-dir").as_string(), "../shared/data");
  const ResultsFile back = read_results(dir + "/r.json");
  EXPECT_EQ(back.limit, 7);
  EXPECT_EQ(back.settings, f.settings);
  const ResultRow& w = back.rows[4];
  EXPECT_DOUBLE_EQ(w.std_err, 0.031);
  EXPECT_DOUBLE_EQ(w.std_err_draws, 0.004);
  EXPECT_EQ(w.limit, 7);
  EXPECT_EQ(w.files, f.rows[4].files);
  EXPECT_DOUBLE_EQ(w.demos_mean, 2.5);
  EXPECT_EQ(w.demos_min, 1);
  EXPECT_TRUE(std::isnan(back.rows[0].demos_mean));  // zero-shot: null
  EXPECT_EQ(back.rows[0].demos_min, -1);
  // The average's standard error treats the tasks' errors as independent.
  f.rows[0].std_err = 0.03;
  f.rows[1].std_err = 0.04;
  f.rows[2].std_err = 0.0;
  add_summary_rows(&f);
  EXPECT_NEAR(find(f, "zero-shot-avg")->std_err, 0.05 / 3, 1e-12);
}


// A results file saved by an editor that writes a UTF-8 byte order mark still reads (the shared
// text reader drops it).
TEST(EvalReport, ResultsFileWithByteOrderMarkIsRead) {
  const std::string dir = testing_eval::fresh_temp_dir("report-bom");
  write_file_atomic(dir + "/r.json", "\xEF\xBB\xBF" + results_json(sample()));
  EXPECT_EQ(read_results(dir + "/r.json").rows.size(), sample().rows.size());
}

}  // namespace
}  // namespace moe
