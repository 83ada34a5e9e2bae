// test_dataset.cpp — tests of BlockDataset (src/data/dataset.*, SPEC §5 fixed T-token blocks).
//
// Most tests use the stream 0, 1, 2, ..., N-1, where a token's value is its position, so the
// expected contents of every block and of the split follow from arithmetic done by hand in the
// comments. Not checked: speed (copying B*T integers).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/dataset.h"
#include "test_util.h"

namespace moe {
using moe::testing::error_of;
using moe::testing::has;
namespace {

std::vector<int32_t> iota_tokens(int n, int32_t first = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(Dataset, BlocksAreShiftedSlicesOfTheStream) {
  // 101 tokens, T = 10: blocks need tokens up to i*10 + 10 <= 100, so i = 0..9: 10 blocks.
  BlockDataset ds(iota_tokens(101), 10, 0.0, 1);
  EXPECT_EQ(ds.num_train_blocks(), 10);
  EXPECT_EQ(ds.num_val_blocks(), 0);
  int32_t x[10], y[10];
  for (int i = 0; i < 10; ++i) {
    ds.train_block(i, x, y);
    for (int t = 0; t < 10; ++t) {
      ASSERT_EQ(x[t], i * 10 + t);
      ASSERT_EQ(y[t], i * 10 + t + 1);  // the next token
    }
  }
  // 100 tokens: the last block would need token 100, so only 9 blocks.
  EXPECT_EQ(BlockDataset(iota_tokens(100), 10, 0.0, 1).num_train_blocks(), 9);
}

TEST(Dataset, BlocksCrossDocumentBoundaries) {
  // Two documents "5 6 </s>" and "7 8 9 </s>" with </s> = 0; no BOS and no padding: block 0
  // of T = 4 runs straight from the first document into the second.
  BlockDataset ds({5, 6, 0, 7, 8, 9, 0, 3, 4}, 4, 0.0, 1);
  int32_t x[4], y[4];
  ds.train_block(0, x, y);
  EXPECT_EQ(std::vector<int32_t>(x, x + 4), (std::vector<int32_t>{5, 6, 0, 7}));
  EXPECT_EQ(std::vector<int32_t>(y, y + 4), (std::vector<int32_t>{6, 0, 7, 8}));
  ds.train_block(1, x, y);
  EXPECT_EQ(std::vector<int32_t>(x, x + 4), (std::vector<int32_t>{8, 9, 0, 3}));
  EXPECT_EQ(std::vector<int32_t>(y, y + 4), (std::vector<int32_t>{9, 0, 3, 4}));
}

TEST(Dataset, ValidationIsTheDisjointTail) {
  // N = 1000, T = 10: 99 blocks in all; val = floor(0.1 * 99) = 9 blocks = 91 tokens
  // (positions 909..999); train keeps positions 0..908, i.e. (909 - 1) / 10 = 90 blocks.
  BlockDataset ds(iota_tokens(1000), 10, 0.1, 1);
  EXPECT_EQ(ds.num_val_blocks(), 9);
  EXPECT_EQ(ds.num_train_blocks(), 90);
  int32_t x[10], y[10];
  int32_t max_train = -1;
  for (int64_t i = 0; i < ds.num_train_blocks(); ++i) {
    ds.train_block(i, x, y);
    max_train = std::max({max_train, *std::max_element(x, x + 10), *std::max_element(y, y + 10)});
  }
  EXPECT_EQ(max_train, 900);  // last train block: x = 890..899, y = 891..900
  std::vector<int32_t> vx(9 * 10), vy(9 * 10);
  int filled = 0;
  ds.val_batch(0, 9, vx.data(), vy.data(), &filled);
  EXPECT_EQ(filled, 9);
  EXPECT_EQ(vx.front(), 909);
  EXPECT_EQ(vy.back(), 999);  // the tail ends at the last token
  for (int j = 0; j < 9 * 10; ++j) {
    ASSERT_EQ(vx[j], 909 + j);
    ASSERT_EQ(vy[j], 910 + j);
    ASSERT_GT(vx[j], max_train);  // no token is shared with the training blocks
  }
  // A tiny fraction still gives one validation block.
  EXPECT_EQ(BlockDataset(iota_tokens(1000), 10, 0.001, 1).num_val_blocks(), 1);
}

TEST(Dataset, SeparateValidationTokensAndPartialValBatch) {
  // Val stream 1000..1050 (51 tokens), T = 10: (51 - 1) / 10 = 5 blocks.
  BlockDataset ds(iota_tokens(101), iota_tokens(51, 1000), 10, 1);
  EXPECT_EQ(ds.num_train_blocks(), 10);
  EXPECT_EQ(ds.num_val_blocks(), 5);
  std::vector<int32_t> x(4 * 10, -1), y(4 * 10, -1);
  int filled = -1;
  ds.val_batch(3, 4, x.data(), y.data(), &filled);  // blocks 3 and 4 exist, 5 and 6 do not
  EXPECT_EQ(filled, 2);
  EXPECT_EQ(x[0], 1030);
  EXPECT_EQ(y[19], 1050);
  EXPECT_EQ(x[20], 0);  // unused rows are zeroed
  EXPECT_EQ(y[39], 0);
  ds.val_batch(5, 4, x.data(), y.data(), &filled);
  EXPECT_EQ(filled, 0);
}

TEST(Dataset, ShuffleIsADeterministicPermutationPerEpoch) {
  BlockDataset a(iota_tokens(1001), 10, 0.0, 42), b(iota_tokens(1001), 10, 0.0, 42);
  BlockDataset c(iota_tokens(1001), 10, 0.0, 43);
  const std::vector<int64_t> e0 = a.epoch_order(0);
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(100);
  std::iota(identity.begin(), identity.end(), int64_t(0));
  EXPECT_EQ(sorted, identity);     // a permutation of the 100 blocks
  EXPECT_NE(e0, identity);         // and actually shuffled
  EXPECT_EQ(e0, b.epoch_order(0));  // same seed, same order
  EXPECT_NE(e0, c.epoch_order(0));  // another seed, another order
  EXPECT_NE(e0, a.epoch_order(1));  // another epoch, another order

  // One epoch of batches visits the blocks in exactly that order, each once; the next batch
  // starts epoch 1 in its own order.
  int32_t x[10], y[10];
  for (int64_t k = 0; k < 100; ++k) {
    a.next_train_batch(1, x, y);
    ASSERT_EQ(x[0], e0[static_cast<size_t>(k)] * 10);  // block i starts with token i*10
  }
  a.next_train_batch(1, x, y);
  EXPECT_EQ(x[0], a.epoch_order(1)[0] * 10);
  EXPECT_EQ(a.cursor().epoch, 1);
  EXPECT_EQ(a.cursor().pos, 1);
}

TEST(Dataset, CursorRestoreGivesIdenticalBatches) {
  const int B = 3, T = 10;
  BlockDataset run(iota_tokens(101), T, 0.0, 7);  // 10 blocks per epoch
  std::vector<int32_t> x(B * T), y(B * T);
  for (int s = 0; s < 7; ++s) run.next_train_batch(B, x.data(), y.data());
  // 21 blocks used: epochs 0 and 1 full, 1 block of epoch 2.
  const BlockDataset::Cursor saved = run.cursor();
  EXPECT_EQ(saved.epoch, 2);
  EXPECT_EQ(saved.pos, 1);
  std::vector<std::vector<int32_t>> want;
  for (int s = 0; s < 5; ++s) {
    run.next_train_batch(B, x.data(), y.data());
    want.push_back(x);
    want.push_back(y);
  }
  BlockDataset resumed(iota_tokens(101), T, 0.0, 7);
  resumed.set_cursor(saved);
  for (int s = 0; s < 5; ++s) {
    resumed.next_train_batch(B, x.data(), y.data());
    EXPECT_EQ(x, want[2 * s]) << "batch " << s;
    EXPECT_EQ(y, want[2 * s + 1]) << "batch " << s;
  }
  const std::string msg = error_of([&] { resumed.set_cursor({0, 11}); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
}

TEST(Dataset, TooSmallCorpusErrors) {
  // val_fraction 0.1, T = 10: 22 tokens = 2 blocks (21 / 10); val takes 1 block = 11 tokens,
  // leaving 11 tokens = 1 train block. 21 tokens leave 10 train tokens: no block.
  BlockDataset ok(iota_tokens(22), 10, 0.1, 1);
  EXPECT_EQ(ok.num_train_blocks(), 1);
  EXPECT_EQ(ok.num_val_blocks(), 1);
  std::string msg = error_of([] { BlockDataset(iota_tokens(21), 10, 0.1, 1); });
  EXPECT_NE(msg.find("too small"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  msg = error_of([] { BlockDataset(iota_tokens(10), 10, 0.0, 1); });
  EXPECT_NE(msg.find("shorter than one block"), std::string::npos) << msg;
  msg = error_of([] { BlockDataset(iota_tokens(100), iota_tokens(10), 10, 1); });
  EXPECT_NE(msg.find("validation corpus"), std::string::npos) << msg;
  EXPECT_THROW(BlockDataset(iota_tokens(100), 10, 1.0, 1), Error);
  EXPECT_THROW(BlockDataset(iota_tokens(100), 0, 0.0, 1), Error);
}

}  // namespace
}  // namespace moe
