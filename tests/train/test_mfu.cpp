// MFU on the CPU (notes/design.md "Hardening", "MFU appears in the progress line and the log";
// notes/training.md "MFU"): the CPU's peak is the measured rate of our own GEMM
// (src/train/cpu_peak.h), and a CPU run reports MFU against it in log.jsonl and in its progress
// line, saying which peak it used.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "core/parallel.h"
#include "io/json.h"
#include "nn/config.h"
#include "test_util.h"
#include "train/cpu_peak.h"
#include "train/trainer.h"

using namespace moe;
using moe::testing::error_of;
using moe::testing::has;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// The GFLOP/s figure of a "measured-gemm 61.2 GFLOP/s" label, or NaN when it has another form.
double label_gflops(const std::string& label) {
  const std::string head = "measured-gemm ", tail = " GFLOP/s";
  if (label.rfind(head, 0) != 0 || label.size() <= head.size() + tail.size() ||
      label.compare(label.size() - tail.size(), tail.size(), tail) != 0)
    return NAN;
  return std::atof(label.substr(head.size(), label.size() - head.size() - tail.size()).c_str());
}

TrainConfig tiny_cpu_run(const std::string& name) {
  TrainConfig c;
  c.device = cpu();
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.seq_len = 16;
  c.data.cache_dir = "/tmp/moe-gpt-test-cache";  // shared with the other training tests
  c.data.vocab_size = 512;
  c.batch_size = 4;
  c.steps = 4;
  c.log_every = 1;
  c.eval_every = 4;
  c.eval_batches = 2;
  c.ckpt_every = 0;
  c.quiet = true;
  c.out_dir = (fs::temp_directory_path() /
               ("moe-gpt-test-" + name + "-" + std::to_string(::getpid()))).string();
  fs::remove_all(c.out_dir);
  return c;
}

}  // namespace

TEST(CpuPeak, MeasuredRateIsPositiveAndFinite) {
  const CpuPeak p = measure_cpu_gemm_peak();
  EXPECT_TRUE(std::isfinite(p.flops_per_s)) << p.flops_per_s;
  EXPECT_GT(p.flops_per_s, 0.0);
  EXPECT_EQ(p.n, 512);
  EXPECT_GE(p.reps, 1);
  EXPECT_EQ(p.threads, num_threads());
#if !defined(__SANITIZE_ADDRESS__)  // an -O0 sanitizer build is many times slower
  // It runs at the start of every CPU training run, so it must stay short.
  EXPECT_LT(p.seconds, 0.2) << "the GEMM peak took " << p.seconds << " s";
#endif
  // The label is what log.jsonl carries; it must give back the measured figure.
  EXPECT_NEAR(label_gflops(cpu_peak_label(p)), p.flops_per_s / 1e9, 0.051)
      << cpu_peak_label(p);
  EXPECT_TRUE(has(cpu_peak_description(p), "measured GEMM peak")) << cpu_peak_description(p);
}

TEST(CpuPeak, MeasuredOncePerThreadCount) {
  const int before = num_threads();
  const CpuPeak a = cpu_gemm_peak(), b = cpu_gemm_peak();
  EXPECT_EQ(a.flops_per_s, b.flops_per_s);  // the stored result, not a second measurement
  set_num_threads(1);
  const CpuPeak one = cpu_gemm_peak();
  set_num_threads(before);
  EXPECT_EQ(one.threads, 1);
  EXPECT_GT(one.flops_per_s, 0.0);
}

TEST(CpuPeak, BadArgumentsAreErrors) {
  EXPECT_TRUE(has(error_of([] { measure_cpu_gemm_peak(8); }), "16^3"));
  EXPECT_TRUE(has(error_of([] { measure_cpu_gemm_peak(64, 0); }), "repetition"));
}

// Every log line of a CPU run has "mfu" and says what it was measured against; the figure is
// model FLOPs/s over the labelled peak.
TEST(TrainMfu, CpuRunLogsMfuAgainstTheMeasuredGemmPeak) {
  const TrainConfig c = tiny_cpu_run("mfu");
  Trainer t(c);
  ASSERT_EQ(t.run(), 0);
  const double ftok = model_flops_per_token(t.model().config(), t.model().active_param_count());
  const std::vector<std::string> lines = lines_of(t.log_path());
  ASSERT_EQ(lines.size(), 4u);
  for (const std::string& line : lines) {
    const Json j = parse_json(line);
    const Json* mfu = j.find("mfu");
    const Json* peak = j.find("mfu_peak");
    ASSERT_TRUE(mfu && mfu->is_number()) << line;
    ASSERT_TRUE(peak && peak->is_string()) << line;
    const double gflops = label_gflops(peak->as_string());
    ASSERT_TRUE(std::isfinite(gflops) && gflops > 0) << line;
    EXPECT_GT(mfu->as_number(), 0.0) << line;
    const double expect = j.at("tokens_per_s").as_number() * ftok / (gflops * 1e9);
    // Rounding: mfu is written with 4 decimals, tokens/s with 1, and the label's GFLOP/s with 1
    // decimal, a relative error of up to 0.05 / gflops (0.4% at 13 GFLOP/s on a slow machine).
    EXPECT_NEAR(mfu->as_number(), expect, 6e-5 + expect * (2e-3 + 0.05 / gflops)) << line;
  }
  fs::remove_all(c.out_dir);
}

// The user's view: the progress line of `train --device cpu` shows MFU, and the output says once
// which peak it is measured against.
TEST(TrainMfu, CpuProgressLineShowsMfu) {
  using namespace moe::testing;
  if (!fs::exists(program_path("train")))
    GTEST_SKIP() << program_path("train") << " is not built (run `make test`)";
  const std::string out =
      (fs::temp_directory_path() / ("moe-gpt-cli-mfu-" + std::to_string(::getpid()))).string();
  fs::remove_all(out);
  const CliResult r = run_cli(
      program_path("train"),
      "--device cpu --seq-len 16 --batch-size 4 --eval-batches 2 --n-layer 2 --d-model 32 "
      "--n-head 2 --vocab-size 512 --cache-dir /tmp/moe-gpt-test-cache --steps 2 --log-every 1 "
      "--out-dir " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "MFU is against this CPU's measured GEMM peak")) << r.output;
  EXPECT_TRUE(contains(r.output, "step 2/2 | loss ")) << r.output;
  const size_t at = r.output.find("step 2/2 | loss ");
  const std::string line = r.output.substr(at, r.output.find('\n', at) - at);
  EXPECT_TRUE(contains(line, " tok/s | MFU ") && contains(line, "% | ")) << line;
  for (const std::string& l : lines_of(out + "/log.jsonl"))
    EXPECT_TRUE(contains(l, "\"mfu_peak\":\"measured-gemm ")) << l;
  fs::remove_all(out);
}
