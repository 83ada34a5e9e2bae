// batcher.cpp — see batcher.h.
#include "train/batcher.h"

#include <limits>

namespace moe {

TrainBatcher::TrainBatcher(BlockDataset& dataset, Device device) : ds_(dataset), dev_(device) {
  if (dev_.is_cpu()) return;
  const std::vector<int32_t>& tok = ds_.train_tokens();
  tokens_ = Tensor::from_i32(tok, {static_cast<int64_t>(tok.size())}).to(dev_);
}

const Tensor& TrainBatcher::order_for(int64_t epoch) {
  if (epoch == order_epoch_) return order_;
  const std::vector<int64_t> order = ds_.epoch_order(epoch);
  CHECK(static_cast<int64_t>(order.size()) < std::numeric_limits<int32_t>::max(),
        "too many train blocks (", order.size(), ") for the GPU batcher's int32 order");
  std::vector<int32_t> o32(order.begin(), order.end());
  order_ = Tensor::from_i32(o32, {static_cast<int64_t>(o32.size())}).to(dev_);
  order_epoch_ = epoch;
  return order_;
}

void TrainBatcher::next(int B, Tensor* x, Tensor* y) {
  const int T = ds_.block_size();
  *x = Tensor::empty({B, T}, DType::I32, dev_);  // (B, T)
  *y = Tensor::empty({B, T}, DType::I32, dev_);  // (B, T)
  if (dev_.is_cpu()) {
    ds_.next_train_batch(B, x->data<int32_t>(), y->data<int32_t>());
    return;
  }
  int64_t row = 0;
  for (const BlockDataset::Segment& seg : ds_.advance_train_cursor(B)) {
    const Tensor& order = order_for(seg.epoch);
    gather_train_blocks_cuda(x->data<int32_t>(true) + row * T, y->data<int32_t>(true) + row * T,
                             tokens_.data<int32_t>(true), order.data<int32_t>(true), seg.pos,
                             seg.count, T);
    row += seg.count;
  }
}

}  // namespace moe
