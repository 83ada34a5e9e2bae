// grad_sync.h — the gradient exchange of data parallelism, after each backward on W ranks
// (SPEC §4; notes/distributed.md "What is split").
//
// Replicated parameters (everything but the experts) saw a different shard of the global batch
// on each rank; their exact gradient for the global mean loss is the average of the ranks'
// gradients, so they are all-reduced and divided by W. They travel in buckets (consecutive
// parameters packed into one flat buffer of about `bucket_bytes`) so that a model with hundreds of
// small tensors makes a few large exchanges instead of hundreds of small ones. Expert gradients
// are never exchanged: the all-to-all already brought every rank's tokens to the expert's owner,
// so the owner's gradient is the sum over ranks; it is multiplied by `expert_scale` (SPEC §4:
// 1/sqrt(W) for the "gradient" option, 1/W for "lr").
//
// Every rank must call sync() at the same point with the same registry; a parameter without a
// gradient this step counts as a zero gradient (it gets one), so the ranks never disagree on what
// is exchanged. The exchange happens after the whole backward (it does not overlap it).
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "dist/transport.h"

namespace moe {

class GradSync {
 public:
  // params: the model's (name, leaf) list in registry order; sharded[k]: parameter k is a
  // per-rank slice (an expert tensor).
  GradSync(const std::vector<std::pair<std::string, Tensor>>& params,
           Transport& transport, int world,
           const std::vector<bool>& sharded, double expert_scale,
           size_t bucket_bytes = size_t(32) << 20);
  void sync();
  int num_buckets() const { return static_cast<int>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t numel = 0;
    Tensor flat;                  // (numel) f32, allocated on the first sync
  };
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<bool> sharded_;
  Transport& transport_;
  int world_;
  double expert_scale_;
  std::vector<Bucket> buckets_;
};

}  // namespace moe
