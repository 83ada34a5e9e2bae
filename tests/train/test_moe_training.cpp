// The MoE counterpart in the model and the trainer (SPEC §2-3): which layers are MoE, the compute
// term, checkpoints that refuse the wrong configuration, training with balanced routing.
#include <gtest/gtest.h>
#include <unistd.h>

#include "model_config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/autograd.h"
#include "io/checkpoint.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"
#include "optim/adamw.h"
#include "train/moe_report.h"
#include "train/trainer.h"

using namespace moe;
using moe::testing::gpt_config;
namespace fs = std::filesystem;

namespace {
TrainConfig moe_config(const std::string& name, int E) {
  TrainConfig c;
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.seq_len = 16;
  c.model.moe_experts = E;
  c.data.cache_dir = "/tmp/moe-gpt-test-cache";
  c.data.vocab_size = 512;
  c.batch_size = 8;
  c.steps = 8;
  c.lr = 3e-3;
  c.out_dir = (fs::temp_directory_path() /
               ("moe-gpt-moe-" + name + "-" + std::to_string(::getpid()))).string();
  c.eval_every = 0;
  c.ckpt_every = 0;
  c.quiet = true;
  fs::remove_all(c.out_dir);
  return c;
}
}  // namespace

TEST(MoEModel, EveryOtherLayerIsMoE) {
  GPTConfig c = gpt_config(4, 16, 2, 8, 40, 4);
  GPT m(c, 1);
  EXPECT_EQ(m.moe_layer_indices(), (std::vector<int>{1, 3}));  // (i+1) % 2 == 0: the last is MoE
  EXPECT_NO_THROW(m.params().get("blocks.1.moe.experts.w1"));
  EXPECT_NO_THROW(m.params().get("blocks.0.ffn.fc1.weight"));
  EXPECT_THROW(m.params().get("blocks.1.ffn.fc1.weight"), Error);
  EXPECT_EQ(m.params().get("blocks.3.moe.experts.w1").shape(), (Shape{4, 16, 64}));
  // Experts start from different draws.
  std::vector<float> w = m.params().get("blocks.1.moe.experts.w1").to_f32_vector();
  EXPECT_NE(std::vector<float>(w.begin(), w.begin() + 16 * 64),
            std::vector<float>(w.begin() + 16 * 64, w.begin() + 2 * 16 * 64));
  c.moe_freq = 1;
  GPT all(c, 1);
  EXPECT_EQ(all.moe_layer_indices(), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(GPT::is_expert_param("blocks.1.moe.experts.b2"));
  EXPECT_FALSE(GPT::is_expert_param("blocks.1.moe.gate.weight"));
}

TEST(MoEModel, ComputeAddsSecondExpertPerMoELayer) {
  GPTConfig c = gpt_config(4, 64, 4, 128, 1000);
  const double dense = paper_flops_per_token(c);
  c.moe_experts = 8;
  // SPEC §5: MoE top-2 adds 32 L C^2 with MoE in every other layer.
  EXPECT_DOUBLE_EQ(paper_flops_per_token(c) - dense, 32.0 * 4 * 64 * 64);
}

TEST(MoEModel, ForwardReportsAuxLossAndStats) {
  GPTConfig c = gpt_config(2, 16, 2, 8, 40, 4);
  GPT m(c, 3);
  CounterRng rng(1, 0);
  std::vector<int32_t> ids(2 * 8);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7) % 40);
  Tensor x = Tensor::from_i32(ids, {2, 8});
  m.forward_loss(x, x, true, rng);
  ASSERT_TRUE(m.aux_loss().defined());
  const std::vector<MoEStats> stats = m.moe_stats();  // a copy read from the model's device
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_NEAR(m.aux_loss().item(), stats[0].l_aux, 1e-6);
  int64_t kept = 0;
  for (int64_t v : stats[0].tokens_per_expert) kept += v;
  EXPECT_LE(kept, 2 * 16);
  EXPECT_EQ(stats[0].capacity, 2 * 4);  // 2 * ceil(16 / 4)
}

TEST(MoEModel, ExpertLoadStatistics) {
  ExpertLoad l = expert_load({2, 2, 2, 2});
  EXPECT_EQ(l.min, 2);
  EXPECT_DOUBLE_EQ(l.cv, 0.0);
  l = expert_load({0, 4});  // mean 2, std 2
  EXPECT_EQ(l.max, 4);
  EXPECT_DOUBLE_EQ(l.cv, 1.0);
}

TEST(MoETraining, LossFallsAndRoutingStaysBalanced) {
  TrainConfig c = moe_config("falls", 4);
  c.steps = 60;
  c.model.dropout = 0.0;
  Trainer t(c);
  const StepResult first = t.train_step();
  EXPECT_GT(first.aux.item(), 0.9);  // l_aux >= 1 at any routing up to the top-1 vs P mismatch
  double last = 0;
  for (int i = 1; i < 60; ++i) last = t.train_step().loss.item();
  EXPECT_LT(last, first.loss.item() - 1.0);
  for (const MoEStats& s : t.model().moe_stats()) {
    EXPECT_LT(expert_load(s.tokens_per_expert).cv, 0.6);
    EXPECT_LT(s.l_aux, 1.5);
  }
}

TEST(MoETraining, MoECheckpointRefusesDenseOrOtherE) {
  TrainConfig c = moe_config("ckpt", 4);
  {
    Trainer t(c);
    t.train_step();
    t.save_checkpoint_to(c.out_dir + "/moe.bin");
  }
  // Same E: loads and the model round-trips.
  Checkpoint ck = load_checkpoint(c.out_dir + "/moe.bin");
  std::unique_ptr<GPT> back = gpt_from_checkpoint(ck);
  EXPECT_EQ(back->config().moe_experts, 4);
  for (int E : {0, 8}) {
    TrainConfig other = moe_config("ckpt-other", E);
    other.resume = c.out_dir + "/moe.bin";
    try {
      Trainer t(other);
      FAIL() << "an E=4 checkpoint must not load into E=" << E;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("moe-experts"), std::string::npos) << e.what();
    }
  }
}

TEST(MoETraining, ResumeIsExactForMoE) {
  TrainConfig c = moe_config("resume-a", 4);
  Trainer straight(c);
  std::vector<double> a;
  for (int i = 0; i < 6; ++i) a.push_back(straight.train_step().loss.item());
  TrainConfig c1 = moe_config("resume-b", 4);
  std::vector<double> b;
  {
    Trainer first(c1);
    for (int i = 0; i < 3; ++i) b.push_back(first.train_step().loss.item());
    first.save_checkpoint_to(c1.out_dir + "/half.bin");
  }
  c1.resume = c1.out_dir + "/half.bin";
  Trainer second(c1);
  for (int i = 0; i < 3; ++i) b.push_back(second.train_step().loss.item());
  EXPECT_EQ(a, b);
}

TEST(AdamW, PerParameterLrScale) {
  // lr_scale 0 freezes a parameter (up to weight decay, which is lr-scaled too); 0.5 halves the
  // first Adam step, which is lr * sign(g) at step 1.
  ParamRegistry reg;
  Tensor a = reg.add("a", Tensor::from_f32({1.0f}, {1}));
  Tensor b = reg.add("b", Tensor::from_f32({1.0f}, {1}));
  AdamWConfig cfg;
  cfg.weight_decay = 0;
  AdamW opt(reg, cfg);
  a.meta()->grad = Tensor::from_f32({2.0f}, {1});
  b.meta()->grad = Tensor::from_f32({2.0f}, {1});
  std::vector<double> s = {0.0, 0.5};
  opt.step(0.1, &s);
  EXPECT_FLOAT_EQ(static_cast<float>(a.item()), 1.0f);
  EXPECT_NEAR(b.item(), 1.0 - 0.05, 1e-6);
}

TEST(MoEReport, PicturesHaveOneRowPerLayerAndExpertOrDomain) {
  GPTConfig c = gpt_config(2, 16, 2, 16, 2048, 4);
  BpeTokenizer tok = BpeTokenizer::train("the cat sat on the mat\n1 + 2 = 3\n- apples\n", 300);
  c.vocab_size = tok.vocab_size();
  GPT m(c, 5);
  const std::string dir = (fs::temp_directory_path() / "moe-gpt-report").string();
  fs::remove_all(dir);
  // Tokens-per-expert history: rows = (layer, expert) = 1 x 4, columns = logged steps.
  RoutingHistory h;
  MoEStats s;
  s.tokens_per_expert = {1, 2, 3, 2};
  h.add(10, {s});
  h.add(20, {s});
  h.write_svg(dir + "/tpe.svg", m.moe_layer_indices());
  // Domain routing: rows = (layer, domain) for the 5 synthetic domains.
  write_domain_routing_svg(m, tok, dir + "/dom.svg");
  auto count = [](const std::string& path, const std::string& what) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  for (int e = 0; e < 4; ++e)
    EXPECT_EQ(count(dir + "/tpe.svg", ">L1 e" + std::to_string(e) + "<"), 1) << "expert " << e;
  EXPECT_EQ(count(dir + "/tpe.svg", ">L1 e4<"), 0);
  for (const char* d : {"story", "arithmetic", "list", "facts", "code"})
    EXPECT_EQ(count(dir + "/dom.svg", std::string(">L1 ") + d + "<"), 1) << d;
  EXPECT_EQ(m.config().eval_capacity_fraction, 0.0);  // restored after the picture
}
