// The ./finetune program as a user meets it: --help lists the fine-tuning flags, bad input gives a
// message naming the problem and the fix with exit code 1, and a run on the synthetic fixture
// task (SST-2 file format) prints its notes and leaves best.bin and results.json.
// Runs the built ./finetune from the repository root (make test builds the programs first).
#include <gtest/gtest.h>


#include <filesystem>
#include <string>

#include "cli_util.h"
#include "ft_fixtures.h"

namespace fs = std::filesystem;
using namespace moe::testing;

namespace {

using Result = CliResult;

Result run_finetune(const std::string& args) { return run_cli(program_path("finetune"), args); }

class FinetuneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("./finetune")) GTEST_SKIP() << "./finetune is not built (run `make test`)";
  }
};

}  // namespace

TEST_F(FinetuneCli, HelpListsTheFinetuneFlags) {
  Result r = run_finetune("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--task", "--train-file", "--dev-file", "--carve-train", "--epochs",
                           "--freeze-experts", "--freeze-router", "--aux-loss-weight",
                           "--eval-capacity-fraction", "--limit-train", "--ckpt", "--lr"})
    EXPECT_TRUE(contains(r.output, flag)) << flag << "\n" << r.output;
  EXPECT_FALSE(contains(r.output, "--steps")) << "a train-only flag";
}

TEST_F(FinetuneCli, MissingCheckpointOrFilesAreExplained) {
  Result r = run_finetune("--task boolq");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "--ckpt is required")) << r.output;
  const std::string dir = fresh_dir("cli-files");
  const std::string ckpt = write_tiny_checkpoint(dir, "a b c\n", tiny_config(), 260, 1);
  r = run_finetune("--task boolq --ckpt " + ckpt + " --out-dir " + dir + "/out");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "--carve-train 2270")) << r.output;  // the HINT for BoolQ
  r = run_finetune("--task cola --ckpt " + ckpt);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "boolq|mnli|sst2")) << r.output;
}

TEST_F(FinetuneCli, RunsOnTheFixtureTask) {
  const std::string dir = fresh_dir("cli-run");
  const std::string corpus = write_good_bad_task(dir, 160, 40, 5);
  const std::string ckpt = write_tiny_checkpoint(dir, corpus, tiny_config(), 300, 3);
  Result r = run_finetune("--task sst2 --ckpt " + ckpt + " --dev-file " + dir +
                          "/train.tsv --carve-train 120 --epochs 2 --lr 3e-3 --dropout 0 "
                          "--batch-size 8 --threads 1 --out-dir " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "carved 120 train / 40 dev")) << r.output;
  EXPECT_TRUE(contains(r.output, "epoch 2/2 | train loss")) << r.output;
  EXPECT_TRUE(contains(r.output, "majority-class baseline on dev")) << r.output;
  EXPECT_TRUE(fs::exists(dir + "/out/best.bin"));
  EXPECT_TRUE(fs::exists(dir + "/out/results.json"));
  EXPECT_FALSE(fs::exists(dir + "/out/results.json.tmp"));
}
