// AdamW and the schedule against values worked by hand (SPEC §5).
#include <gtest/gtest.h>

#include "model_config.h"

#include <cmath>

#include "core/autograd.h"
#include "nn/config.h"
#include "nn/gpt.h"
#include "optim/adamw.h"

using namespace moe;
using moe::testing::gpt_config;

TEST(Schedule, WarmupThenLinearDecayToZero) {
  // 10 steps, 2 warmup steps, peak 1.0: 0.5, 1.0, then 1 - (s-2)/8.
  EXPECT_DOUBLE_EQ(lr_at(0, 10, 2, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(1, 10, 2, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(2, 10, 2, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(6, 10, 2, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(9, 10, 2, 1.0), 0.125);
  EXPECT_DOUBLE_EQ(lr_at(10, 10, 2, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(lr_at(0, 10, 0, 2.0), 2.0);
}

TEST(AdamW, FirstTwoStepsByHand) {
  ParamRegistry reg;
  Tensor p = reg.add("p", Tensor::from_f32({1.0f, -2.0f}, {2}));
  AdamWConfig cfg;  // b1 0.9, b2 0.98, eps 1e-8, wd 0.01
  AdamW opt(reg, cfg);
  // step 1, g = (0.5, -1): m = 0.1 g, v = 0.02 g^2; m_hat = g, v_hat = g^2 -> update = lr*sign(g)
  p.meta()->grad = Tensor::from_f32({0.5f, -1.0f}, {2});
  opt.step(0.1);
  const double p0 = 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8);
  const double p1 = -2.0 * (1 - 0.1 * 0.01) + 0.1 * 1.0 / (1.0 + 1e-8);
  EXPECT_NEAR(p.at({0}), p0, 1e-6);
  EXPECT_NEAR(p.at({1}), p1, 1e-6);
  // step 2, same gradient again: m_hat = g and v_hat = g^2 still (bias correction), same update.
  opt.step(0.1);
  EXPECT_NEAR(p.at({0}), p0 * (1 - 0.001) - 0.1, 1e-6);
  // clipping: norm of (3, 4) is 5; clip to 1 scales the gradient by 1/5 before the update.
  ParamRegistry reg2;
  Tensor q = reg2.add("q", Tensor::from_f32({0.0f, 0.0f}, {2}));
  AdamWConfig clip = cfg;
  clip.clip_grad = 1.0;
  AdamW opt2(reg2, clip);
  q.meta()->grad = Tensor::from_f32({3.0f, 4.0f}, {2});
  EXPECT_NEAR(opt2.step(0.1).item(), 5.0, 1e-6);
}

TEST(Compute, PaperFormulaByHand) {
  GPTConfig c = gpt_config(2, 64, 4, 128, 1000);
  // 96 * 2 * 64^2 * (1 + 128 / 384) + 6 * 64 * 1000
  const double expected = 96.0 * 2 * 4096 * (1.0 + 128.0 / 384.0) + 384000.0;
  EXPECT_DOUBLE_EQ(paper_flops_per_token(c), expected);
  EXPECT_DOUBLE_EQ(model_flops_per_token(c, 1000), 6000.0 + 12.0 * 2 * 128 * 64);
}

TEST(Model, SinusoidalPositionsFairseqLayout) {
  Tensor pe = sinusoidal_positions(3, 8);  // half = 4, f_k = exp(-k ln(1e4) / 3)
  // token 0 has fairseq position 2: channel 0 = sin(2), channel 4 = cos(2)
  EXPECT_NEAR(pe.at({0, 0}), std::sin(2.0), 1e-6);
  EXPECT_NEAR(pe.at({0, 4}), std::cos(2.0), 1e-6);
  // token 2, k = 3: f = exp(-ln(1e4)) = 1e-4, position 4
  EXPECT_NEAR(pe.at({2, 3}), std::sin(4e-4), 1e-7);
  EXPECT_NEAR(pe.at({2, 7}), std::cos(4e-4), 1e-7);
}

TEST(Model, ParameterCountAndNames) {
  GPTConfig c = gpt_config(2, 16, 2, 8, 50);
  GPT m(c, 1);
  const int64_t C = 16, H = 64, V = 50;
  const int64_t per_block = 4 * C + 3 * C * C + 3 * C + C * C + C + H * C + H + C * H + C;
  EXPECT_EQ(m.params().count(), V * C + 2 * per_block + 2 * C);
  EXPECT_NO_THROW(m.params().get("blocks.1.attn.qkv.weight"));
  // Initialisation: embedding std ~ C^-1/2 = 0.25
  std::vector<float> w = m.params().get("wte").to_f32_vector();
  double ss = 0;
  for (float x : w) ss += x * x;
  EXPECT_NEAR(std::sqrt(ss / w.size()), 0.25, 0.03);
}
