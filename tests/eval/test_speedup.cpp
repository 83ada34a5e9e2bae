// test_speedup.cpp — the speedup factor of SPEC §8 (src/eval/speedup.h) against hand-computed
// interpolations, the running-best rule for non-monotone series, and `eval --speedup` end to end
// on results files written by report.h.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "eval/report.h"
#include "eval/speedup.h"
#include "io/text_io.h"
#include "eval_test_util.h"
#include "io/json.h"

namespace moe {
namespace {

const std::vector<ComputePoint> kDense = {{1e15, 30}, {1e16, 20}, {1e17, 15}};
const std::vector<ComputePoint> kMoE = {{1e16, 16}, {1e15, 22}, {1e17, 12}};  // unsorted on purpose

TEST(EvalSpeedup, InterpolatesLogComputeLinearlyInTheMetric) {
  const auto env = monotone_envelope(kMoE, false);
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[0].compute, 1e15);
  // ppl 20 lies 1/3 of the way from 22 to 16: log10 c = 15 + 1/3.
  EXPECT_NEAR(std::log10(compute_to_reach(env, 20, false)), 15.0 + 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(std::log10(compute_to_reach(env, 15, false)), 16.25, 1e-12);
  EXPECT_DOUBLE_EQ(compute_to_reach(env, 22, false), 1e15);
  EXPECT_DOUBLE_EQ(compute_to_reach(env, 12, false), 1e17);
  EXPECT_TRUE(std::isnan(compute_to_reach(env, 25, false)));  // cheaper than measured
  EXPECT_TRUE(std::isnan(compute_to_reach(env, 11, false)));  // better than measured
}

TEST(EvalSpeedup, SpeedupAtDensePointsAndOverGrid) {
  const SpeedupCurve c = speedup_curve("ppl-in-domain", kDense, kMoE, false, 5);
  ASSERT_TRUE(c.overlap);
  EXPECT_DOUBLE_EQ(c.t_lo, 22);
  EXPECT_DOUBLE_EQ(c.t_hi, 15);
  ASSERT_EQ(c.at_dense_points.size(), 2u);  // dense ppl 20 and 15 lie in [15, 22]
  EXPECT_DOUBLE_EQ(c.at_dense_points[0].target, 20);
  EXPECT_DOUBLE_EQ(c.at_dense_points[0].dense_compute, 1e16);
  EXPECT_NEAR(c.at_dense_points[0].speedup, std::pow(10.0, 2.0 / 3.0), 1e-9);  // 4.64x
  EXPECT_NEAR(c.at_dense_points[1].speedup, std::pow(10.0, 0.75), 1e-9);       // 5.62x
  ASSERT_EQ(c.grid.size(), 5u);
  EXPECT_DOUBLE_EQ(c.grid.front().target, 22);
  EXPECT_DOUBLE_EQ(c.grid.back().target, 15);
  // At ppl 22, dense needs 10^(15 + 0.8) (8/10 of the way from 30 to 20), MoE 1e15.
  EXPECT_NEAR(c.grid.front().speedup, std::pow(10.0, 0.8), 1e-9);
}

TEST(EvalSpeedup, NonMonotoneSeriesUseTheRunningBest) {
  const std::vector<ComputePoint> acc = {{1e15, 0.30}, {1e16, 0.28}, {1e17, 0.40}};
  const auto env = monotone_envelope(acc, true);
  EXPECT_DOUBLE_EQ(env[1].metric, 0.30);  // the worse larger run takes the cheaper run's value
  EXPECT_DOUBLE_EQ(compute_to_reach(env, 0.30, true), 1e15);  // plateau: the cheapest compute
  EXPECT_NEAR(std::log10(compute_to_reach(env, 0.35, true)), 16.5, 1e-12);
  EXPECT_TRUE(std::isnan(compute_to_reach(env, 0.29, true)));
  // No common range: MoE always better than dense ever gets.
  const SpeedupCurve c =
      speedup_curve("x", {{1e15, 0.2}, {1e16, 0.25}}, {{1e15, 0.3}, {1e16, 0.35}}, true);
  EXPECT_FALSE(c.overlap);
  EXPECT_TRUE(c.at_dense_points.empty());
}

ResultsFile results_with(double compute, double ppl_in, double zero_avg) {
  ResultsFile f;
  f.checkpoint = "ck";
  f.training_compute = compute;
  f.scoring = "mean";
  ResultRow a;
  a.task = "ppl-in-domain";
  a.setting = "in-domain";
  a.metric = "ppl";
  a.mean = ppl_in;
  ResultRow b;
  b.task = "zero-shot-avg";
  b.setting = "zero-shot";
  b.metric = "acc";
  b.mean = zero_avg;
  b.note = "tasks: hellaswag,piqa";
  f.rows = {a, b};
  return f;
}

TEST(EvalSpeedup, RunSpeedupReadsResultsAndWritesPlots) {
  const std::string dir = testing_eval::fresh_temp_dir("speedup");
  std::vector<std::string> dense, moe;
  for (size_t i = 0; i < kDense.size(); ++i) {
    dense.push_back(dir + "/d" + std::to_string(i) + ".json");
    write_results(dense.back(), results_with(kDense[i].compute, kDense[i].metric, 0.3 + 0.05 * i));
    moe.push_back(dir + "/m" + std::to_string(i) + ".json");
    write_results(moe.back(), results_with(kMoE[i].compute, kMoE[i].metric, 0.33 + 0.05 * i));
  }
  const auto curves = run_speedup(dense, moe, dir + "/out");
  ASSERT_EQ(curves.size(), 4u);
  EXPECT_NEAR(curves[0].at_dense_points[0].speedup, std::pow(10.0, 2.0 / 3.0), 1e-9);
  EXPECT_TRUE(curves[1].dense.empty());  // no out-of-domain rows in these files
  EXPECT_TRUE(curves[2].overlap);
  namespace fs = std::filesystem;
  EXPECT_TRUE(fs::exists(dir + "/out/speedup_ppl-in-domain_curves.svg"));
  EXPECT_TRUE(fs::exists(dir + "/out/speedup_ppl-in-domain.svg"));
  EXPECT_TRUE(fs::exists(dir + "/out/speedup_zero-shot-avg.svg"));
  const Json j = parse_json(read_text_file(dir + "/out/speedup.json"));
  EXPECT_EQ(j.at("curves").as_array().size(), 4u);
  // A results file without training compute is refused with a hint.
  ResultsFile bad = results_with(NAN, 20, 0.3);
  write_results(dir + "/bad.json", bad);
  EXPECT_THROW(run_speedup({dir + "/bad.json"}, moe, dir + "/out"), Error);
}

// The metric-vs-compute figure: perplexity on a log axis, accuracy on a linear one; each family
// drawn as its measured points plus its interpolated c(t), which lies on the envelope.
TEST(EvalSpeedup, CurvesChartDrawsInterpolatedCurvesOnALogPerplexityAxis) {
  const SpeedupCurve c = speedup_curve("ppl-in-domain", kDense, kMoE, false);
  const LineChart chart = metric_vs_compute_chart(c, "in-domain perplexity", kDense, kMoE);
  EXPECT_TRUE(chart.log_y);
  EXPECT_TRUE(chart.log_x);
  ASSERT_EQ(chart.series.size(), 4u);
  const LineSeries& dense_ct = chart.series[1];
  EXPECT_EQ(dense_ct.name, "dense c(t)");
  EXPECT_TRUE(dense_ct.lines);
  ASSERT_GE(dense_ct.x.size(), 10u);
  for (size_t i = 0; i < dense_ct.x.size(); ++i)  // every drawn point is (c_dense(t), t)
    EXPECT_NEAR(std::log(dense_ct.x[i]), std::log(compute_to_reach(c.dense, dense_ct.y[i], false)),
                1e-9);
  EXPECT_FALSE(chart.series[0].lines);  // the measured points themselves
  EXPECT_EQ(chart.series[0].x.size(), 3u);
  const SpeedupCurve acc = speedup_curve("zero-shot-avg", {{1e15, 0.3}, {1e16, 0.4}},
                                         {{1e15, 0.35}, {1e16, 0.45}}, true);
  EXPECT_FALSE(metric_vs_compute_chart(acc, "acc", {}, {}).log_y);
}

// --speedup lists its inputs and warns about files computed with --limit or on few items/tokens.
TEST(EvalSpeedup, ListsInputsAndWarnsAboutLimitAndSmallN) {
  const std::string dir = testing_eval::fresh_temp_dir("speedup-warn");
  std::vector<std::string> dense, moe;
  for (size_t i = 0; i < kDense.size(); ++i) {
    ResultsFile d = results_with(kDense[i].compute, kDense[i].metric, 0.3 + 0.05 * i);
    ResultsFile m = results_with(kMoE[i].compute, kMoE[i].metric, 0.33 + 0.05 * i);
    for (ResultsFile* f : {&d, &m}) {  // big enough: no warning
      ResultRow piqa = f->rows[1];
      piqa.task = "piqa";
      piqa.n = 1838;
      ResultRow ppl = f->rows[0];
      ppl.task = "ppl";
      ppl.n = 250000;
      f->rows.push_back(piqa);
      f->rows.push_back(ppl);
    }
    if (i == 1) {  // one dense file made with --limit 5 (so n = 5, 315 ppl tokens)
      d.limit = 5;
      d.rows[2].n = 5;
      d.rows[2].std_err = 0.2;
      d.rows[3].n = 315;
      d.rows[3].split = "gutenberg.valid.txt";
    }
    dense.push_back(dir + "/d" + std::to_string(i) + ".json");
    moe.push_back(dir + "/m" + std::to_string(i) + ".json");
    write_results(dense.back(), d);
    write_results(moe.back(), m);
  }
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  run_speedup(dense, moe, dir + "/out");
  const std::string out = ::testing::internal::GetCapturedStdout();
  const std::string err = ::testing::internal::GetCapturedStderr();
  for (const std::string& f : dense) EXPECT_NE(out.find("  " + f + ": ck (step"), std::string::npos) << out;
  for (const std::string& f : moe) EXPECT_NE(out.find("  " + f + ": ck (step"), std::string::npos);
  EXPECT_NE(err.find("warning: " + dense[1] + " was computed with --limit 5"), std::string::npos)
      << err;
  EXPECT_NE(err.find("warning: " + dense[1] + ": piqa has only n = 5 items (standard error 20 "),
            std::string::npos) << err;
  EXPECT_NE(err.find("warning: " + dense[1] + ": perplexity of gutenberg.valid.txt rests on 315 "
                     "tokens"), std::string::npos) << err;
  EXPECT_EQ(err.find(dense[0]), std::string::npos) << err;  // the full-size files pass quietly
  EXPECT_EQ(err.find(moe[0]), std::string::npos) << err;
}

}  // namespace
}  // namespace moe
