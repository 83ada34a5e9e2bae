// The whole model and the training loop on the GPU against the CPU (notes/cuda.md §5-9):
//  * a tiny dense model and a tiny MoE model: logits, loss and every parameter gradient agree
//    with the CPU (same initial weights, same Philox dropout masks);
//  * 50 GPU training steps follow the CPU loss curve;
//  * two GPU runs give bitwise-identical losses (no float atomics anywhere);
//  * a resumed GPU run continues the identical curve;
//  * a GPU checkpoint evaluates on the CPU;
//  * the GPU's batches are the CPU's batches, AdamW's update matches, a non-finite step is caught
//    on the device, and running out of GPU memory names the flag to lower.
// Every test skips without a GPU (and the file is compiled only in CUDA builds).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cuda/cuda_check.h"
#include "core/device.h"
#include "io/checkpoint.h"
#include "model_config.h"
#include "nn/gpt_io.h"
#include "ops/elementwise.h"
#include "optim/adamw.h"
#include "train/batcher.h"
#include "train/trainer.h"

using namespace moe;
using namespace moe::testing;
namespace fs = std::filesystem;

#ifdef MOE_CUDA
namespace {

TrainConfig gpu_config(const std::string& name, int E, Device dev) {
  TrainConfig c;
  c.device = dev;
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.seq_len = 16;
  c.model.dropout = 0.1;
  c.model.moe_experts = E;
  c.data.cache_dir = "/tmp/moe-gpt-test-cache";
  c.data.vocab_size = 512;
  c.batch_size = 8;
  c.steps = 50;
  c.lr = 3e-3;
  c.warmup = 0.1;
  c.out_dir = (fs::temp_directory_path() / ("moe-gpt-gpu-" + name)).string();
  c.eval_every = 0;
  c.ckpt_every = 0;
  c.quiet = true;
  fs::remove_all(c.out_dir);
  return c;
}

std::vector<double> losses(Trainer& t, int steps) {
  std::vector<double> out;
  for (int i = 0; i < steps; ++i) out.push_back(t.train_step().loss.item());
  return out;
}

Tensor random_ids(int B, int T, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(B) * T);
  for (int32_t& x : v) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  return Tensor::from_i32(v, {B, T});
}

// One forward (training, dropout on) and backward of the same model on both devices.
void expect_model_matches_cpu(int E) {
  const GPTConfig cfg = [&] {
    GPTConfig c = gpt_config(2, 32, 2, 16, 97, E);
    c.dropout = 0.1;
    return c;
  }();
  GPT on_cpu(cfg, 5, cpu()), on_gpu(cfg, 5, cuda());
  const Tensor ids = random_ids(2, 16, 97, 1), targets = random_ids(2, 16, 97, 2);
  CounterRng r1(3, 1), r2(3, 1);
  Tensor l_cpu = on_cpu.forward_loss(ids, targets, true, r1);
  Tensor l_gpu = on_gpu.forward_loss(ids, targets, true, r2);
  ASSERT_TRUE(l_gpu.device().is_cuda());
  if (E > 0) {
    l_cpu = add(l_cpu, scale(on_cpu.aux_loss(), 0.01));
    l_gpu = add(l_gpu, scale(on_gpu.aux_loss(), 0.01));
  }
  expect_allclose(l_gpu.to_f64_vector(), l_cpu.to_f64_vector(), tol::model, "loss");
  backward(l_cpu);
  backward(l_gpu);
  const auto& pc = on_cpu.params().all();
  const auto& pg = on_gpu.params().all();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t k = 0; k < pc.size(); ++k) {
    ASSERT_TRUE(pg[k].second.grad().defined()) << pg[k].first;
    EXPECT_TRUE(pg[k].second.grad().device().is_cuda()) << pg[k].first;
    expect_allclose(pg[k].second.grad().to_f64_vector(), pc[k].second.grad().to_f64_vector(),
                    tol::model, "gradient of " + pc[k].first);
  }
  CounterRng e1, e2;
  expect_allclose(on_gpu.forward_logits(ids, e2).to_f64_vector(),
                  on_cpu.forward_logits(ids, e1).to_f64_vector(), tol::model, "eval logits");
}

}  // namespace

TEST(GpuModel, DenseLogitsLossAndGradientsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_model_matches_cpu(0);
}

TEST(GpuModel, MoeLogitsLossAndGradientsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_model_matches_cpu(4);
}

TEST(GpuTraining, FiftyStepsFollowTheCpuCurve) {
  MOE_SKIP_WITHOUT_CUDA();
  for (int E : {0, 4}) {
    Trainer a(gpu_config("curve-cpu", E, cpu())), b(gpu_config("curve-gpu", E, cuda()));
    const std::vector<double> lc = losses(a, 50), lg = losses(b, 50);
    expect_allclose(lg, lc, tol::train_curve, E ? "MoE loss curve" : "dense loss curve");
    EXPECT_LT(lg.back(), lg.front() - 1.0) << "the GPU run learns";
  }
}

TEST(GpuTraining, TwoRunsAreBitwiseIdenticalWithTf32) {
  MOE_SKIP_WITHOUT_CUDA();
  const bool before = cuda_allow_tf32();
  cuda_set_allow_tf32(true);  // as the programs run
  for (int E : {0, 4}) {
    Trainer a(gpu_config("bits-a", E, cuda())), b(gpu_config("bits-b", E, cuda()));
    EXPECT_EQ(losses(a, 20), losses(b, 20)) << "E = " << E;
  }
  cuda_set_allow_tf32(before);
}

TEST(GpuTraining, ResumeContinuesTheIdenticalCurve) {
  MOE_SKIP_WITHOUT_CUDA();
  for (int E : {0, 4}) {
    TrainConfig c = gpu_config("resume", E, cuda());
    c.steps = 8;
    Trainer straight(c);
    const std::vector<double> all = losses(straight, 8);
    TrainConfig h = gpu_config("resume-half", E, cuda());
    h.steps = 8;
    std::vector<double> halves;
    {
      Trainer first(h);
      halves = losses(first, 4);
      first.save_checkpoint_to(h.out_dir + "/half.bin");
    }
    h.resume = h.out_dir + "/half.bin";
    Trainer second(h);
    const std::vector<double> rest = losses(second, 4);
    halves.insert(halves.end(), rest.begin(), rest.end());
    EXPECT_EQ(halves, all) << "E = " << E;
  }
}

TEST(GpuTraining, GpuCheckpointEvaluatesOnTheCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  TrainConfig c = gpu_config("ckpt", 4, cuda());
  c.steps = 4;
  Trainer t(c);
  losses(t, 4);
  const std::string path = c.out_dir + "/ck.bin";
  t.save_checkpoint_to(path);
  Checkpoint ck = load_checkpoint(path);
  std::unique_ptr<GPT> back = gpt_from_checkpoint(ck, cpu());
  ASSERT_TRUE(back->params().get("wte").device().is_cpu());
  const Tensor ids = random_ids(2, 16, back->config().vocab_size, 9);
  CounterRng r1, r2;
  expect_allclose(t.model().forward_logits(ids, r2).to_f64_vector(),
                  back->forward_logits(ids, r1).to_f64_vector(), tol::model,
                  "logits of the GPU model and of its checkpoint on the CPU");
}

TEST(GpuBatcher, SameBatchesAsTheCpuAcrossEpochs) {
  MOE_SKIP_WITHOUT_CUDA();
  std::vector<int32_t> tokens(16 * 7 + 1);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 13 % 101);
  BlockDataset a(tokens, 16, 0.0, 3), b(tokens, 16, 0.0, 3);  // 7 blocks: batches of 3 wrap
  TrainBatcher on_cpu(a, cpu()), on_gpu(b, cuda());
  for (int step = 0; step < 6; ++step) {
    Tensor xc, yc, xg, yg;
    on_cpu.next(3, &xc, &yc);
    on_gpu.next(3, &xg, &yg);
    ASSERT_TRUE(xg.device().is_cuda());
    EXPECT_EQ(xg.to_i32_vector(), xc.to_i32_vector()) << "step " << step;
    EXPECT_EQ(yg.to_i32_vector(), yc.to_i32_vector()) << "step " << step;
    EXPECT_EQ(a.cursor().epoch, b.cursor().epoch);
    EXPECT_EQ(a.cursor().pos, b.cursor().pos);
  }
}

TEST(GpuAdamW, OneLaunchUpdateMatchesTheCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  for (double clip : {0.0, 0.5}) {
    ParamRegistry rc, rg;
    std::vector<Shape> shapes = {{1}, {7}, {65, 3}, {1031}, {20000}, {3, 5, 13}};
    for (size_t k = 0; k < shapes.size(); ++k) {
      Tensor p = random_f32(shapes[k], 100 + k);
      Tensor pc = rc.add("p" + std::to_string(k), p.clone());
      Tensor pg = rg.add("p" + std::to_string(k), p.to(cuda()));
      if (k == 2) continue;  // an unused parameter: decay only
      Tensor g = random_f32(shapes[k], 200 + k);
      pc.meta()->grad = g.clone();
      pg.meta()->grad = g.to(cuda());
    }
    AdamWConfig cfg;
    cfg.clip_grad = clip;
    AdamW oc(rc, cfg), og(rg, cfg);
    std::vector<double> scale(shapes.size(), 1.0);
    scale[1] = 0.25;
    for (int s = 0; s < 3; ++s) {
      const double nc = oc.step(1e-2, &scale).item(), ng = og.step(1e-2, &scale).item();
      EXPECT_NEAR(ng, nc, 1e-5 * nc) << "gradient norm";
    }
    for (size_t k = 0; k < shapes.size(); ++k)
      expect_allclose(rg.all()[k].second.to_f64_vector(), rc.all()[k].second.to_f64_vector(),
                      tol::adamw, "parameter " + std::to_string(k));
  }
}

TEST(GpuAdamW, NonFiniteGuardSkipsTheUpdateOnTheDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  ParamRegistry r;
  Tensor p = r.add("p", Tensor::full({5}, 1.0, DType::F32, cuda()));
  p.meta()->grad = Tensor::full({5}, 0.5, DType::F32, cuda());
  AdamW opt(r, AdamWConfig{});
  opt.step(0.1, nullptr, Tensor::full({}, NAN, DType::F32, cuda()));
  EXPECT_EQ(opt.first_nonfinite_step(), 1);
  for (double v : p.to_f64_vector()) EXPECT_EQ(v, 1.0) << "the skipped step changed a parameter";
  opt.step(0.1, nullptr, Tensor::full({}, 2.0, DType::F32, cuda()));  // finite, but still stopped
  for (double v : p.to_f64_vector()) EXPECT_EQ(v, 1.0) << "a step after a non-finite one ran";
  EXPECT_EQ(opt.first_nonfinite_step(), 1);
}

TEST(GpuTraining, OutOfMemoryNamesTheFlagsToLower) {
  MOE_SKIP_WITHOUT_CUDA();
  TrainConfig c = gpu_config("oom", 0, cuda());
  c.model.seq_len = 4096;
  c.batch_size = 1024;  // attention scores alone: 1024 * 2 * 4096^2 floats = 137 GB
  try {
    Trainer t(c);
    t.train_step().loss.item();
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--batch-size (now 1024)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--seq-len (now 4096)"), std::string::npos) << msg;
  }
  cuda_empty_cache();
}
#endif  // MOE_CUDA
