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

}  // namespace
}  // namespace moe
