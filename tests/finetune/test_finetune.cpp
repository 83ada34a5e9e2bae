// End-to-end tests of fine-tuning (SPEC §7): a tiny random model learns a synthetic task in the
// SST-2 file format to > 95% dev accuracy; runs are deterministic by seed; the best checkpoint
// reloads to the same accuracy; mismatched checkpoints give clear errors; freezing freezes;
// Ctrl-C saves and returns 130, SIGTERM 143; a non-finite loss stops with 3 and updates nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "core/autograd.h"
#include "finetune/finetuner.h"
#include "ft_fixtures.h"
#include "io/json.h"
#include "ops/elementwise.h"

using namespace moe;
using namespace moe::testing;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  std::string dir, ckpt;
};

// The synthetic task and a tiny random checkpoint (L2 C32 NH2 T16), built once per name.
Fixture make_fixture(const std::string& name, int n_train = 640, int n_dev = 200) {
  Fixture f;
  f.dir = fresh_dir(name);
  const std::string corpus = write_good_bad_task(f.dir, n_train, n_dev, 42);
  f.ckpt = write_tiny_checkpoint(f.dir, corpus, tiny_config(), 300, 7);
  return f;
}

FinetuneConfig base_config(const Fixture& f) {
  FinetuneConfig c;
  c.ckpt = f.ckpt;
  c.data.task = "sst2";
  c.data.train_file = f.dir + "/train.tsv";
  c.data.dev_file = f.dir + "/dev.tsv";
  c.epochs = 4;
  c.batch_size = 16;
  c.lr = 3e-3;
  c.warmup = 0.1;
  c.dropout = 0.0;
  c.seed = 1;
  c.out_dir = f.dir + "/out";
  c.quiet = true;
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Finetune, TinyModelLearnsSyntheticTask) {
  Fixture f = make_fixture("learns");
  FinetuneConfig c = base_config(f);
  const auto t0 = std::chrono::steady_clock::now();
  Finetuner ft(c);
  ASSERT_EQ(ft.run(), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(ft.history().size(), 4u);
  double best = 0;
  for (const EpochResult& e : ft.history()) best = std::max(best, e.dev_accuracy);
  EXPECT_GT(best, 0.95) << "dev accuracy per epoch: " << ft.history()[0].dev_accuracy << " "
                        << ft.history()[1].dev_accuracy << " " << ft.history()[2].dev_accuracy
                        << " " << ft.history()[3].dev_accuracy;
  EXPECT_LT(ft.history().back().train_loss, ft.history().front().train_loss);
  EXPECT_NEAR(ft.majority_baseline(), 0.5, 0.1);  // balanced labels: the baseline is a coin
  std::cout << "[ synthetic ] best dev accuracy " << best << " in " << seconds << " s\n";
  // the outputs a user keeps
  EXPECT_TRUE(fs::exists(ft.best_path()));
  const Json r = parse_json(slurp(ft.results_path()));
  EXPECT_EQ(r.find("task")->as_string(), "sst2");
  EXPECT_EQ(r.find("n_train")->as_number(), 640);
  EXPECT_EQ(r.find("n_dev")->as_number(), 200);
  EXPECT_EQ(r.find("epochs")->as_array().size(), 4u);
  EXPECT_EQ(r.find("best")->find("dev_accuracy")->as_number(), best);
  EXPECT_EQ(r.find("best")->find("checkpoint")->as_string(), ft.best_path());
  EXPECT_FALSE(r.find("interrupted")->as_bool());
  EXPECT_EQ(r.find("settings")->find("eval_capacity_fraction")->as_number(), 0.0);
  EXPECT_TRUE(r.find("carve")->is_null());
  EXPECT_GT(r.find("majority_baseline")->as_number(), 0.0);
  EXPECT_FALSE(slurp(c.out_dir + "/finetune_log.jsonl").empty());

  // The best checkpoint reloads (head included) and scores the same on dev (epochs 0 = score).
  FinetuneConfig again = base_config(f);
  again.ckpt = ft.best_path();
  again.epochs = 0;
  again.out_dir = f.dir + "/rescore";
  Finetuner rescore(again);
  EXPECT_TRUE(rescore.model().head_from_checkpoint());
  EXPECT_EQ(rescore.evaluate(), best);
  // ... and a fine-tuned 2-class checkpoint cannot start a 3-class task.
  FinetuneConfig mnli = again;
  mnli.data.task = "mnli";
  mnli.data.train_file = "tests/fixtures/finetune/mnli_multinli.jsonl";
  mnli.data.dev_file = "tests/fixtures/finetune/mnli.jsonl";
  const std::string msg = error_of([&] { Finetuner bad(mnli); });
  EXPECT_NE(msg.find("fine-tuned classifier with 2 classes (task sst2), but --task mnli has 3"),
            std::string::npos) << msg;
}

TEST(Finetune, DeterministicBySeed) {
  Fixture f = make_fixture("determinism", 96, 32);
  FinetuneConfig c = base_config(f);
  c.epochs = 1;
  c.dropout = 0.1;  // dropout masks must come from the seed too
  Finetuner a(c), b(c);
  const double la = a.train_epoch(1), lb = b.train_epoch(1);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(a.evaluate(), b.evaluate());
  const std::vector<float> wa = a.model().params().get("head.weight").to_f32_vector();
  EXPECT_EQ(wa, b.model().params().get("head.weight").to_f32_vector());
  c.seed = 2;
  Finetuner other(c);
  EXPECT_NE(other.train_epoch(1), la);
}

TEST(Finetune, FreezeMatchingFreezes) {
  Fixture f = make_fixture("freeze", 32, 16);
  FinetuneConfig c = base_config(f);
  c.epochs = 1;
  c.freeze_experts = c.freeze_router = true;
  Finetuner ft(c);
  EXPECT_TRUE(ft.frozen().empty()) << "a dense model has no expert or gate parameters";
  // The mechanism itself, on names a dense model has: block 0 frozen, block 1 trained.
  std::vector<double> scale(ft.model().params().all().size(), 1.0);
  Finetuner ft2(c);
  std::vector<std::string> frozen = freeze_matching(ft2.model().params(), {"blocks.0."}, &scale);
  EXPECT_EQ(frozen.size(), 12u);  // ln1, qkv, proj, ln2, fc1, fc2: weight + bias each
  const Tensor w0 = ft2.model().params().get("blocks.0.ffn.fc1.weight");
  const Tensor w1 = ft2.model().params().get("blocks.1.ffn.fc1.weight");
  EXPECT_FALSE(w0.requires_grad());
  const std::vector<float> before0 = w0.to_f32_vector(), before1 = w1.to_f32_vector();
  std::vector<double> s2(scale);
  AdamW opt(ft2.model().params(), AdamWConfig{});
  CounterRng rng(0, 0);
  Tensor ids = Tensor::from_i32({1, 2, 3, 4}, {1, 4});
  Tensor logits = ft2.model().forward(ids, Tensor::from_i32({4}, {1}), true, rng);
  backward(sum(logits));
  EXPECT_FALSE(w0.grad().defined());
  opt.step(1e-2, &s2);
  EXPECT_EQ(w0.to_f32_vector(), before0);  // not moved, not decayed
  EXPECT_NE(w1.to_f32_vector(), before1);
}

TEST(Finetune, CheckpointMismatchIsAClearError) {
  Fixture f = make_fixture("mismatch", 32, 16);
  Checkpoint ck = load_checkpoint(f.ckpt);
  // (a) a parameter is missing
  Checkpoint missing;
  missing.meta = ck.meta;
  for (const auto& [name, t] : ck.tensors)
    if (name != "param/blocks.1.attn.proj.weight") missing.add_tensor(name, t);
  save_checkpoint(f.dir + "/missing.bin", missing);
  // (b) a parameter has another shape than the configuration says
  Checkpoint shaped;
  shaped.meta = ck.meta;
  for (const auto& [name, t] : ck.tensors)
    shaped.add_tensor(name, name == "param/ln_f.weight" ? Tensor::zeros({31}) : t);
  save_checkpoint(f.dir + "/shaped.bin", shaped);
  FinetuneConfig c = base_config(f);
  c.ckpt = f.dir + "/missing.bin";
  std::string m = error_of([&] { Finetuner x(c); });
  EXPECT_NE(m.find("no tensor 'param/blocks.1.attn.proj.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("missing.bin"), std::string::npos) << m;
  c.ckpt = f.dir + "/shaped.bin";
  m = error_of([&] { Finetuner x(c); });
  EXPECT_NE(m.find("ln_f.weight has shape (31,), the model has (32,)"), std::string::npos) << m;
  c.ckpt = f.dir + "/nothing-here.bin";
  EXPECT_THROW(Finetuner x(c), Error);
  c.ckpt = "";
  EXPECT_NE(error_of([&] { Finetuner x(c); }).find("--ckpt is required"), std::string::npos);
}

TEST(Finetune, InterruptSavesAndReturns130) {
  Fixture f = make_fixture("interrupt", 64, 16);
  FinetuneConfig c = base_config(f);
  Finetuner ft(c);
  StopSignals::request(SIGINT);  // as if Ctrl-C came during the first step
  EXPECT_EQ(ft.run(), 130);
  EXPECT_EQ(ft.steps_done(), 1);
  EXPECT_EQ(StopSignals::requested(), 0) << "run() clears the request on the way out";
  EXPECT_TRUE(fs::exists(c.out_dir + "/interrupted.bin"));
  EXPECT_TRUE(parse_json(slurp(ft.results_path())).find("interrupted")->as_bool());
  Checkpoint saved = load_checkpoint(c.out_dir + "/interrupted.bin");
  EXPECT_EQ(saved.get_meta("finetune.task"), "sst2");
  EXPECT_EQ(saved.get_meta("finetune.steps"), "1");
  EXPECT_EQ(saved.get_meta("pretrain.step"), "0");
  EXPECT_TRUE(saved.has_tensor("head/weight"));
}

TEST(Finetune, NonFiniteLossStopsWithoutUpdating) {
  Fixture f = make_fixture("nan", 32, 16);
  Checkpoint ck = load_checkpoint(f.ckpt);
  Checkpoint poisoned;
  poisoned.meta = ck.meta;
  for (const auto& [name, t] : ck.tensors)
    poisoned.add_tensor(name, name == "param/ln_f.bias"
                                  ? Tensor::full(t.shape(), std::numeric_limits<double>::quiet_NaN())
                                  : t);
  save_checkpoint(f.dir + "/nan.bin", poisoned);
  FinetuneConfig c = base_config(f);
  c.ckpt = f.dir + "/nan.bin";
  Finetuner ft(c);
  const std::vector<float> before = ft.model().params().get("head.weight").to_f32_vector();
  EXPECT_EQ(ft.run(), 3);
  EXPECT_EQ(ft.steps_done(), 0);
  EXPECT_EQ(ft.model().params().get("head.weight").to_f32_vector(), before);
  EXPECT_FALSE(fs::exists(ft.best_path()));
}

// A cluster's time limit sends SIGTERM: the same save as Ctrl-C, with the shells' code 143.
TEST(Finetune, SigtermSavesAndReturns143) {
  Fixture f = make_fixture("sigterm", 32, 16);
  FinetuneConfig c = base_config(f);
  Finetuner ft(c);
  StopSignals::request(SIGTERM);
  EXPECT_EQ(ft.run(), 143);  // the step in flight finishes, then the run saves and stops
  EXPECT_EQ(ft.steps_done(), 1);
  EXPECT_EQ(StopSignals::requested(), 0);
  EXPECT_TRUE(fs::exists(c.out_dir + "/interrupted.bin"));
  EXPECT_FALSE(fs::exists(c.out_dir + "/best.bin")) << "no epoch finished";
  EXPECT_TRUE(parse_json(slurp(ft.results_path())).find("interrupted")->as_bool());
  // --epochs 0 (scoring only) stopped mid-way writes nothing: its accuracy would be partial.
  FinetuneConfig score = base_config(f);
  score.epochs = 0;
  score.out_dir = f.dir + "/score";
  Finetuner scorer(score);
  StopSignals::request(SIGTERM);
  EXPECT_EQ(scorer.run(), 143);
  EXPECT_FALSE(fs::exists(scorer.results_path()));
}

// An MoE checkpoint (E = 4 experts in layer 1 of 2): the aux loss is defined and enters the loss,
// --freeze-experts / --freeze-router freeze exactly the expert and gate tensors, and the model
// still learns the synthetic task with its router frozen.
TEST(Finetune, MoeFreezeAndAuxLoss) {
  Fixture f;
  f.dir = fresh_dir("moe");
  const std::string corpus = write_good_bad_task(f.dir, 320, 100, 42);
  GPTConfig cfg = tiny_config();
  cfg.moe_experts = 4;
  f.ckpt = write_tiny_checkpoint(f.dir, corpus, cfg, 300, 7);
  FinetuneConfig c = base_config(f);
  c.epochs = 3;
  c.freeze_experts = true;
  Finetuner experts_frozen(c);
  ASSERT_EQ(experts_frozen.frozen().size(), 4u);  // w1, b1, w2, b2 of layer 1
  for (const std::string& n : experts_frozen.frozen())
    EXPECT_EQ(n.rfind("blocks.1.moe.experts.", 0), 0u) << n;
  c.freeze_experts = false;
  c.freeze_router = true;
  c.eval_capacity_fraction = 0.5;
  Finetuner ft(c);
  ASSERT_EQ(ft.frozen(), std::vector<std::string>{"blocks.1.moe.gate.weight"});
  const std::vector<float> gate = ft.model().params().get("blocks.1.moe.gate.weight").to_f32_vector();
  ASSERT_EQ(ft.run(), 0);
  EXPECT_EQ(ft.model().params().get("blocks.1.moe.gate.weight").to_f32_vector(), gate);
  EXPECT_TRUE(ft.model().aux_loss().defined()) << "the MoE layer reports its load-balancing loss";
  EXPECT_NE(slurp(c.out_dir + "/finetune_log.jsonl").find("\"aux_loss\":"), std::string::npos);
  double best = 0;
  for (const EpochResult& e : ft.history()) best = std::max(best, e.dev_accuracy);
  EXPECT_GT(best, 0.9);
  const Json r = parse_json(slurp(ft.results_path()));
  EXPECT_EQ(r.find("settings")->find("eval_capacity_fraction")->as_number(), 0.5);
  EXPECT_EQ(r.find("settings")->find("frozen_params")->as_number(), 1);
  // The weight of the aux loss changes the updates (0 drops the term), hence the later losses.
  c.freeze_router = false;
  c.aux_loss_weight = 0.0;
  Finetuner without(c);
  c.aux_loss_weight = 1.0;
  Finetuner with(c);
  EXPECT_NE(without.train_epoch(1), with.train_epoch(1));
}

// The head is a trained parameter: a backward reaches head.weight and head.bias (the registry's
// handle and the one forward() uses are the same tensor), and one epoch moves them by more than
// weight decay alone would.
TEST(Finetune, HeadReceivesGradients) {
  Fixture f = make_fixture("head-grad", 32, 16);
  FinetuneConfig c = base_config(f);
  c.adam.weight_decay = 0.0;
  Finetuner ft(c);
  CounterRng rng(0, 0);
  Tensor logits = ft.model().forward(Tensor::from_i32({1, 2, 3, 4}, {1, 4}),
                                     Tensor::from_i32({4}, {1}), false, rng);
  backward(sum(logits));
  EXPECT_TRUE(ft.model().params().get("head.weight").grad().defined());
  EXPECT_TRUE(ft.model().params().get("head.bias").grad().defined());
  ft.model().params().zero_grad();
  const std::vector<float> before = ft.model().params().get("head.weight").to_f32_vector();
  ft.train_epoch(1);
  EXPECT_NE(ft.model().params().get("head.weight").to_f32_vector(), before);
}

// Losses are summed on the model's device and read at --log-every steps and at the end of the
// epoch: with --log-every 1 every step has its log line, and the epoch's mean is their mean.
TEST(Finetune, LossIsReadAtLogStepsAndEpochEnd) {
  Fixture f = make_fixture("log-every", 48, 16);
  FinetuneConfig c = base_config(f);
  c.log_every = 1;
  Finetuner ft(c);
  const double mean = ft.train_epoch(1);  // 48 / 16 = 3 steps
  std::vector<double> losses;
  std::istringstream log(slurp(c.out_dir + "/finetune_log.jsonl"));
  for (std::string line; std::getline(log, line);)
    losses.push_back(parse_json(line).find("loss")->as_number());
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_NEAR(mean, (losses[0] + losses[1] + losses[2]) / 3, 1e-5);  // the log has 6 digits
  // --log-every larger than the epoch: one read at its end gives the same mean.
  FinetuneConfig quiet = c;
  quiet.log_every = 1000;
  quiet.out_dir = f.dir + "/out-quiet";
  Finetuner once(quiet);
  EXPECT_NEAR(once.train_epoch(1), mean, 1e-6);
  EXPECT_TRUE(slurp(quiet.out_dir + "/finetune_log.jsonl").empty());
}
