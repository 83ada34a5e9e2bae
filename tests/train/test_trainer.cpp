// End-to-end tests of the training loop (SPEC §5): the loss falls, resume continues the identical
// curve, bad checkpoints and non-finite losses stop with clear messages and damage nothing; and
// the notes/design.md "Hardening" hardening: nothing non-finite is ever saved, the stop message
// tells the truth, SIGTERM saves like Ctrl-C, one run per out-dir, a valid and resumable log.jsonl, resume with
// other settings, a full disk noticed at the first failed write, loss.svg, the data meta.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <thread>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/checkpoint.h"
#include "io/json.h"
#include "train/run_log.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace moe;
using moe::testing::error_of;
using moe::testing::has;
namespace fs = std::filesystem;

namespace {

// A very small configuration so each test trains in well under a second per step.
TrainConfig small_config(const std::string& name) {
  TrainConfig c;
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.seq_len = 16;
  c.model.dropout = 0.1;
  c.data.cache_dir = "/tmp/moe-gpt-test-cache";  // shared: the corpus and BPE are built once
  c.data.vocab_size = 512;
  c.batch_size = 4;
  c.steps = 8;
  c.lr = 3e-3;
  c.warmup = 0.25;
  // One folder per process (several builds may run the tests at once; a run locks its folder).
  c.out_dir = (fs::temp_directory_path() /
               ("moe-gpt-test-" + name + "-" + std::to_string(::getpid()))).string();
  c.eval_every = 4;
  c.eval_batches = 2;
  c.ckpt_every = 4;
  c.quiet = true;
  fs::remove_all(c.out_dir);
  return c;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

TEST(Trainer, LossFallsOnEmbeddedCorpus) {
  TrainConfig c = small_config("falls");
  c.steps = 60;
  c.model.dropout = 0.0;
  Trainer t(c);
  const double first = t.train_step().loss.item();
  // At initialisation the model is close to uniform over the vocabulary.
  EXPECT_NEAR(first, std::log(static_cast<double>(t.model().config().vocab_size)), 1.0);
  double last = 0;
  for (int i = 1; i < 60; ++i) last = t.train_step().loss.item();
  EXPECT_LT(last, first - 1.0) << "first " << first << " last " << last;
  EXPECT_LT(t.validation_loss(4), first - 1.0);
}

TEST(Trainer, ResumeContinuesTheIdenticalCurve) {
  // N steps straight must equal N/2 steps + checkpoint + resume + N/2 steps, bit for bit:
  // parameters, AdamW moments, step, dropout RNG and data cursor all round-trip.
  TrainConfig c = small_config("straight");
  Trainer straight(c);
  std::vector<double> losses;
  for (int i = 0; i < 8; ++i) losses.push_back(straight.train_step().loss.item());

  TrainConfig c1 = small_config("halves");
  std::vector<double> resumed;
  {
    Trainer first_half(c1);
    for (int i = 0; i < 4; ++i) resumed.push_back(first_half.train_step().loss.item());
    first_half.save_checkpoint_to(c1.out_dir + "/half.bin");
  }
  TrainConfig c2 = c1;
  c2.resume = c1.out_dir + "/half.bin";
  Trainer second_half(c2);
  EXPECT_EQ(second_half.step(), 4);
  for (int i = 0; i < 4; ++i) resumed.push_back(second_half.train_step().loss.item());
  ASSERT_EQ(losses.size(), resumed.size());
  for (size_t i = 0; i < losses.size(); ++i) EXPECT_EQ(losses[i], resumed[i]) << "step " << i;
  const auto& pa = straight.model().params().all();
  const auto& pb = second_half.model().params().all();
  for (size_t k = 0; k < pa.size(); ++k)
    EXPECT_EQ(pa[k].second.to_f32_vector(), pb[k].second.to_f32_vector()) << pa[k].first;
}

TEST(Trainer, RunWritesCheckpointAndLog) {
  TrainConfig c = small_config("run");
  Trainer t(c);
  ASSERT_EQ(t.run(), 0);
  ASSERT_TRUE(fs::exists(t.checkpoint_path()));
  Checkpoint ck = load_checkpoint(t.checkpoint_path());
  EXPECT_EQ(ck.get_meta("step"), "8");
  std::ifstream log(c.out_dir + "/log.jsonl");
  std::string line, last;
  int n = 0, with_val = 0;
  while (std::getline(log, line)) {
    ++n;
    last = line;
    if (line.find("\"val_loss\"") != std::string::npos) ++with_val;
  }
  EXPECT_GE(n, 2);
  EXPECT_EQ(with_val, 2);  // steps 4 and 8
  EXPECT_NE(last.find("\"step\":8"), std::string::npos) << last;
  EXPECT_NE(last.find("\"compute_paper_flops\""), std::string::npos) << last;
}

TEST(Trainer, MismatchedCheckpointIsRejectedByName) {
  TrainConfig c = small_config("mismatch");
  {
    Trainer t(c);
    t.train_step();
    t.save_checkpoint_to(c.out_dir + "/a.bin");
  }
  TrainConfig other = small_config("mismatch2");
  other.model.d_model = 48;
  other.resume = c.out_dir + "/a.bin";
  try {
    Trainer t(other);
    FAIL() << "loading a checkpoint of another width must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("d-model"), std::string::npos) << e.what();
  }
}

TEST(Trainer, TruncatedCheckpointIsRejected) {
  TrainConfig c = small_config("trunc");
  std::string path = c.out_dir + "/a.bin";
  {
    Trainer t(c);
    t.save_checkpoint_to(path);
  }
  std::string bytes = read_bytes(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  TrainConfig r = c;
  r.resume = path;
  try {
    Trainer t(r);
    FAIL() << "a truncated checkpoint must not load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(Trainer, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  TrainConfig c = small_config("nan");
  c.steps = 4;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const std::string good = c.out_dir + "/checkpoint.bin";
  const std::string good_bytes = read_bytes(good);
  // Poison one weight of a copy, then resume from it with more steps in the same folder.
  Checkpoint ck = load_checkpoint(good);
  Tensor w = ck.get_tensor("param/ln_f.weight");
  w.data<float>()[0] = NAN;
  save_checkpoint(c.out_dir + "/poisoned.bin", ck);
  TrainConfig r = c;
  r.steps = 8;
  r.resume = c.out_dir + "/poisoned.bin";
  Trainer t(r);
  EXPECT_EQ(t.run(), 3);
  EXPECT_EQ(read_bytes(good), good_bytes) << "the last good checkpoint was modified";
}

TEST(Trainer, MissingDataIsAClearError) {
  TrainConfig c = small_config("nodata");
  c.data.data = "/nonexistent/corpus.txt";
  try {
    Trainer t(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos) << e.what();
  }
}

TEST(Trainer, CorpusTooSmallForOneBlockIsAClearError) {
  TrainConfig c = small_config("tiny-data");
  fs::create_directories(c.out_dir);
  const std::string path = c.out_dir + "/small.txt";
  std::ofstream(path) << "just a few words\n";
  c.data.data = path;
  c.data.cache_dir = c.out_dir + "/cache";
  c.data.vocab_size = 300;
  EXPECT_THROW(Trainer t(c), Error);
}

TEST(Trainer, InterruptSavesACheckpointAndExits130) {
  // SIGINT during the run: the step in flight finishes, a checkpoint is saved, code 130.
  TrainConfig c = small_config("sigint");
  c.steps = 100000;
  c.ckpt_every = 0;
  c.eval_every = 0;
  Trainer t(c);
  std::thread killer([&t] {
    while (t.step() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::raise(SIGINT);
  });
  const int code = t.run();
  killer.join();
  EXPECT_EQ(code, 130);
  ASSERT_TRUE(fs::exists(t.checkpoint_path()));
  Checkpoint ck = load_checkpoint(t.checkpoint_path());
  const int64_t saved = std::stoll(ck.get_meta("step"));
  EXPECT_GE(saved, 3);
  EXPECT_LT(saved, 100000);
  EXPECT_EQ(saved, t.step());
}

// ---------------------------------------------------------------------------------------------
// notes/design.md "Hardening": nothing lost, nothing false

namespace {

// Every value of every tensor of the checkpoint at `path` is finite.
bool all_finite(const std::string& path) {
  const Checkpoint ck = load_checkpoint(path);
  for (const auto& [name, t] : ck.tensors) {
    if (t.dtype() != DType::F32) continue;
    for (float v : t.to_f32_vector())
      if (!std::isfinite(v)) return false;
  }
  return true;
}

std::vector<std::string> log_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST(Trainer, AnUpdateThatOverflowsWithAFiniteGradientIsNeverSaved) {
  // A first moment of +inf makes the next update -inf while the loss and the gradient norm of
  // that step are finite, so the optimizer's guard lets it through; the check of the parameters
  // and moments before the save must refuse it.
  TrainConfig c = small_config("overflow");
  c.steps = 4;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const std::string good = c.out_dir + "/checkpoint.bin";
  const std::string good_bytes = read_bytes(good);
  Checkpoint ck = load_checkpoint(good);
  Tensor m = ck.get_tensor("adam_m/ln_f.weight");
  m.data<float>()[0] = INFINITY;
  save_checkpoint(c.out_dir + "/poisoned.bin", ck);
  TrainConfig r = c;
  r.steps = 6;
  r.ckpt_every = 1;
  r.resume = c.out_dir + "/poisoned.bin";
  Trainer t(r);
  ::testing::internal::CaptureStderr();
  const int code = t.run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 3);
  EXPECT_EQ(read_bytes(good), good_bytes) << "a non-finite state was saved over the checkpoint";
  EXPECT_TRUE(all_finite(good));
  EXPECT_TRUE(has(err, "not finite") && has(err, "ln_f.weight")) << err;
  // It resumed from poisoned.bin and saved nothing: the message says exactly that.
  EXPECT_TRUE(has(err, "No checkpoint was written by this run") && has(err, "poisoned.bin"))
      << err;
  EXPECT_THROW(t.save_checkpoint_to(c.out_dir + "/direct.bin"), Error);
  EXPECT_FALSE(fs::exists(c.out_dir + "/direct.bin"));
}

TEST(Trainer, HugeAuxWeightStopsWithoutClaimingACheckpoint) {
  // The case, --moe-loss-weight 1e38 --ckpt-every 1: the first step already overflows.
  TrainConfig c = small_config("aux1e38");
  c.model.moe_experts = 4;
  c.moe_loss_weight = 1e38;
  c.ckpt_every = 1;
  c.steps = 4;
  Trainer t(c);
  ::testing::internal::CaptureStderr();
  const int code = t.run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 3);
  const std::string ckpt = c.out_dir + "/checkpoint.bin";
  if (fs::exists(ckpt)) {
    EXPECT_TRUE(all_finite(ckpt));
    EXPECT_TRUE(has(err, "is kept at " + ckpt)) << err;
  } else {
    EXPECT_TRUE(has(err, "No checkpoint was written")) << err;
    EXPECT_FALSE(has(err, "is kept")) << err;
  }
}

TEST(Trainer, SigtermSavesACheckpointAndExits143) {
  TrainConfig c = small_config("sigterm");
  c.steps = 100000;
  c.ckpt_every = 0;
  c.eval_every = 0;
  Trainer t(c);
  std::thread killer([&t] {
    while (t.step() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::raise(SIGTERM);
  });
  const int code = t.run();
  killer.join();
  EXPECT_EQ(code, 143);
  ASSERT_TRUE(fs::exists(t.checkpoint_path()));
  EXPECT_EQ(std::stoll(load_checkpoint(t.checkpoint_path()).get_meta("step")), t.step());
}

TEST(Trainer, ANewRunNeverReplacesACheckpointSilently) {
  TrainConfig c = small_config("replace");
  c.steps = 2;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const std::string bytes = read_bytes(c.out_dir + "/checkpoint.bin");
  TrainConfig again = c;  // small_config would wipe the folder; keep it
  const std::string msg = error_of([&] { Trainer t(again); });
  EXPECT_TRUE(has(msg, "checkpoint.bin") && has(msg, "--overwrite") && has(msg, "--resume"))
      << msg;
  EXPECT_EQ(read_bytes(c.out_dir + "/checkpoint.bin"), bytes);
  again.overwrite = true;
  EXPECT_NO_THROW(Trainer t(again));
  again.overwrite = false;
  again.resume = c.out_dir + "/checkpoint.bin";
  again.steps = 3;
  EXPECT_NO_THROW(Trainer t(again));
}

TEST(Trainer, TwoRunsInOneOutDirGetAnInUseError) {
  TrainConfig c = small_config("locked");
  Trainer first(c);
  const std::string msg = error_of([&] { Trainer second(c); });
  EXPECT_TRUE(has(msg, "in use") && has(msg, c.out_dir)) << msg;
}

TEST(Trainer, UnusableOutDirNamesTheFlag) {
  TrainConfig c = small_config("outdir");
  fs::create_directories(c.out_dir);
  const std::string file = c.out_dir + "/a-file";
  std::ofstream(file) << "x";
  for (const std::string& bad :
       {std::string(""), file, file + "/below", std::string("/proc/moe-x")}) {
    TrainConfig b = c;
    b.out_dir = bad;
    const std::string msg = error_of([&] { Trainer t(b); });
    EXPECT_TRUE(has(msg, "--out-dir")) << "'" << bad << "': " << msg;
  }
}

TEST(Trainer, LogLinesAreValidJsonAndNaNIsNull) {
  EXPECT_EQ(json_fixed("%.6f", NAN), "null");
  EXPECT_EQ(json_fixed("%.6f", INFINITY), "null");
  EXPECT_EQ(json_fixed("%.2f", 1.5), "1.50");
  MoEStats s;
  s.l_aux = NAN;
  s.router_entropy = INFINITY;
  s.tokens_per_expert = {0, 0};
  EXPECT_NO_THROW(parse_json(moe_stats_json({1}, {s}))) << moe_stats_json({1}, {s});
  TrainConfig c = small_config("json");
  c.model.moe_experts = 4;
  c.log_every = 1;
  Trainer t(c);
  ASSERT_EQ(t.run(), 0);
  const std::vector<std::string> lines = log_lines(t.log_path());
  ASSERT_EQ(lines.size(), 8u);
  for (const std::string& line : lines) EXPECT_NO_THROW(parse_json(line)) << line;
}

TEST(Trainer, ResumeDropsAHalfWrittenLastLogLine) {
  TrainConfig c = small_config("partial");
  c.steps = 4;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const std::string log = c.out_dir + "/log.jsonl";
  const size_t before = log_lines(log).size();
  std::ofstream(log, std::ios::app) << "{\"step\":";  // a kill -9 in the middle of an append
  TrainConfig r = c;
  r.steps = 6;
  r.resume = c.out_dir + "/checkpoint.bin";
  Trainer t(r);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(t.run(), 0);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(has(err, "half-written") && has(err, log)) << err;
  const std::vector<std::string> lines = log_lines(log);
  EXPECT_GT(lines.size(), before);
  for (const std::string& line : lines) EXPECT_NO_THROW(parse_json(line)) << line;
}

TEST(Trainer, ADamagedLogLineNamesTheFileAndLine) {
  TrainConfig c = small_config("damaged");
  c.steps = 4;
  c.log_every = 1;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const std::string log = c.out_dir + "/log.jsonl";
  std::vector<std::string> lines = log_lines(log);
  ASSERT_GE(lines.size(), 3u);
  lines[1] = "\"step\":2, garbage";
  {
    std::ofstream out(log, std::ios::trunc);
    for (const std::string& l : lines) out << l << '\n';
  }
  TrainConfig r = c;
  r.steps = 6;
  r.resume = c.out_dir + "/checkpoint.bin";
  Trainer t(r);
  const std::string msg = error_of([&] { t.run(); });
  EXPECT_TRUE(has(msg, log + ":2") && has(msg, "HINT")) << msg;
}

TEST(Trainer, ResumeSaysWhatOtherScheduleSettingsDo) {
  ScheduleSettings then{1e-3, 300, 0.05, 1, 16};
  std::vector<std::pair<std::string, std::string>> meta = schedule_meta(then);
  EXPECT_TRUE(compare_resume_settings(meta, "ck.bin", 150, then).empty());
  ScheduleSettings now = then;
  now.lr = 2e-3;
  now.steps = 600;
  const std::vector<std::string> lines = compare_resume_settings(meta, "ck.bin", 150, now);
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  char lr_then[32], lr_now[32];
  std::snprintf(lr_then, sizeof lr_then, "%.3g", lr_at(150, 300, warmup_steps_of(then), 1e-3));
  std::snprintf(lr_now, sizeof lr_now, "%.3g", lr_at(150, 600, warmup_steps_of(now), 2e-3));
  EXPECT_TRUE(has(all, "--lr") && has(all, "--steps") && !has(all, "--warmup")) << all;
  EXPECT_TRUE(has(all, std::string("lr ") + lr_now) && has(all, lr_then)) << all;
  EXPECT_TRUE(has(all, "decays to 0 at step 600 (was 300)")) << all;
  now = then;
  now.batch_size = 32;
  all = compare_resume_settings(meta, "ck.bin", 150, now).at(1);
  EXPECT_TRUE(has(all, "--batch-size: checkpoint 16, now 32")) << all;
  now = then;
  now.seed = 2;
  const std::string msg = error_of([&] { compare_resume_settings(meta, "ck.bin", 150, now); });
  EXPECT_TRUE(has(msg, "--seed 1") && has(msg, "ck.bin")) << msg;
}

TEST(Trainer, ResumeWithAnotherSeedIsRefusedAndOtherLrIsAllowed) {
  TrainConfig c = small_config("reseed");
  c.steps = 2;
  {
    Trainer t(c);
    ASSERT_EQ(t.run(), 0);
  }
  const Checkpoint ck = load_checkpoint(c.out_dir + "/checkpoint.bin");
  EXPECT_EQ(ck.get_meta("train.seed"), "1");
  EXPECT_EQ(ck.get_meta("train.steps"), "2");
  EXPECT_EQ(std::stod(ck.get_meta("train.lr")), c.lr);
  TrainConfig r = c;
  r.resume = c.out_dir + "/checkpoint.bin";
  r.steps = 4;
  r.seed = 7;
  EXPECT_TRUE(has(error_of([&] { Trainer t(r); }), "--seed")) << "a new seed must be refused";
  r.seed = c.seed;
  r.lr = c.lr * 2;
  r.batch_size = c.batch_size * 2;
  Trainer t(r);
  EXPECT_EQ(t.run(), 0);
}

TEST(Trainer, FullDiskAtTheLogStopsAtTheFirstLine) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  TrainConfig c = small_config("fulllog");
  c.steps = 50;
  c.ckpt_every = 0;
  fs::create_directories(c.out_dir);
  fs::create_symlink("/dev/full", c.out_dir + "/log.jsonl");  // every write to it: ENOSPC
  Trainer t(c);
  const std::string msg = error_of([&] { t.run(); });
  EXPECT_TRUE(has(msg, "log.jsonl") && has(msg, "disk may be full")) << msg;
  EXPECT_EQ(t.step(), 1) << "the failed write must stop the run at once";
  EXPECT_FALSE(fs::exists(c.out_dir + "/checkpoint.bin"));
}

TEST(Trainer, RunWritesALossPlotAndTheDataItWasTrainedOn) {
  TrainConfig c = small_config("plot");
  fs::create_directories(c.out_dir);
  const std::string data = c.out_dir + "/corpus.txt";
  {
    std::ofstream out(data);
    for (int i = 0; i < 400; ++i) out << "the cat number " << i % 17 << " sat on the mat.\n";
  }
  c.data.data = data;
  c.data.cache_dir = c.out_dir + "/cache";
  c.data.vocab_size = 300;
  Trainer t(c);
  ASSERT_EQ(t.run(), 0);
  const std::string svg = read_bytes(c.out_dir + "/loss.svg");
  EXPECT_TRUE(has(svg, "train loss") && has(svg, "validation loss")) << svg.substr(0, 400);
  EXPECT_TRUE(has(svg, "tokens seen") && has(svg, "training compute"));
  const Checkpoint ck = load_checkpoint(t.checkpoint_path());
  EXPECT_EQ(ck.get_meta("train.data"), fs::absolute(data).lexically_normal().string());
  EXPECT_EQ(ck.get_meta("train.val-data"), "");
  EXPECT_EQ(std::stod(ck.get_meta("train.val-fraction")), c.data.val_fraction);
  EXPECT_EQ(ck.get_meta("train.cache-dir"),
            fs::absolute(c.data.cache_dir).lexically_normal().string());
}
