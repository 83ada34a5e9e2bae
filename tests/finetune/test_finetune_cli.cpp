// The ./finetune program as a user meets it: --help lists the fine-tuning flags, bad input gives a
// message naming the problem and the fix with exit code 1, and a run on the synthetic fixture
// task (SST-2 file format) prints its notes and leaves best.bin and results.json.
// notes/design.md "Hardening" ("Nothing lost", "finetune finds its data", clear errors): the
// default out-dir follows the checkpoint and the task; the task files come from the data folder when none are given; an
// earlier run's outputs are never replaced without --overwrite; a folder in use is refused; SIGTERM
// saves like Ctrl-C (exit 143); a failed write (full disk) stops the run naming the file; a bad
// --out-dir is refused before any work.
// Runs the program from MOE_BIN_DIR (else the repository root); runs that write relative paths
// start in a fresh temporary folder, so nothing lands in the checkout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_util.h"
#include "finetune/finetune_flags.h"
#include "ft_fixtures.h"

namespace fs = std::filesystem;
using namespace moe::testing;

namespace {

using Result = CliResult;

Result run_finetune(const std::string& args) { return run_cli(program_path("finetune"), args); }

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The program started in folder `cwd` (relative paths, --data-dir's default ../shared/data).
Result run_finetune_in(const std::string& cwd, const std::string& args) {
  const std::string prog = fs::absolute(program_path("finetune")).string();
  return run_cli("cd " + sh_quote(cwd) + " && " + sh_quote(prog), args);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

class FinetuneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(program_path("finetune")))
      GTEST_SKIP() << program_path("finetune") << " is not built (run `make test`)";
  }
};

// The synthetic task in dir/train.tsv + dir/dev.tsv and a tiny checkpoint dir/pretrained.bin.
std::string task_and_checkpoint(const std::string& dir, int n_train = 64, int n_dev = 16) {
  const std::string corpus = write_good_bad_task(dir, n_train, n_dev, 5);
  return write_tiny_checkpoint(dir, corpus, tiny_config(), 300, 3);
}

// Flags of a short run on dir's task files (out-dir not included).
std::string quick_run(const std::string& dir, const std::string& ckpt, int epochs = 1) {
  return "--task sst2 --ckpt " + ckpt + " --train-file " + dir + "/train.tsv --dev-file " + dir +
         "/dev.tsv --epochs " + std::to_string(epochs) +
         " --lr 3e-3 --dropout 0 --batch-size 8 --threads 1";
}

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
  fs::create_directories(dir + "/work");  // no ../shared/data from here
  r = run_finetune_in(dir + "/work", "--task boolq --ckpt " + ckpt + " --out-dir " + dir + "/out");
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
  EXPECT_FALSE(fs::exists(dir + "/out/.lock")) << "the lock goes with the run";
}

// ---- notes/design.md "Hardening", item 5: the default out-dir
// ---------------------------------------------------

TEST(FinetuneFlags, DefaultOutDirFollowsCheckpointAndTask) {
  const char* argv[] = {"finetune", "--ckpt", "runs/moe/checkpoint.bin", "--task", "mnli"};
  const moe::Flags f = moe::parse_flags(5, argv, moe::PROG_FINETUNE);
  EXPECT_EQ(moe::finetune_config_from_flags(f).out_dir,
            (fs::path("runs/moe") / "finetune-mnli").string());
  const char* given[] = {"finetune", "--ckpt", "runs/moe/checkpoint.bin", "--out-dir", "mine"};
  EXPECT_EQ(moe::finetune_config_from_flags(moe::parse_flags(5, given, moe::PROG_FINETUNE)).out_dir,
            "mine");
}

// Two fine-tunes of two checkpoints, neither with --out-dir: each writes beside its own checkpoint
// (today both went to runs/default, and the second replaced the first one's results).
TEST_F(FinetuneCli, TwoCheckpointsNeverShareADefaultOutDir) {
  const std::string dir = fresh_dir("cli-default-out");
  const std::string corpus = write_good_bad_task(dir, 48, 16, 5);
  fs::create_directories(dir + "/dense");
  fs::create_directories(dir + "/moe");
  fs::create_directories(dir + "/work");
  const std::string dense = write_tiny_checkpoint(dir + "/dense", corpus, tiny_config(), 300, 3);
  moe::GPTConfig mc = tiny_config();
  mc.moe_experts = 4;
  const std::string moe_ckpt = write_tiny_checkpoint(dir + "/moe", corpus, mc, 300, 3);
  for (const std::string& ckpt : {dense, moe_ckpt}) {
    Result r = run_finetune_in(dir + "/work", quick_run(dir, ckpt));
    ASSERT_EQ(r.code, 0) << r.output;
    const std::string out = (fs::path(ckpt).parent_path() / "finetune-sst2").string();
    EXPECT_TRUE(contains(r.output, out)) << "the output says where it writes\n" << r.output;
    EXPECT_TRUE(fs::exists(out + "/results.json")) << out;
    EXPECT_TRUE(fs::exists(out + "/best.bin")) << out;
  }
  EXPECT_FALSE(fs::exists(dir + "/work/runs")) << "nothing in the shared default folder";
}

// ---- notes/design.md "Hardening": finetune finds its data
// --------------------------------------------------------

// `./finetune --ckpt X --task sst2` with no file flags reads ../shared/data/sst2/ (the data
// folder's layout, MANIFEST.md), as eval does, and says which files it read.
TEST_F(FinetuneCli, FindsItsDataInTheDataFolder) {
  const std::string dir = fresh_dir("cli-data-dir");
  const std::string data = dir + "/shared/data/sst2";
  fs::create_directories(data);
  fs::create_directories(dir + "/work");
  const std::string ckpt = task_and_checkpoint(data);
  Result r = run_finetune_in(dir + "/work", "--ckpt " + ckpt + " --task sst2 --epochs 1 "
                             "--threads 1 --out-dir " + dir + "/out");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "../shared/data/sst2/train.tsv")) << r.output;
  EXPECT_TRUE(contains(r.output, "../shared/data/sst2/dev.tsv")) << r.output;
  EXPECT_TRUE(contains(slurp(dir + "/out/results.json"), "../shared/data/sst2/train.tsv"))
      << "results.json names the files it was computed from";
}

TEST_F(FinetuneCli, MissingDataNamesTheFileAndTheDataDir) {
  const std::string dir = fresh_dir("cli-no-data");
  fs::create_directories(dir + "/work");  // no ../shared/data from here
  const std::string ckpt = write_tiny_checkpoint(dir, "a b c\n", tiny_config(), 260, 1);
  Result r = run_finetune_in(dir + "/work", "--ckpt " + ckpt + " --task mnli --out-dir out");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "../shared/data/mnli/dev_mismatched.jsonl")) << r.output;
  EXPECT_TRUE(contains(r.output, "--data-dir")) << r.output;
  EXPECT_TRUE(contains(r.output, "--train-file")) << "the other way: give the files\n" << r.output;
}

// ---- notes/design.md "Hardening", "Nothing lost"
// -----------------------------------------------------------------

TEST_F(FinetuneCli, RefusesToReplaceAnEarlierRunUnlessOverwrite) {
  const std::string dir = fresh_dir("cli-refuse");
  const std::string ckpt = task_and_checkpoint(dir);
  const std::string out = dir + "/out";
  ASSERT_EQ(run_finetune(quick_run(dir, ckpt) + " --out-dir " + out).code, 0);
  const std::string before = slurp(out + "/results.json");
  Result again = run_finetune(quick_run(dir, ckpt, 2) + " --out-dir " + out);
  EXPECT_EQ(again.code, 1) << again.output;
  EXPECT_TRUE(contains(again.output, "already exists")) << again.output;
  EXPECT_TRUE(contains(again.output, "--overwrite")) << again.output;
  EXPECT_FALSE(contains(again.output, "epoch 1/")) << "refused before any work\n" << again.output;
  EXPECT_EQ(slurp(out + "/results.json"), before) << "the earlier results are untouched";
  Result forced = run_finetune(quick_run(dir, ckpt, 2) + " --out-dir " + out + " --overwrite");
  EXPECT_EQ(forced.code, 0) << forced.output;
  EXPECT_TRUE(contains(slurp(out + "/results.json"), "\"epochs\": 2"));
}

TEST_F(FinetuneCli, AnOutDirInUseIsRefused) {
  const std::string dir = fresh_dir("cli-lock");
  const std::string ckpt = task_and_checkpoint(dir);
  fs::create_directories(dir + "/out");
  std::ofstream(dir + "/out/.lock") << ::getpid() << " finetune\n";  // a live process holds it
  Result r = run_finetune(quick_run(dir, ckpt) + " --out-dir " + dir + "/out");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "in use")) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/out/results.json"));
}

// A cluster's time limit (or `timeout`) sends SIGTERM: the run saves like Ctrl-C and exits 143.
TEST_F(FinetuneCli, SigtermSavesAndExits143) {
  const std::string dir = fresh_dir("cli-sigterm");
  const std::string ckpt = task_and_checkpoint(dir, 96, 16);
  const std::string out = dir + "/out", log = dir + "/run.log";
  const std::string prog = fs::absolute(program_path("finetune")).string();
  // Start a long run, wait until its first epoch is reported, then send SIGTERM.
  const std::string script =
      sh_quote(prog) + " " + quick_run(dir, ckpt, 10000) + " --out-dir " + out + " > " + log +
      " 2>&1 & pid=$!; for i in $(seq 1 600); do grep -q 'epoch 1/10000 |' " + log +
      " && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done; kill -TERM $pid; "
      "wait $pid; echo \"rc=$?\"";
  Result r = run_cli("bash -c " + sh_quote(script), "");
  const std::string printed = slurp(log);
  EXPECT_TRUE(contains(r.output, "rc=143")) << r.output << printed;
  EXPECT_TRUE(contains(printed, "SIGTERM")) << printed;
  EXPECT_TRUE(fs::exists(out + "/interrupted.bin")) << printed;
  EXPECT_TRUE(contains(slurp(out + "/results.json"), "\"interrupted\": true")) << printed;
  EXPECT_FALSE(fs::exists(out + "/.lock"));
}

// A full disk is noticed at the first write that fails, and the message names that file. Each
// output in turn is a link to /dev/full, whose writes fail with ENOSPC.
TEST_F(FinetuneCli, AFullDiskStopsAtTheFirstFailedWrite) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  const std::string dir = fresh_dir("cli-full");
  const std::string ckpt = task_and_checkpoint(dir);
  for (const char* file : {"finetune_log.jsonl", "results.json.tmp", "best.bin.tmp"}) {
    const std::string out = dir + "/out-" + file;
    fs::create_directories(out);
    fs::create_symlink("/dev/full", out + "/" + file);
    Result r = run_finetune(quick_run(dir, ckpt) + " --log-every 1 --out-dir " + out);
    EXPECT_EQ(r.code, 1) << file << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, out + "/" + file)) << file << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "full")) << file << "\n" << r.output;
  }
}

// ---- notes/design.md "Hardening", clear errors: --out-dir
// ----------------------------------------------------------

TEST_F(FinetuneCli, ABadOutDirIsRefusedBeforeAnyWork) {
  const std::string dir = fresh_dir("cli-bad-out");
  const std::string ckpt = task_and_checkpoint(dir);
  fs::create_directories(dir + "/work");
  std::ofstream(dir + "/a-file") << "x";
  struct Case {
    std::string out_dir, says;
  };
  std::vector<Case> cases = {{"", "--out-dir is empty"},
                             {dir + "/a-file", "is a file"},
                             {dir + "/a-file/under", "is a file"}};
  if (fs::is_directory("/proc")) cases.push_back({"/proc", "not writable"});  // even for root
  if (::geteuid() != 0) {  // root writes into a read-only folder anyway
    fs::create_directories(dir + "/read-only");
    fs::permissions(dir + "/read-only", fs::perms::owner_read | fs::perms::owner_exec);
    cases.push_back({dir + "/read-only", "not writable"});
  }
  for (const Case& c : cases) {
    Result r = run_finetune_in(dir + "/work", quick_run(dir, ckpt) + " --out-dir=" + c.out_dir);
    EXPECT_EQ(r.code, 1) << c.out_dir << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, "--out-dir")) << c.out_dir << "\n" << r.output;
    EXPECT_TRUE(contains(r.output, c.says)) << c.out_dir << "\n" << r.output;
    EXPECT_FALSE(contains(r.output, "task: sst2")) << "refused before reading any data\n"
                                                   << r.output;
  }
  EXPECT_TRUE(fs::is_empty(dir + "/work")) << "nothing written where the program started";
}
