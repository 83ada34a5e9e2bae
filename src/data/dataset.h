// dataset.h — the token stream cut into fixed T-token blocks for training and validation
// (SPEC §5: blocks cross document boundaries; no BOS token is inserted).
//
// Block i of a token array covers tokens [i*T, i*T + T] (T+1 tokens): the input x is the first
// T of them and the target y the last T, so y[t] = x[t+1] is "the next token". Consecutive blocks
// share one token (the last target of block i is the first input of block i+1), which is why a
// stream of N tokens holds (N - 1) / T blocks.
//
// Validation: either a separate token array, or the tail of the training stream. For the tail
// split, the last max(1, floor(val_fraction * blocks)) blocks' worth of tokens (plus the one
// extra target token) are moved out of the training array, so that no token, not even a
// target, is shared between train and validation.
//
// Training order: the train blocks are visited in a random permutation, a new one per epoch,
// which is a pure function of (seed, epoch) (Fisher-Yates driven by SplitMix64). The position in
// that order is the Cursor {epoch, pos}; saving it in a checkpoint and calling set_cursor() after
// loading gives exactly the batches an uninterrupted run would have seen.
//
// Left out: per-rank sharding (for data parallelism draw a global batch and take this rank's
// rows), document-aware masking, variable-length batches.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dispatch.h"

namespace moe {

class BlockDataset {
 public:
  // Train/validation split of one stream. val_fraction in [0, 1); 0 means no validation set.
  // Throws moe::Error (with a HINT) if the stream cannot hold one train block (and one
  // validation block when val_fraction > 0) of T tokens.
  BlockDataset(std::vector<int32_t> tokens, int T, double val_fraction, uint64_t seed);
  // Separate validation stream; both must hold at least one block of T tokens.
  BlockDataset(std::vector<int32_t> train_tokens, std::vector<int32_t> val_tokens, int T,
               uint64_t seed);

  int block_size() const { return T_; }
  int64_t num_train_blocks() const { return num_train_blocks_; }
  int64_t num_val_blocks() const { return num_val_blocks_; }
  int64_t num_train_tokens() const { return static_cast<int64_t>(train_.size()); }
  int64_t num_val_tokens() const { return static_cast<int64_t>(val_.size()); }

  // Fill x, y: (B, T) int32 row-major with the next B train blocks in shuffled order. Moving
  // past the last block of an epoch starts the next epoch with a fresh permutation.
  void next_train_batch(int B, int32_t* x, int32_t* y);

  // Validation blocks first_block, first_block+1, ... in order, at most B of them; *n_filled
  // says how many rows were written (0 once first_block >= num_val_blocks()). Rows past
  // *n_filled are set to 0, which is a real token id: callers must use only the first n_filled.
  void val_batch(int64_t first_block, int B, int32_t* x, int32_t* y, int* n_filled) const;

  // Where the next B train blocks come from, advancing the cursor exactly as next_train_batch
  // does: one segment of the epoch's order, or two when the batch crosses into the next epoch.
  // (The GPU trainer gathers the blocks itself from a device copy of the stream: no per-step
  // copy from the host, src/train/batcher.h.)
  struct Segment {
    int64_t epoch = 0, pos = 0, count = 0;
  };
  std::vector<Segment> advance_train_cursor(int B);
  const std::vector<int32_t>& train_tokens() const { return train_; }

  // Train block `i` in stream order (not shuffled), x and y: (T,) each. For tests and tools.
  void train_block(int64_t i, int32_t* x, int32_t* y) const;

  // The position of the next train block: `pos` blocks of epoch `epoch`'s permutation are used.
  struct Cursor {
    int64_t epoch = 0;
    int64_t pos = 0;  // in [0, num_train_blocks()]
  };
  Cursor cursor() const { return cursor_; }
  // Throws moe::Error if pos is outside [0, num_train_blocks()] or epoch < 0 (e.g. a
  // checkpoint from a run with a different corpus or T).
  void set_cursor(Cursor c);

  // The permutation of train blocks for `epoch` (shared by all instances with the same seed
  // and block count). Exposed so tests can check it is a permutation.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  static void copy_block(const std::vector<int32_t>& src, int64_t block, int T, int32_t* x,
                         int32_t* y);

  std::vector<int32_t> train_;  // (N_train,) int32 token ids
  std::vector<int32_t> val_;    // (N_val,) int32 token ids; empty when there is no validation set
  int T_ = 0;
  uint64_t seed_ = 0;
  int64_t num_train_blocks_ = 0, num_val_blocks_ = 0;
  Cursor cursor_;
  std::vector<int64_t> order_;  // (num_train_blocks,) permutation for cursor_.epoch
};

// x, y (count, T) = the train blocks order[pos], ..., order[pos + count - 1] of `tokens`: row b of
// x is tokens [i*T, i*T + T) and of y tokens [i*T + 1, i*T + T] for i = order[pos + b].
void gather_train_blocks(int32_t* x, int32_t* y, const int32_t* tokens, const int32_t* order,
                         int64_t pos, int64_t count, int T);
MOE_CUDA_BEGIN
void gather_train_blocks_cuda(int32_t* x, int32_t* y, const int32_t* tokens,
                              const int32_t* order, int64_t pos, int64_t count, int T)
    MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
