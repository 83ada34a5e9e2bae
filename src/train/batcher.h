// batcher.h — training batches on the model's device (SPEC §5 blocks; notes/design.md "the step
// stays on the device").
//
// On the CPU a batch is filled by BlockDataset::next_train_batch. On a GPU the train token stream
// is copied to the device once, the block order of the current epoch once per epoch, and each
// batch is one gather kernel (cuda/data/dataset.cu) — the host only advances the dataset's
// cursor, so checkpoints and --resume see exactly the same cursor on both devices, and both
// devices see exactly the same batches.
#pragma once
#include "core/tensor.h"
#include "data/dataset.h"

namespace moe {

class TrainBatcher {
 public:
  TrainBatcher(BlockDataset& dataset, Device device);
  // x, y: (B, T) i32 on the device; the dataset's cursor moves on by B blocks.
  void next(int B, Tensor* x, Tensor* y);

 private:
  const Tensor& order_for(int64_t epoch);  // (num_train_blocks,) i32 on the device

  BlockDataset& ds_;
  Device dev_;
  Tensor tokens_;  // (N_train,) i32 on the device (GPU only)
  Tensor order_;   // the block order of epoch order_epoch_, on the device
  int64_t order_epoch_ = -1;
};

}  // namespace moe
