// test_model_files.cpp — a model in and out of a checkpoint when the file cannot be trusted
// (notes/design.md "Hardening" "Clear errors"): malformed or forged meta fails at once, naming the
// file and the key, before any model is built; parameter tensors of the wrong dtype are named; shapes that cannot
// fit in memory are refused with an estimate; the tokenizer's temporary folder never outlives a
// call, even one that fails.
#include <gtest/gtest.h>

#include "model_config.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "io/checkpoint.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"
#include "test_util.h"

using namespace moe;
using moe::testing::error_of;
using moe::testing::has;
using moe::testing::gpt_config;
namespace fs = std::filesystem;

namespace {

// A small real checkpoint of model `c` (parameters and config meta), named `path` for messages.
Checkpoint small_checkpoint(const GPTConfig& c, const std::string& path) {
  GPT m(c, 1);
  Checkpoint ck;
  add_gpt_to_checkpoint(ck, m);
  ck.path = path;
  return ck;
}

}  // namespace

TEST(ModelFiles, ParamCountAndShapesMatchTheModel) {
  for (const GPTConfig& c : {gpt_config(2, 16, 2, 8, 40), gpt_config(4, 16, 2, 8, 40, 4),
                             gpt_config(3, 24, 3, 8, 50, 2)}) {
    GPT m(c, 1);
    EXPECT_EQ(param_count(c), m.params().count()) << c.n_layer << " layers, E=" << c.moe_experts;
    const auto shapes = gpt_param_shapes(c);
    const auto& params = m.params().all();
    ASSERT_EQ(shapes.size(), params.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(shapes[i].first, params[i].first);
      EXPECT_EQ(shapes[i].second, params[i].second.shape()) << params[i].first;
    }
  }
}

TEST(ModelFiles, MemoryEstimateCountsParametersStateAndActivations) {
  const GPTConfig c = gpt_config(4, 128, 4, 64, 2048, 8);
  const double P = static_cast<double>(param_count(c));
  // Training holds at least weights, gradients and both AdamW moments; inference the weights.
  EXPECT_GE(estimated_bytes(c, 1, 64, true), 16 * P);
  EXPECT_GE(estimated_bytes(c, 1, 64, false), 4 * P);
  EXPECT_LT(estimated_bytes(c, 1, 64, false), estimated_bytes(c, 1, 64, true));
  // Activations grow with the batch and (attention) faster than linearly with T.
  EXPECT_GT(estimated_bytes(c, 32, 64), estimated_bytes(c, 16, 64));
  const double t1 = estimated_bytes(c, 1, 1024) - estimated_bytes(c, 1, 512);
  const double t0 = estimated_bytes(c, 1, 512) - estimated_bytes(c, 1, 256);
  EXPECT_GT(t1, 2 * t0 * 0.99);
}

TEST(ModelFiles, AbsurdShapesAreRefusedWithAnEstimate) {
  // 256 layers of width 65536 (the flags' own limits): ~13 trillion parameters.
  const GPTConfig huge = gpt_config(256, 65536, 1024, 2048, 50258);
  const std::string msg = error_of(
      [&] { check_model_fits(huge, 16, 2048, cpu(), true, "lower --batch-size (now 16)"); });
  EXPECT_TRUE(has(msg, "GiB") && has(msg, "out of memory") && has(msg, "--batch-size (now 16)"))
      << msg;
  EXPECT_NO_THROW(check_model_fits(gpt_config(2, 16, 2, 8, 40), 4, 8, cpu(), true, "-"));
}

TEST(ModelFiles, MalformedMetaNamesTheFileAndKey) {
  const Checkpoint good = small_checkpoint(gpt_config(2, 16, 2, 8, 40), "runs/x/checkpoint.bin");
  const struct {
    const char* key;
    const char* value;
  } cases[] = {{"n-layer", "abc"},    {"n-layer", "100000"}, {"n-layer", "2x"},
               {"n-layer", ""},       {"d-model", "-16"},    {"n-head", "99999999999999999999"},
               {"seq-len", "1e9"},    {"moe-experts", "1"},  {"moe-capacity-factor", "nan"},
               {"dropout", "1.5"},    {"vocab-size", " 40"}, {"moe-top2-policy", "best"}};
  for (const auto& c : cases) {
    Checkpoint ck = good;
    ck.set_meta(c.key, c.value);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string msg = error_of([&] { gpt_from_checkpoint(ck); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(has(msg, "runs/x/checkpoint.bin") && has(msg, "HINT")) << c.key << "=" << c.value
                                                                        << ": " << msg;
    // The key itself, or (for a value that parses but makes no model) the flag that sets it.
    EXPECT_TRUE(has(msg, c.key) || has(msg, std::string("--") + c.key)) << msg;
    EXPECT_LT(s, 1.0) << "failing must not build a model first";
  }
  Checkpoint missing = good;
  missing.meta.erase(missing.meta.begin());  // n-layer
  EXPECT_TRUE(has(error_of([&] { gpt_from_checkpoint(missing); }), "'n-layer'"));
}

TEST(ModelFiles, ForgedShapeFailsBeforeAnyModelIsBuilt) {
  // A valid-looking but forged meta: 200 layers of width 512 would be a ~630M-parameter model;
  // the file's tensors hold a 2-layer model of width 16. Refused at once, naming the keys.
  Checkpoint ck = small_checkpoint(gpt_config(2, 16, 2, 8, 40), "forged.bin");
  ck.set_meta("n-layer", "200");
  ck.set_meta("d-model", "512");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { gpt_from_checkpoint(ck); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(has(msg, "forged.bin") && has(msg, "n-layer=200") && has(msg, "wte")) << msg;
  EXPECT_LT(s, 1.0);
}

TEST(ModelFiles, WrongDtypeNamesTheTensor) {
  Checkpoint ck = small_checkpoint(gpt_config(2, 16, 2, 8, 40), "dtype.bin");
  for (auto& [name, t] : ck.tensors)
    if (name == "param/ln_f.bias") t = Tensor::zeros(t.shape(), DType::I32);
  const std::string msg = error_of([&] { gpt_from_checkpoint(ck); });
  EXPECT_TRUE(has(msg, "dtype.bin") && has(msg, "ln_f.bias") && has(msg, "f32")) << msg;
}

TEST(ModelFiles, TokenizerTempFolderIsRemovedEvenOnErrors) {
  // A private TMPDIR, so that other processes' folders cannot disturb the count.
  std::random_device rd;
  const fs::path tmp = fs::temp_directory_path() / ("moe_tok_tmp_" + std::to_string(rd()));
  fs::create_directories(tmp);
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  setenv("TMPDIR", tmp.c_str(), 1);
  const BpeTokenizer tok = BpeTokenizer::train("the cat sat on the mat\nthe dog\n", 270);
  Checkpoint ck;
  add_tokenizer_to_checkpoint(ck, tok);
  EXPECT_EQ(tokenizer_from_checkpoint(ck).fingerprint(), tok.fingerprint());
  Checkpoint broken = ck;
  broken.set_meta("tokenizer.encoder.json", "{\"a\": ");  // damaged
  EXPECT_THROW(tokenizer_from_checkpoint(broken), Error);
  int left = 0;
  for (const auto& e : fs::directory_iterator(tmp)) (void)e, ++left;
  if (old) setenv("TMPDIR", saved.c_str(), 1);
  else unsetenv("TMPDIR");
  fs::remove_all(tmp);
  EXPECT_EQ(left, 0) << "a moe-gpt-tok-* folder was left in the temp directory";
}
