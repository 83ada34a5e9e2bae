// test_generate.cpp — text generation with a KV cache (src/nn/generate.h): at every step the
// cached logits equal a full recomputation (GPT::forward_logits over the same window), for a dense
// and an MoE model, across a window slide; greedy decoding is deterministic; a seed fixes
// sampling; top-k and temperature shape the draws as they should. On a GPU (skipped without one):
// the cached steps there equal the CPU's full recomputation within the eval tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/check.h"
#include "core/device.h"
#include "data/bpe.h"
#include "model_config.h"
#include "tolerances.h"
#include "nn/generate.h"
#include "nn/gpt.h"

namespace moe {
namespace {

using testing::gpt_config;

// The last row of forward_logits over `window`: what the model predicts after it, recomputed.
std::vector<float> full_logits(GPT& model, const std::vector<int32_t>& window) {
  CounterRng rng(0, 0);
  const int n = static_cast<int>(window.size());
  const Tensor logits = model.forward_logits(Tensor::from_i32(window, {1, n}), rng);  // (n, V)
  return logits.slice_view(0, n - 1, n).contiguous().to_f32_vector();
}

// |cached - full| <= 2e-5 * max(1, max |full|) for every entry: the two differ only in the order
// of f32 sums (the attention of one query vs the causal op, layer norms of one row vs many).
void expect_same_logits(const std::vector<float>& cached, const std::vector<float>& full,
                        const std::string& where) {
  ASSERT_EQ(cached.size(), full.size()) << where;
  double scale = 1.0, worst = 0.0;
  for (const float f : full) scale = std::max(scale, std::fabs(static_cast<double>(f)));
  for (size_t i = 0; i < full.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(cached[i]) - full[i]));
  EXPECT_LE(worst, 2e-5 * scale) << where << ": largest difference " << worst;
}

std::vector<int32_t> some_tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>(rng.below(V)));
  return ids;
}

// Drive generation past the end of the window (T = 12: 3 prompt tokens + 25 new ones slide it
// twice) and compare every step's logits with the full forward over the window it saw.
void check_cache_against_recomputation(GPT& model) {
  GenerateConfig cfg;
  cfg.max_new_tokens = 25;
  cfg.temperature = 1.0;
  cfg.seed = 7;
  int steps = 0, slides = 0;
  size_t last_len = 0;
  const std::vector<int32_t> out = generate_tokens(
      model, some_tokens(3, model.config().vocab_size, 5), cfg,
      [&](const std::vector<int32_t>& window, const std::vector<float>& logits) {
        if (window.size() < last_len) ++slides;
        last_len = window.size();
        ASSERT_LE(static_cast<int>(window.size()), model.config().seq_len);
        expect_same_logits(logits, full_logits(model, window), "step " + std::to_string(steps));
        ++steps;
      });
  EXPECT_EQ(out.size(), 25u);
  EXPECT_EQ(steps, 25);
  EXPECT_GE(slides, 2);
}

TEST(Generate, CachedLogitsEqualFullRecomputationDense) {
  GPT model(gpt_config(2, 32, 4, 12, 50), 11);
  check_cache_against_recomputation(model);
}

TEST(Generate, CachedLogitsEqualFullRecomputationMoe) {
  GPT model(gpt_config(2, 32, 4, 12, 50, 4), 12);  // layer 1 is an MoE layer with 4 experts
  ASSERT_TRUE(model.config().is_moe_layer(1));
  // The cache routes every token with room for all of them; so does a full pass at fraction 1.
  model.set_eval_capacity_fraction(1.0);
  check_cache_against_recomputation(model);
}

TEST(Generate, PrefillAndStepsMatchTheFullForwardPosByPos) {
  GPT model(gpt_config(3, 24, 3, 16, 40, 2), 13);  // layer 1 MoE (E = 2), layers 0 and 2 dense
  model.set_eval_capacity_fraction(1.0);
  KVCacheDecoder dec(model);
  const std::vector<int32_t> ids = some_tokens(16, 40, 9);
  std::vector<int32_t> prefix(ids.begin(), ids.begin() + 5);
  expect_same_logits(dec.prefill(prefix), full_logits(model, prefix), "prefill");
  for (size_t i = 5; i < ids.size(); ++i) {
    prefix.push_back(ids[i]);
    expect_same_logits(dec.step(ids[i]), full_logits(model, prefix), "pos " + std::to_string(i));
  }
  EXPECT_EQ(dec.length(), 16);
  EXPECT_THROW(dec.step(1), Error);  // the window is full
}

TEST(Generate, GreedyIsDeterministicAndPicksTheArgmax) {
  GPT model(gpt_config(2, 32, 4, 16, 60), 21);
  GenerateConfig cfg;
  cfg.temperature = 0.0;
  cfg.max_new_tokens = 12;
  cfg.seed = 1;
  const std::vector<int32_t> prompt = some_tokens(4, 60, 3);
  std::vector<int32_t> argmaxes;
  const std::vector<int32_t> a = generate_tokens(
      model, prompt, cfg, [&](const std::vector<int32_t>&, const std::vector<float>& logits) {
        argmaxes.push_back(static_cast<int32_t>(
            std::max_element(logits.begin(), logits.end()) - logits.begin()));
      });
  cfg.seed = 99;  // greedy draws nothing: the seed does not matter
  EXPECT_EQ(generate_tokens(model, prompt, cfg), a);
  EXPECT_EQ(a, argmaxes);
}

TEST(Generate, SeedFixesSampling) {
  GPT model(gpt_config(2, 32, 4, 16, 60), 22);
  GenerateConfig cfg;
  cfg.max_new_tokens = 20;
  const std::vector<int32_t> prompt = some_tokens(2, 60, 4);
  cfg.seed = 5;
  const std::vector<int32_t> a = generate_tokens(model, prompt, cfg);
  EXPECT_EQ(generate_tokens(model, prompt, cfg), a);
  cfg.seed = 6;
  EXPECT_NE(generate_tokens(model, prompt, cfg), a);
}

TEST(Generate, TopKAndTemperatureShapeTheDraws) {
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f};
  Rng rng(3);
  // Greedy and top-1: the largest logit, the lower id on a tie.
  EXPECT_EQ(sample_next_token(logits, 0.0, 0, rng), 1);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_next_token(logits, 1.0, 1, rng), 1);
  // Top-3 keeps ids 1, 3, 2; their frequencies follow softmax(logits / temperature) over them.
  for (const double temperature : {1.0, 0.5}) {
    std::map<int32_t, int> count;
    const int n = 40000;
    for (int i = 0; i < n; ++i) ++count[sample_next_token(logits, temperature, 3, rng)];
    EXPECT_EQ(count.count(0) + count.count(4), 0u);
    double z = 0.0;
    for (const int id : {1, 2, 3}) z += std::exp(logits[id] / temperature);
    for (const int id : {1, 2, 3}) {
      const double p = std::exp(logits[id] / temperature) / z;
      EXPECT_NEAR(count[id] / double(n), p, 4.0 * std::sqrt(p * (1 - p) / n) + 1e-3) << id;
    }
  }
  EXPECT_THROW(sample_next_token({0.0f, NAN}, 1.0, 0, rng), Error);
  EXPECT_THROW(sample_next_token({0.0f, INFINITY}, 0.0, 0, rng), Error);
}

TEST(Generate, TextLevelEncodesNewlinesAsEosAndDecodesTheContinuation) {
  const BpeTokenizer tok = BpeTokenizer::train("the cat sat on the mat\nthe dog ate\n", 270);
  const std::vector<int32_t> p = encode_prompt(tok, "the cat\nsat");
  ASSERT_GE(p.size(), 3u);
  EXPECT_EQ(p.front(), tok.eos_id());
  EXPECT_EQ(std::count(p.begin(), p.end(), tok.eos_id()), 2);
  EXPECT_EQ(encode_prompt(tok, ""), std::vector<int32_t>{tok.eos_id()});

  GPT model(gpt_config(1, 16, 2, 16, tok.vocab_size()), 31);
  GenerateConfig cfg;
  cfg.prompt = "the cat\nsat";
  cfg.max_new_tokens = 10;
  cfg.seed = 4;
  const std::string text = generate_text(model, tok, cfg);
  EXPECT_EQ(text, tok.decode(generate_tokens(model, p, cfg)));
  EXPECT_FALSE(text.empty());
}

#ifdef MOE_CUDA
// The same weights on both devices (one seed); every cached step on the GPU against the CPU's full
// forward over the same window. Forward-only f32 with TF32 off: 1e-4 relative, as the eval GPU
// tests (tests/eval/test_eval_gpu.cpp says why).
TEST(GenerateGpu, CachedStepsOnTheGpuMatchTheCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  for (const int E : {0, 4}) {
    const GPTConfig cfg = gpt_config(2, 32, 4, 12, 50, E);
    GPT on_cpu(cfg, 41, cpu()), on_gpu(cfg, 41, cuda());
    on_cpu.set_eval_capacity_fraction(1.0);
    GenerateConfig g;
    g.max_new_tokens = 20;
    g.temperature = 0.0;
    std::vector<std::vector<int32_t>> windows;
    std::vector<std::vector<float>> gpu_logits;
    const std::vector<int32_t> out = generate_tokens(
        on_gpu, some_tokens(3, 50, 8), g,
        [&](const std::vector<int32_t>& w, const std::vector<float>& l) {
          windows.push_back(w);
          gpu_logits.push_back(l);
        });
    ASSERT_EQ(windows.size(), 20u);
    for (size_t i = 0; i < windows.size(); ++i) {
      const std::vector<float> ref = full_logits(on_cpu, windows[i]);
      testing::expect_allclose(std::vector<double>(gpu_logits[i].begin(), gpu_logits[i].end()),
                               std::vector<double>(ref.begin(), ref.end()),
                               testing::Tolerance{1e-5, 1e-4},
                               "E = " + std::to_string(E) + ", step " + std::to_string(i));
    }
  }
}
#endif  // MOE_CUDA

}  // namespace
}  // namespace moe
