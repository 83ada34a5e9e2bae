// test_eval_cli.cpp — the ./eval binary as a user meets it: --help exits 0, a failed data check
// and bad input exit 1 with a message on stderr. Runs the binary named by MOE_EVAL_BIN, else
// ./eval from the repository root (make test builds it first); skips when neither exists.
#include <gtest/gtest.h>

#include "cli_util.h"


#include <cstdlib>
#include <filesystem>
#include <string>

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

}  // namespace
