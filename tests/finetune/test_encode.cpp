// Tests for finetune/encode: the templates of notes/finetune.md, text normalisation, truncation
// from the left that keeps the question/hypothesis, right-padded batches, and the claim that
// padding needs no attention mask (causal attention: the last real token never sees it).
#include <gtest/gtest.h>

#include <vector>

#include "finetune/encode.h"
#include "finetune/last_token.h"
#include "ft_fixtures.h"

using namespace moe;
using namespace moe::testing;

TEST(Encode, NormalizeText) {
  EXPECT_EQ(normalize_text("  a  b\tc\r\nd  "), "a b c d");
  EXPECT_EQ(normalize_text("it 's fine . "), "it 's fine .");
  EXPECT_EQ(normalize_text(" \t\n"), "");
}

TEST(Encode, TemplatesPerTask) {
  Example ex{"  The passage\ttext. ", "is it true", 1, 1};
  TemplateLines b = apply_template(task_info("boolq"), ex);
  EXPECT_EQ(b.first, "The passage text.");
  EXPECT_EQ(b.second, "question: is it true?");
  ex.text_b = "is it?";
  EXPECT_EQ(apply_template(task_info("boolq"), ex).second, "question: is it?");  // no "??"
  ex.text_b = "A man  plays music. ";
  EXPECT_EQ(apply_template(task_info("mnli"), ex).second, "hypothesis: A man plays music.");
  TemplateLines s = apply_template(task_info("sst2"), Example{"a fine film . ", "", 1, 1});
  EXPECT_EQ(s.first, "a fine film .");
  EXPECT_EQ(s.second, "");
}

TEST(Encode, JoinWithoutTruncation) {
  bool cut = true;
  EXPECT_EQ(join_and_truncate({1, 2, 3}, {7, 8}, 0, 16, &cut), (std::vector<int32_t>{1, 2, 3, 0, 7, 8, 0}));
  EXPECT_FALSE(cut);
  EXPECT_EQ(join_and_truncate({1, 2, 3}, {}, 0, 4, &cut), (std::vector<int32_t>{1, 2, 3, 0}));
  EXPECT_FALSE(cut);
}

TEST(Encode, LeftTruncationKeepsTheQuestion) {
  bool cut = false;
  // 6 passage tokens + </s> q q </s> = 10 > 7: drop 3 passage tokens from the left.
  EXPECT_EQ(join_and_truncate({1, 2, 3, 4, 5, 6}, {8, 9}, 0, 7, &cut),
            (std::vector<int32_t>{4, 5, 6, 0, 8, 9, 0}));
  EXPECT_TRUE(cut);
  // exactly the tail fits: the passage goes entirely, the question stays whole
  EXPECT_EQ(join_and_truncate({1, 2, 3}, {8, 9}, 0, 4, &cut), (std::vector<int32_t>{0, 8, 9, 0}));
  // the tail alone is too long: keep its end (the final </s> stays the last token)
  EXPECT_EQ(join_and_truncate({1, 2}, {7, 8, 9}, 0, 3, &cut), (std::vector<int32_t>{8, 9, 0}));
  // single-sentence task: the sentence is cut from the left
  EXPECT_EQ(join_and_truncate({1, 2, 3, 4, 5}, {}, 0, 3, &cut), (std::vector<int32_t>{4, 5, 0}));
  EXPECT_TRUE(cut);
}

TEST(Encode, EncodeExampleWithRealTokenizer) {
  const std::string corpus = "the passage is long and the question is short\nquestion: is it\n";
  BpeTokenizer tok = BpeTokenizer::train(corpus, 300);
  Example ex{"the passage is long and the passage is long and the passage is long", "is it short",
             1, 1};
  const TaskInfo boolq = task_info("boolq");
  EncodedExample full = encode_example(tok, boolq, ex, 1000);
  EXPECT_FALSE(full.truncated);
  const std::vector<int32_t> q = tok.encode("question: is it short?");
  EncodedExample cut = encode_example(tok, boolq, ex, static_cast<int>(q.size()) + 5);
  EXPECT_TRUE(cut.truncated);
  ASSERT_EQ(cut.ids.size(), q.size() + 5);
  // the end is "</s> question: is it short? </s>", whole; the passage lost its beginning
  EXPECT_EQ(cut.ids.back(), tok.eos_id());
  EXPECT_EQ(std::vector<int32_t>(cut.ids.end() - static_cast<long>(q.size()) - 1, cut.ids.end() - 1), q);
  EXPECT_EQ(std::vector<int32_t>(cut.ids.begin(), cut.ids.begin() + 3),
            std::vector<int32_t>(full.ids.end() - static_cast<long>(q.size()) - 5,
                                 full.ids.end() - static_cast<long>(q.size()) - 2));
}

TEST(Encode, BatchesArePaddedOnTheRight) {
  std::vector<EncodedExample> data(3);
  data[0].ids = {5, 6, 7};
  data[0].label = 1;
  data[1].ids = {8};
  data[1].label = 0;
  data[2].ids = {9, 9, 9, 9, 9};
  data[2].label = 2;
  Batch b = make_batch(data, {2, 0, 1}, 1, 3, 99);  // rows 0 and 1, in that order
  ASSERT_EQ(b.ids.shape(), (Shape{2, 3}));  // padded to the longest row of the batch, not to T
  EXPECT_EQ(b.ids.to_i32_vector(), (std::vector<int32_t>{5, 6, 7, 8, 99, 99}));
  EXPECT_EQ(b.lengths.to_i32_vector(), (std::vector<int32_t>{3, 1}));
  EXPECT_EQ(b.labels.to_i32_vector(), (std::vector<int32_t>{1, 0}));
  EXPECT_THROW(make_batch(data, {0, 1, 2}, 2, 2, 0), Error);  // empty range
}

// Causal attention: the hidden state at the last real token of a right-padded row equals the one
// of the same row run alone without padding, whatever the padding ids are.
TEST(Encode, PaddingDoesNotChangeTheLastRealToken) {
  GPTConfig cfg = tiny_config(2, 32, 4, 12);
  cfg.vocab_size = 50;
  GPT model(cfg, 3);
  CounterRng rng(0, 0);
  const std::vector<int32_t> seq = {3, 14, 15, 9, 26};
  Tensor alone = model.forward_hidden(Tensor::from_i32(seq, {1, 5}), false, rng);  // (1, 5, C)
  std::vector<int32_t> padded = {3, 14, 15, 9, 26, 1, 1, 1, 3, 14, 15, 9, 26, 47, 48, 49};
  Tensor both = model.forward_hidden(Tensor::from_i32(padded, {2, 8}), false, rng);  // (2, 8, C)
  Tensor last = last_token(both, Tensor::from_i32({5, 5}, {2}));                      // (2, C)
  const std::vector<float> a = last_token(alone, Tensor::from_i32({5}, {1})).to_f32_vector();
  const std::vector<float> l = last.to_f32_vector();
  for (int c = 0; c < cfg.d_model; ++c) {
    EXPECT_FLOAT_EQ(l[c], a[c]) << "row 0, channel " << c;
    EXPECT_FLOAT_EQ(l[cfg.d_model + c], a[c]) << "row 1 (other padding), channel " << c;
  }
}
