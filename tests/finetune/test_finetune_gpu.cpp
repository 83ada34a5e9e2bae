// test_finetune_gpu.cpp — fine-tuning on the GPU against the CPU (SPEC §7): the same run (same
// checkpoint, seed, batches and Philox dropout masks) gives the CPU's step losses and dev logits
// on the GPU, dense and MoE; a classifier trained on the GPU writes a checkpoint that loads on the
// CPU with bitwise the same weights and the same predictions; a non-finite step is caught on the
// device (nothing updated, nothing saved) and Ctrl-C still saves a checkpoint the CPU can load.
// Every test skips without a GPU, and the file compiles to nothing in CPU-only builds.
//
// Tolerance (TF32 off, the library default; never turned on here): 1e-4 relative (+1e-5
// absolute) on losses, gradient norms and logits. One forward/backward of the same weights differs
// only by f32 sums taken in another order on the GPU (~1e-6 relative per op); over the 8 steps
// those differences also pass through AdamW, whose m / sqrt(v) can enlarge them for gradients near
// zero. Measured on an H200: the logged losses (6 digits) agree exactly, the epoch means within
// 1e-8 and the dev logits within 3e-7 — a margin of ~300x, while a real fault (a wrong gather, a
// head that does not train on one device, a missed or doubled step) moves the losses by 1e-2 and
// more.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "finetune/encode.h"
#include "finetune/finetuner.h"
#include "ft_fixtures.h"
#include "io/json.h"
#include "tolerances.h"

#ifdef MOE_CUDA
using namespace moe;
using namespace moe::testing;
namespace fs = std::filesystem;

namespace {

constexpr Tolerance kFinetuneTol{1e-5, 1e-4};  // see the file comment

struct GpuFixture {
  std::string dir, ckpt;
};

// The synthetic good/bad task and a tiny random checkpoint (L2 C32 NH2 T16; E experts).
GpuFixture make_gpu_fixture(const std::string& name, int E, int n_train = 64, int n_dev = 32) {
  GpuFixture f;
  f.dir = fresh_dir(name);
  const std::string corpus = write_good_bad_task(f.dir, n_train, n_dev, 42);
  GPTConfig cfg = tiny_config();
  cfg.moe_experts = E;
  f.ckpt = write_tiny_checkpoint(f.dir, corpus, cfg, 300, 7);
  return f;
}

// One epoch of 8 steps of batch 8, a log line per step, dropout on (the masks are Philox
// numbers, the same on both devices).
FinetuneConfig gpu_test_config(const GpuFixture& f, Device dev, const std::string& out) {
  FinetuneConfig c;
  c.ckpt = f.ckpt;
  c.data.task = "sst2";
  c.data.train_file = f.dir + "/train.tsv";
  c.data.dev_file = f.dir + "/dev.tsv";
  c.epochs = 1;
  c.batch_size = 8;
  c.lr = 1e-3;
  c.warmup = 0.0;
  c.dropout = 0.1;
  c.seed = 3;
  c.log_every = 1;
  c.out_dir = f.dir + "/" + out;
  c.quiet = true;
  c.device = dev;
  return c;
}

// "loss" (or another key) of every step line of a run's log, in order.
std::vector<double> logged(const std::string& out_dir, const char* key) {
  std::ifstream in(out_dir + "/finetune_log.jsonl");
  std::vector<double> v;
  for (std::string line; std::getline(in, line);) {
    const Json j = parse_json(line);
    if (j.find("step") && j.find(key) && !j.find("dev_accuracy")) v.push_back(j.find(key)->as_number());
  }
  return v;
}

// The (B, K) logits of the first dev rows under `model` (no dropout), read to the host.
std::vector<double> dev_logits(Finetuner& ft, int rows) {
  NoGradGuard ng;
  SequenceClassifier& m = ft.model();
  const std::vector<EncodedExample> enc =
      encode_examples(m.tokenizer(), m.task(), ft.data().dev, m.context());
  std::vector<int64_t> order;
  for (int i = 0; i < rows && i < static_cast<int>(enc.size()); ++i) order.push_back(i);
  const Batch b = make_batch(enc, order, 0, static_cast<int64_t>(order.size()), m.tokenizer().eos_id());
  CounterRng unused;
  const Tensor logits = m.forward(b.ids, b.lengths, false, unused);
  EXPECT_TRUE(logits.device() == m.device()) << logits.desc();
  return logits.to_f64_vector();
}

void expect_steps_follow_cpu(int E) {
  const GpuFixture f = make_gpu_fixture("gpu-steps-" + std::to_string(E), E);
  Finetuner on_cpu(gpu_test_config(f, cpu(), "cpu")), on_gpu(gpu_test_config(f, cuda(), "gpu"));
  ASSERT_TRUE(on_gpu.model().params().get("head.weight").device().is_cuda());
  const double mean_cpu = on_cpu.train_epoch(1), mean_gpu = on_gpu.train_epoch(1);
  const std::string what = E ? "MoE" : "dense";
  const std::vector<double> lc = logged(f.dir + "/cpu", "loss"), lg = logged(f.dir + "/gpu", "loss");
  ASSERT_EQ(lc.size(), 8u);
  ASSERT_EQ(lg.size(), lc.size());
  const std::vector<double> gc = logged(f.dir + "/cpu", "grad_norm");
  const std::vector<double> gg = logged(f.dir + "/gpu", "grad_norm");
  ASSERT_FALSE(gc.empty());
  expect_allclose({gg[0]}, {gc[0]}, kFinetuneTol, what + ": first step's gradient norm");
  expect_allclose(lg, lc, kFinetuneTol, what + ": loss of every step");
  expect_allclose({mean_gpu}, {mean_cpu}, kFinetuneTol, what + ": the epoch's mean loss");
  EXPECT_EQ(on_gpu.steps_done(), 8);
  expect_allclose(dev_logits(on_gpu, 8), dev_logits(on_cpu, 8), kFinetuneTol,
                  what + ": dev logits after the epoch");
}

}  // namespace

TEST(FinetuneGpu, StepsFollowTheCpuLossesDense) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_steps_follow_cpu(0);
}

TEST(FinetuneGpu, StepsFollowTheCpuLossesMoe) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_steps_follow_cpu(4);
}

// run() on the GPU writes best.bin from device tensors; the CPU loads it with the head, holds
// bitwise the GPU's weights and predicts the same dev accuracy.
TEST(FinetuneGpu, GpuClassifierCheckpointLoadsOnTheCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  const GpuFixture f = make_gpu_fixture("gpu-ckpt", 0);
  FinetuneConfig c = gpu_test_config(f, cuda(), "gpu");
  c.log_every = 10;
  Finetuner on_gpu(c);
  ASSERT_EQ(on_gpu.run(), 0);
  ASSERT_TRUE(fs::exists(on_gpu.best_path()));
  FinetuneConfig back = gpu_test_config(f, cpu(), "cpu");
  back.ckpt = on_gpu.best_path();
  back.epochs = 0;
  Finetuner on_cpu(back);
  EXPECT_TRUE(on_cpu.model().head_from_checkpoint());
  for (const auto& [name, t] : on_gpu.model().params().all()) {
    const Tensor loaded = on_cpu.model().params().get(name);
    EXPECT_TRUE(loaded.device().is_cpu()) << name;
    EXPECT_EQ(loaded.to_f32_vector(), t.to_f32_vector()) << name;
  }
  expect_allclose(dev_logits(on_cpu, 16), dev_logits(on_gpu, 16), kFinetuneTol,
                  "dev logits of the GPU model and of its checkpoint on the CPU");
  // Accuracy over 32 dev rows: a near-tie of the two logits may flip one row, no more.
  EXPECT_NEAR(on_cpu.evaluate(), on_gpu.history().back().dev_accuracy, 1.0 / 32 + 1e-12);
}

// A NaN in the weights makes the first loss NaN. On the GPU nobody reads the loss per step: the
// optimizer skips the update on the device, the end-of-epoch read finds its flag, and run()
// stops with 3 — head unchanged, steps_done() 0, no best.bin.
TEST(FinetuneGpu, NonFiniteStepIsCaughtOnTheDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  const GpuFixture f = make_gpu_fixture("gpu-nan", 0, 32, 16);
  Checkpoint ck = load_checkpoint(f.ckpt);
  Checkpoint poisoned;
  poisoned.meta = ck.meta;
  for (const auto& [name, t] : ck.tensors)
    poisoned.add_tensor(name, name == "param/ln_f.bias"
                                  ? Tensor::full(t.shape(), std::numeric_limits<double>::quiet_NaN())
                                  : t);
  save_checkpoint(f.dir + "/nan.bin", poisoned);
  FinetuneConfig c = gpu_test_config(f, cuda(), "nan");
  c.ckpt = f.dir + "/nan.bin";
  c.log_every = 100;  // only the end-of-epoch read sees it
  Finetuner ft(c);
  const std::vector<float> before = ft.model().params().get("head.weight").to_f32_vector();
  EXPECT_EQ(ft.run(), 3);
  EXPECT_EQ(ft.steps_done(), 0);
  EXPECT_EQ(ft.model().params().get("head.weight").to_f32_vector(), before);
  EXPECT_FALSE(fs::exists(ft.best_path()));
}

// Ctrl-C during a GPU run: the step finishes, interrupted.bin is written and loads on the CPU.
TEST(FinetuneGpu, InterruptSavesACheckpointTheCpuLoads) {
  MOE_SKIP_WITHOUT_CUDA();
  const GpuFixture f = make_gpu_fixture("gpu-interrupt", 0, 32, 16);
  FinetuneConfig c = gpu_test_config(f, cuda(), "int");
  c.log_every = 100;
  Finetuner ft(c);
  StopSignals::request(SIGINT);
  EXPECT_EQ(ft.run(), 130);
  EXPECT_EQ(ft.steps_done(), 1);
  FinetuneConfig back = gpu_test_config(f, cpu(), "int-cpu");
  back.ckpt = c.out_dir + "/interrupted.bin";
  back.epochs = 0;
  Finetuner on_cpu(back);
  EXPECT_TRUE(on_cpu.model().head_from_checkpoint());
  EXPECT_EQ(on_cpu.model().params().get("head.weight").to_f32_vector(),
            ft.model().params().get("head.weight").to_f32_vector());
}
#endif  // MOE_CUDA
