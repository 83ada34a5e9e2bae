// grad_sync.h — the gradient exchange of data parallelism on W ranks (SPEC §4; notes/distributed.md
// "What is split" and "Overlap").
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
// Overlap: backward(loss) runs the backward pass with a leaf hook (core/autograd.h). Buckets are
// made from the end of the registry (the last layers, whose gradients the backward finishes
// first), and bucket k starts its all-reduce as soon as every member's gradient is final and
// buckets 0..k-1 have started: with cuda-ipc the exchange then runs on its own stream while the
// backward of the earlier layers still computes. Starting in bucket order, decided by the graph
// alone, keeps every rank's sequence of exchanges identical (they must match one to one). Host
// transports block in each start, which is correct but overlaps nothing.
//
// Every rank calls backward() (or sync()) at the same point with the same registry; a parameter
// without a gradient this step counts as a zero gradient (it gets one), so the ranks never
// disagree on what is exchanged.
#pragma once
#include <cstddef>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "dist/transport.h"

namespace moe {

struct AutogradMeta;

class GradSync {
 public:
  // params: the model's (name, leaf) list in registry order; sharded[k]: parameter k is a
  // per-rank slice (an expert tensor).
  GradSync(const std::vector<std::pair<std::string, Tensor>>& params,
           Transport& transport, int world,
           const std::vector<bool>& sharded, double expert_scale,
           size_t bucket_bytes = size_t(32) << 20);
  // backward(loss), with each bucket's all-reduce started as soon as its gradients are final;
  // returns with the averaged and scaled gradients in place (in stream order on the GPU).
  void backward(const Tensor& loss);
  // The exchange alone, after a backward that ran without it.
  void sync();
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // In the order of the last backward(): the bucket each start was for (tests check the order
  // and that every bucket started once).
  const std::vector<int>& last_start_order() const { return started_; }
  // Of those, how many started from the leaf hook, before the backward pass returned.
  int started_during_backward() const { return started_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t numel = 0;
    int pending = 0;              // members whose gradient is not final yet (during backward)
    Tensor flat;                  // (numel) f32, allocated on the first exchange
  };
  void leaf_ready(AutogradMeta& leaf);
  void start(size_t b);           // pack bucket b and start its all-reduce
  void finish();                  // start what is left, wait, unpack, scale the experts

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<bool> sharded_;
  Transport& transport_;
  int world_;
  double expert_scale_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const AutogradMeta*, size_t> bucket_of_;  // replicated leaf -> its bucket
  size_t next_ = 0;               // the next bucket to start
  std::vector<int> started_;
  int started_in_backward_ = 0;
};

}  // namespace moe
