// Command-line behaviour of the programs as a user meets it: bad input gives a message naming
// the problem and the fix on stderr, a non-zero exit code, and no output files.
// Runs the built train (./train, or $MOE_BIN_DIR/train) from the repository root.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli_util.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace fs = std::filesystem;

using namespace moe::testing;
using Result = CliResult;

namespace {

Result run(const std::string& args) { return run_cli(program_path("train"), args); }

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(program_path("train")))
      GTEST_SKIP() << program_path("train") << " is not built (run `make test`)";
    // One folder per process: several builds may run these tests at the same time.
    out_ = (fs::temp_directory_path() / ("moe-gpt-cli-" + std::to_string(::getpid()))).string();
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

// ---------------------------------------------------------------------------------------------
// notes/design.md "Hardening"

namespace {
// A tiny model on the shared test cache (each run takes a second or two), plus `extra`; a flag
// may be given once only, so `model` and `data` can be replaced.
std::string tiny(const std::string& extra,
                 const std::string& model = "--n-layer 2 --d-model 32 --n-head 2",
                 const std::string& data = "--vocab-size 512 --cache-dir /tmp/moe-gpt-test-cache") {
  return " --device cpu --seq-len 16 --batch-size 4 --eval-batches 2 " + model + " " + data + " " +
         extra;
}
}  // namespace

TEST_F(TrainCli, HugeAuxLossWeightNeverSavesNonFiniteParameters) {
  Result r = run(tiny("--moe-experts 4 --moe-loss-weight 1e38 --ckpt-every 1 --steps 4 "
                      "--log-every 1 --out-dir " + out_));
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_TRUE(contains(r.output, "not finite")) << r.output;
  if (!fs::exists(out_ + "/checkpoint.bin")) {
    EXPECT_TRUE(contains(r.output, "No checkpoint was written")) << r.output;
    EXPECT_FALSE(contains(r.output, "is kept")) << r.output;
  }
}

TEST_F(TrainCli, OutDirThatCannotHoldARunNamesTheFlag) {
  fs::create_directories(out_);
  std::ofstream(out_ + "/file") << "x";
  for (const std::string& bad :
       {std::string("--out-dir="), "--out-dir " + out_ + "/file", "--out-dir " + out_ + "/file/sub",
        std::string("--out-dir /proc/moe-x")}) {
    Result r = run(tiny("--steps 1 " + bad));
    EXPECT_EQ(r.code, 1) << bad << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "error: --out-dir")) << bad << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists("/checkpoint.bin"));
}

TEST_F(TrainCli, RefusesToReplaceACheckpointWithoutOverwrite) {
  fs::create_directories(out_);
  std::ofstream(out_ + "/checkpoint.bin") << "an earlier run's checkpoint";
  Result r = run(tiny("--steps 1 --out-dir " + out_));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "--overwrite") && contains(r.output, "--resume")) << r.output;
  std::ifstream in(out_ + "/checkpoint.bin");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "an earlier run's checkpoint");
  Result ok = run(tiny("--steps 1 --overwrite --out-dir " + out_));
  EXPECT_EQ(ok.code, 0) << ok.output;
}

TEST_F(TrainCli, AShapeThatCannotFitIsRefusedUpFrontWithAnEstimate) {
  Result r =
      run(tiny("--steps 1 --out-dir " + out_, "--n-layer 256 --d-model 65536 --n-head 1024"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "GiB") && contains(r.output, "--batch-size")) << r.output;
}

TEST_F(TrainCli, DataDirectoryMeansItsTextFilesAndXzIsReadDirectly) {
  const std::string data = out_ + "/books";
  fs::create_directories(data);
  {
    std::ofstream a(data + "/a.txt");
    for (int i = 0; i < 300; ++i) a << "the cat number " << i % 13 << " sat on the mat.\n";
    std::ofstream b(data + "/b.txt");
    for (int i = 0; i < 300; ++i) b << "a dog called " << i % 11 << " ran to the park.\n";
  }
  ASSERT_EQ(std::system(("xz " + data + "/b.txt").c_str()), 0);  // b.txt -> b.txt.xz
  std::ofstream(data + "/books.index.tsv") << "id\ttitle\n1\tcats\n";
  Result r = run(tiny("--steps 2 --out-dir " + out_ + "/run", "--n-layer 2 --d-model 32 --n-head 2",
                      "--data " + data + " --vocab-size 300 --cache-dir " + out_ + "/cache"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, data + "/a.txt") && contains(r.output, data + "/b.txt.xz"))
      << r.output;
  EXPECT_FALSE(contains(r.output, "index.tsv")) << r.output;
  EXPECT_TRUE(fs::exists(out_ + "/run/loss.svg"));
}

TEST_F(TrainCli, AFullDiskIsNoticedAtTheFirstFailedWrite) {
  // A file-size limit of 64 KiB makes the first big write (the 3 MB embedded corpus into a fresh
  // --cache-dir) fail as on a full disk; the shell ignores SIGXFSZ so the write returns an error.
  const std::string cache = out_ + "/cache";
  Result r = run_cli("bash -c \"trap '' XFSZ; ulimit -f 64; exec " + program_path("train"),
                     tiny("--steps 2 --out-dir " + out_ + "/run\"",
                          "--n-layer 2 --d-model 32 --n-head 2",
                          "--vocab-size 512 --cache-dir " + cache));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, cache) && contains(r.output, "disk may be full")) << r.output;
  ASSERT_TRUE(fs::is_directory(cache));
  for (const auto& e : fs::recursive_directory_iterator(cache))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}
