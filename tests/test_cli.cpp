// Command-line behaviour of the programs as a user meets it: bad input gives a message naming
// the problem and the fix on stderr, a non-zero exit code, and no output files.
// Runs the built ./train from the repository root (make test builds the programs first).
#include <gtest/gtest.h>

#include "cli_util.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

using namespace moe::testing;
using Result = CliResult;

namespace {

Result run(const std::string& args) { return run_cli(program_path("train"), args); }

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("./train")) GTEST_SKIP() << "./train is not built (run `make test`)";
    out_ = (fs::temp_directory_path() / "moe-gpt-cli").string();
    fs::remove_all(out_);
  }
  std::string out_;
};

}  // namespace

TEST_F(TrainCli, HelpListsFlagsAndExitsZero) {
  Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--batch-size")) << r.output;
  EXPECT_TRUE(contains(r.output, "--resume")) << r.output;
}

TEST_F(TrainCli, UnknownFlagSuggestsTheRightOne) {
  Result r = run("--batch-sise 4 --out-dir " + out_);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "--batch-size")) << r.output;
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(TrainCli, MalformedAndOutOfRangeValues) {
  Result a = run("--lr abc --out-dir " + out_);
  EXPECT_EQ(a.code, 1);
  EXPECT_TRUE(contains(a.output, "--lr")) << a.output;
  Result b = run("--dropout 1.5 --out-dir " + out_);
  EXPECT_EQ(b.code, 1);
  EXPECT_TRUE(contains(b.output, "--dropout")) << b.output;
  Result c = run("--model huge --out-dir " + out_);
  EXPECT_EQ(c.code, 1);
  EXPECT_TRUE(contains(c.output, "tiny")) << c.output;  // lists the choices
  Result d = run("--d-model 100 --n-head 3 --out-dir " + out_);
  EXPECT_EQ(d.code, 1);
  EXPECT_TRUE(contains(d.output, "--n-head")) << d.output;
  EXPECT_FALSE(fs::exists(out_ + "/checkpoint.bin"));
}

TEST_F(TrainCli, MissingOrEmptyDataIsAnError) {
  Result a = run("--data /nonexistent/text.txt --out-dir " + out_);
  EXPECT_EQ(a.code, 1);
  EXPECT_TRUE(contains(a.output, "/nonexistent/text.txt")) << a.output;
  fs::create_directories(out_);
  const std::string empty = out_ + "/empty.txt";
  std::ofstream(empty).close();
  Result b = run("--data " + empty + " --out-dir " + out_ + "/run");
  EXPECT_EQ(b.code, 1);
  EXPECT_TRUE(contains(b.output, "empty")) << b.output;
  EXPECT_FALSE(fs::exists(out_ + "/run/checkpoint.bin"));
}

TEST_F(TrainCli, ResumeFromAMissingOrForeignFile) {
  Result a = run("--resume /nonexistent/ck.bin --out-dir " + out_);
  EXPECT_EQ(a.code, 1);
  EXPECT_TRUE(contains(a.output, "/nonexistent/ck.bin")) << a.output;
  fs::create_directories(out_);
  std::ofstream(out_ + "/not-a-checkpoint.bin") << "hello";
  Result b = run("--resume " + out_ + "/not-a-checkpoint.bin --out-dir " + out_);
  EXPECT_EQ(b.code, 1);
  EXPECT_TRUE(contains(b.output, "not a moe-gpt checkpoint")) << b.output;
}
