// test_eval_cli.cpp — the ./eval binary as a user meets it: --help exits 0, a failed data check
// and bad input exit 1 with a message on stderr; a bad --out-dir is refused before any
// evaluation; non-finite weights stop the run; the MoE capacity rule is printed for MoE models
// only; --task generate prints a continuation. Runs the binary named by MOE_EVAL_BIN, else
// ./eval from the repository root (make test builds it first); skips when neither exists.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "cli_util.h"
#include "eval_ckpt_util.h"

namespace {

std::string eval_bin() {
  const char* env = std::getenv("MOE_EVAL_BIN");
  return env ? env : moe::testing::program_path("eval");
}

using Result = moe::testing::CliResult;

Result run(const std::string& args) { return moe::testing::run_cli(eval_bin(), args); }

class EvalCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(eval_bin()))
      GTEST_SKIP() << eval_bin() << " is not built (run `make test`, or set MOE_EVAL_BIN)";
  }
};

TEST_F(EvalCli, HelpListsTheEvalFlags) {
  const Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--task", "--shots", "--draws", "--scoring", "--skip-bad",
                           "--speedup", "--check-data", "--ppl-data"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
}

TEST_F(EvalCli, FailedDataCheckExitsOne) {
  const Result r = run("--check-data tests/fixtures/eval/no-such-folder");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("FAILED"), std::string::npos) << r.output;
}

TEST_F(EvalCli, MissingCheckpointIsAnError) {
  const Result r =
      run("--ckpt tests/fixtures/eval/none.bin --task piqa --out-dir /tmp/moe-gpt-eval-cli");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
  const Result t = run("--task squad");
  EXPECT_EQ(t.code, 1);
}

// Checkpoints for the tests below, made once per test binary run.
class EvalCliModels : public EvalCli {
 protected:
  static void SetUpTestSuite() {
    dir_ = moe::testing_eval::fresh_temp_dir("cli-models");
    dense_ = moe::testing_eval::save_eval_checkpoint(dir_, "dense.bin");
    moe_ = moe::testing_eval::save_eval_checkpoint(dir_, "moe.bin", 4);
  }
  static std::string dir_, dense_, moe_;
  static std::string common() {
    return "--device cpu --data-dir tests/fixtures/eval/data --task piqa --limit 2 ";
  }
};
std::string EvalCliModels::dir_, EvalCliModels::dense_, EvalCliModels::moe_;

TEST_F(EvalCliModels, BadOutDirIsRefusedBeforeTheEvaluation) {
  const std::string file = dir_ + "/a-file";
  std::ofstream(file) << "x";
  for (const std::string& out : {file, file + "/sub", std::string("")}) {
    const Result r = run("--ckpt " + dense_ + " " + common() + "--out-dir='" + out + "'");
    EXPECT_EQ(r.code, 1) << out << "\n" << r.output;
    EXPECT_TRUE(moe::testing::contains(r.output, "error: --out-dir")) << r.output;
    EXPECT_FALSE(moe::testing::contains(r.output, "piqa 0-shot")) << "evaluated first:\n"
                                                                  << r.output;
  }
}

TEST_F(EvalCliModels, NonFiniteWeightsExitWithAnError) {
  const std::string bad = moe::testing_eval::save_eval_checkpoint(
      dir_, "inf.bin", 0, [](moe::Checkpoint& ck) {
        moe::testing_eval::checkpoint_param(ck, "ln_f.weight").data<float>()[0] =
            std::numeric_limits<float>::infinity();
      });
  const Result r = run("--ckpt " + bad + " " + common() + "--out-dir " + dir_ + "/inf");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(moe::testing::contains(r.output, "parameter ln_f.weight holds 1 non-finite"))
      << r.output;
  EXPECT_FALSE(moe::testing::contains(r.output, "nan%")) << r.output;
}

TEST_F(EvalCliModels, CapacityRuleIsPrintedForMoeModelsOnly) {
  const Result d = run("--ckpt " + dense_ + " " + common() + "--out-dir " + dir_ + "/d");
  ASSERT_EQ(d.code, 0) << d.output;
  EXPECT_FALSE(moe::testing::contains(d.output, "MoE capacity")) << d.output;
  EXPECT_FALSE(moe::testing::contains(d.output, "Cap = ")) << d.output;
  const Result m = run("--ckpt " + moe_ + " " + common() + "--out-dir " + dir_ + "/m");
  ASSERT_EQ(m.code, 0) << m.output;
  EXPECT_TRUE(moe::testing::contains(m.output, "MoE capacity: Cap = 2 * ceil(N / E) slots per "
                                               "expert, the training formula")) << m.output;
}

TEST_F(EvalCliModels, GenerateContinuesThePrompt) {
  const std::string args = "--ckpt " + moe_ + " --device cpu --task generate --prompt 'The cat' "
                           "--max-new-tokens 12 ";
  const Result a = run(args + "--temperature 0");
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_TRUE(moe::testing::contains(a.output, "---- prompt ----\nThe cat\n---- continuation"))
      << a.output;
  // The text between the markers (the speed after "---- end" differs from run to run).
  const auto continuation = [](const std::string& out) {
    const size_t b = out.find("---- continuation ----\n"), e = out.find("\n---- end");
    return b == std::string::npos || e == std::string::npos ? std::string("?")
                                                            : out.substr(b, e - b);
  };
  const Result b = run(args + "--temperature 0 --seed 9");
  EXPECT_EQ(continuation(a.output), continuation(b.output))
      << "greedy generation must not depend on the seed";
  EXPECT_NE(continuation(a.output), "?");
  const Result wrong = run("--ckpt " + moe_ + " --device cpu --task piqa --prompt hi");
  EXPECT_EQ(wrong.code, 1);
  EXPECT_TRUE(moe::testing::contains(wrong.output, "--prompt applies to --task generate only"));
  const Result mixed = run("--ckpt " + moe_ + " --device cpu --task generate,piqa");
  EXPECT_EQ(mixed.code, 1);
}

}  // namespace
