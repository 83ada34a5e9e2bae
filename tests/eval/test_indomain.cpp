// test_indomain.cpp — the held-out text of a checkpoint's training data (src/eval/indomain.h):
// the same tokens train held out for validation (src/data/dataset.h), from --val-data or from the
// tail of --data, read from train's token cache when it is there; no record, no split; a moved
// file is an error that says what to pass instead.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "eval/indomain.h"
#include "eval_ckpt_util.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
using testing_eval::fixture_tokenizer;

std::string write_corpus(const std::string& dir, const std::string& name, int lines) {
  std::ofstream out(dir + "/" + name);
  for (int i = 0; i < lines; ++i)
    out << "Line " << i << " of the little corpus: the cat sat on mat number " << i * 7 << ".\n";
  return fs::absolute(dir + "/" + name).string();
}

Checkpoint meta(const std::string& data, const std::string& val, const std::string& fraction,
                const std::string& cache) {
  Checkpoint ck;
  ck.path = "ck.bin";
  ck.set_meta("train.data", data);
  ck.set_meta("train.val-data", val);
  ck.set_meta("train.val-fraction", fraction);
  ck.set_meta("train.cache-dir", cache);
  return ck;
}

// The validation blocks train would have used, as one stream (blocks share their end tokens).
std::vector<int32_t> train_validation_stream(std::vector<int32_t> tokens, int T, double fraction) {
  BlockDataset ds(std::move(tokens), T, fraction, 1);
  std::vector<int32_t> stream;
  std::vector<int32_t> x(static_cast<size_t>(T)), y(static_cast<size_t>(T));
  for (int64_t b = 0; b < ds.num_val_blocks(); ++b) {
    int n = 0;
    ds.val_batch(b, 1, x.data(), y.data(), &n);
    if (stream.empty()) stream.push_back(x[0]);
    stream.insert(stream.end(), y.begin(), y.end());
  }
  return stream;
}

TEST(EvalInDomain, TailSplitIsTheValidationSplitTrainUsed) {
  const std::string dir = testing_eval::fresh_temp_dir("indomain");
  const std::string corpus = write_corpus(dir, "corpus.txt", 200);
  const BpeTokenizer& tok = fixture_tokenizer();
  const int T = 16;
  std::vector<std::string> log;
  const auto held = training_held_out(meta(corpus, "", "0.1", dir + "/cache"), tok, T,
                                      [&](const std::string& l) { log.push_back(l); });
  ASSERT_TRUE(held.has_value());
  const std::vector<int32_t> all = encode_text_files({corpus}, tok);
  EXPECT_EQ(held->tokens, train_validation_stream(all, T, 0.1));
  EXPECT_EQ(held->files, std::vector<std::string>{corpus});
  ASSERT_EQ(log.size(), 1u);  // one line: encoded (no cache yet)
  EXPECT_NE(log[0].find("encoding"), std::string::npos) << log[0];
  EXPECT_FALSE(fs::exists(dir + "/cache"));  // eval writes no cache of its own

  // With train's token cache in place (train's name for it), the tokens come from there.
  char fp[17];
  std::snprintf(fp, sizeof fp, "%016llx",
                static_cast<unsigned long long>(source_fingerprint({corpus})));
  const std::string cache =
      dir + "/cache/tokens-" + tok.fingerprint() + "-" + fp + ".bin";
  load_or_build_token_cache({corpus}, tok, cache);
  log.clear();
  const auto again = training_held_out(meta(corpus, "", "0.1", dir + "/cache"), tok, T,
                                       [&](const std::string& l) { log.push_back(l); });
  EXPECT_EQ(again->tokens, held->tokens);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("from train's token cache " + cache), std::string::npos) << log[0];
}

TEST(EvalInDomain, ValDataIsUsedWhole) {
  const std::string dir = testing_eval::fresh_temp_dir("indomain-val");
  const std::string corpus = write_corpus(dir, "train.txt", 50);
  const std::string val = write_corpus(dir, "valid.txt", 9);
  const BpeTokenizer& tok = fixture_tokenizer();
  const auto held = training_held_out(meta(corpus, val, "", ""), tok, 16, nullptr);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->tokens, encode_text_files({val}, tok));
  EXPECT_NE(held->description.find("--val-data " + val), std::string::npos);
}

TEST(EvalInDomain, NoRecordNoSplitAndMovedFiles) {
  const std::string dir = testing_eval::fresh_temp_dir("indomain-none");
  const BpeTokenizer& tok = fixture_tokenizer();
  Checkpoint old;  // written before train recorded its data
  EXPECT_FALSE(training_held_out(old, tok, 16, nullptr).has_value());
  const std::string corpus = write_corpus(dir, "c.txt", 20);
  EXPECT_FALSE(training_held_out(meta(corpus, "", "0", ""), tok, 16, nullptr).has_value());
  try {
    training_held_out(meta(dir + "/gone.txt", "", "0.1", ""), tok, 16, nullptr);
    FAIL() << "a moved training file must be an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--data " + dir + "/gone.txt, which is not there"), std::string::npos) << m;
    EXPECT_NE(m.find("--ppl-data"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace moe
