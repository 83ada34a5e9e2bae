// dataset.cpp — fixed-length blocks, the train/validation split, the per-epoch shuffle and the
// resumable cursor (SPEC §5; the layout is described in dataset.h).
//
// Left out: prefetching or a background thread (copying B*T int32 is trivial next to a training
// step), sampling blocks at random offsets (fixed offsets keep the epoch well defined).
#include "data/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "core/check.h"
#include "data/synthetic.h"  // SplitMix64, mix_seed

namespace moe {

namespace {

// Blocks in a stream of n tokens: block i needs tokens up to index i*T + T.
int64_t blocks_in(size_t n, int T) {
  return n == 0 ? 0 : static_cast<int64_t>((n - 1) / static_cast<size_t>(T));
}

}  // namespace

BlockDataset::BlockDataset(std::vector<int32_t> tokens, int T, double val_fraction, uint64_t seed)
    : T_(T), seed_(seed) {
  CHECK(T >= 1, "block size T = ", T, " must be at least 1. HINT: pass a positive --seq-len");
  CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "--val-fraction = ", val_fraction,
        " must be in [0, 1). HINT: e.g. 0.01 keeps the last 1% of the corpus for validation");
  const size_t n = tokens.size();
  CHECK(blocks_in(n, T) >= 1, "corpus of ", n, " tokens is shorter than one block of T = ", T,
        " tokens (needs ", T + 1, "). HINT: use a larger corpus or a smaller --seq-len");
  if (val_fraction > 0.0) {
    const int64_t total = blocks_in(n, T);
    const double wanted = std::floor(val_fraction * static_cast<double>(total));
    const int64_t n_val = std::max<int64_t>(1, static_cast<int64_t>(wanted));
    // The validation part is n_val blocks plus their one extra target token, cut from the end.
    const size_t val_tokens = static_cast<size_t>(n_val) * static_cast<size_t>(T) + 1;
    const size_t split = n > val_tokens ? n - val_tokens : 0;
    CHECK(blocks_in(split, T) >= 1, "corpus of ", n, " tokens is too small for ", n_val,
          " validation block(s) and at least one training block of T = ", T, " tokens (needs ",
          (n_val + 1) * T + 2, " tokens). HINT: use a larger corpus, a smaller --seq-len, a "
          "smaller --val-fraction, or a separate validation file");
    val_.assign(tokens.begin() + static_cast<std::ptrdiff_t>(split), tokens.end());
    tokens.resize(split);
  }
  train_ = std::move(tokens);
  num_train_blocks_ = blocks_in(train_.size(), T);
  num_val_blocks_ = blocks_in(val_.size(), T);
  order_ = epoch_order(0);
}

BlockDataset::BlockDataset(std::vector<int32_t> train_tokens, std::vector<int32_t> val_tokens,
                           int T, uint64_t seed)
    : train_(std::move(train_tokens)), val_(std::move(val_tokens)), T_(T), seed_(seed) {
  CHECK(T >= 1, "block size T = ", T, " must be at least 1. HINT: pass a positive --seq-len");
  CHECK(blocks_in(train_.size(), T) >= 1, "training corpus has ", train_.size(),
        " tokens, fewer than one block of T = ", T, " tokens (needs ", T + 1,
        "). HINT: use a larger corpus or a smaller --seq-len");
  CHECK(blocks_in(val_.size(), T) >= 1, "validation corpus has ", val_.size(),
        " tokens, fewer than one block of T = ", T, " tokens (needs ", T + 1,
        "). HINT: use a larger validation file or a smaller --seq-len");
  num_train_blocks_ = blocks_in(train_.size(), T);
  num_val_blocks_ = blocks_in(val_.size(), T);
  order_ = epoch_order(0);
}

void BlockDataset::copy_block(const std::vector<int32_t>& src, int64_t block, int T, int32_t* x,
                              int32_t* y) {
  const int32_t* p = src.data() + static_cast<size_t>(block) * static_cast<size_t>(T);
  std::copy(p, p + T, x);      // tokens [i*T, i*T + T)
  std::copy(p + 1, p + 1 + T, y);  // tokens [i*T + 1, i*T + T], shifted by one
}

std::vector<int64_t> BlockDataset::epoch_order(int64_t epoch) const {
  ASSERT_INTERNAL(num_train_blocks_ < (int64_t(1) << 32), "SplitMix64::below takes 32 bits");
  std::vector<int64_t> order(static_cast<size_t>(num_train_blocks_));
  std::iota(order.begin(), order.end(), int64_t(0));
  SplitMix64 rng(mix_seed(seed_, static_cast<uint64_t>(epoch)));
  // Fisher-Yates from the back: position i gets a uniform pick among the first i+1 entries.
  for (size_t i = order.size(); i > 1; --i) {
    const size_t j = rng.below(static_cast<uint32_t>(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::vector<BlockDataset::Segment> BlockDataset::advance_train_cursor(int B) {
  CHECK(B >= 1, "batch size B = ", B, " must be at least 1. HINT: pass a positive --batch-size");
  std::vector<Segment> segs;
  int64_t left = B;
  while (left > 0) {
    if (cursor_.pos == num_train_blocks_) {  // epoch finished: next permutation
      cursor_.epoch += 1;
      cursor_.pos = 0;
      order_ = epoch_order(cursor_.epoch);
    }
    const int64_t take = std::min(left, num_train_blocks_ - cursor_.pos);
    segs.push_back(Segment{cursor_.epoch, cursor_.pos, take});
    cursor_.pos += take;
    left -= take;
  }
  return segs;
}

void BlockDataset::next_train_batch(int B, int32_t* x, int32_t* y) {
  ASSERT_INTERNAL(x != nullptr && y != nullptr);
  int64_t row = 0;
  for (const Segment& seg : advance_train_cursor(B)) {
    // order_ is the permutation of the last segment's epoch; an earlier segment (the end of the
    // previous epoch) needs its own.
    std::vector<int64_t> previous;
    const std::vector<int64_t>* order = &order_;
    if (seg.epoch != cursor_.epoch) order = &(previous = epoch_order(seg.epoch));
    for (int64_t b = 0; b < seg.count; ++b, ++row)
      copy_block(train_, (*order)[static_cast<size_t>(seg.pos + b)], T_,
                 x + static_cast<size_t>(row) * T_, y + static_cast<size_t>(row) * T_);
  }
}

void gather_train_blocks(int32_t* x, int32_t* y, const int32_t* tokens, const int32_t* order,
                         int64_t pos, int64_t count, int T) {
  for (int64_t b = 0; b < count; ++b) {
    const int32_t* p = tokens + static_cast<int64_t>(order[pos + b]) * T;
    std::copy(p, p + T, x + b * T);
    std::copy(p + 1, p + 1 + T, y + b * T);
  }
}

void BlockDataset::val_batch(int64_t first_block, int B, int32_t* x, int32_t* y,
                             int* n_filled) const {
  CHECK(B >= 1, "batch size B = ", B, " must be at least 1. HINT: pass a positive --batch_size");
  CHECK(first_block >= 0, "validation block index ", first_block, " must be >= 0");
  ASSERT_INTERNAL(x != nullptr && y != nullptr && n_filled != nullptr);
  int filled = 0;
  for (int b = 0; b < B; ++b) {
    int32_t* xb = x + static_cast<size_t>(b) * T_;
    int32_t* yb = y + static_cast<size_t>(b) * T_;
    const int64_t block = first_block + b;
    if (block < num_val_blocks_) {
      copy_block(val_, block, T_, xb, yb);
      ++filled;
    } else {
      std::fill(xb, xb + T_, 0);
      std::fill(yb, yb + T_, 0);
    }
  }
  *n_filled = filled;
}

void BlockDataset::train_block(int64_t i, int32_t* x, int32_t* y) const {
  CHECK(i >= 0 && i < num_train_blocks_, "train block ", i, " out of range [0, ",
        num_train_blocks_, ")");
  copy_block(train_, i, T_, x, y);
}

void BlockDataset::set_cursor(Cursor c) {
  CHECK(c.epoch >= 0 && c.pos >= 0 && c.pos <= num_train_blocks_, "data cursor {epoch ", c.epoch,
        ", pos ", c.pos, "} does not fit this dataset of ", num_train_blocks_,
        " train blocks. HINT: resume with the same corpus, tokenizer and --seq-len as the "
        "checkpoint");
  cursor_ = c;
  order_ = epoch_order(c.epoch);
}

}  // namespace moe
