// End-to-end tests of the training loop (SPEC §5): the loss falls, resume continues the identical
// curve, bad checkpoints and non-finite losses stop with clear messages and damage nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <thread>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/checkpoint.h"
#include "train/trainer.h"

using namespace moe;
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
  c.out_dir = (fs::temp_directory_path() / ("moe-gpt-test-" + name)).string();
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
