// grad_sync.cpp — see grad_sync.h.
#include "dist/grad_sync.h"

#include <chrono>

#include "core/autograd.h"
#include "core/device.h"
#include "ops/elementwise.h"

namespace moe {

GradSync::GradSync(const std::vector<std::pair<std::string, Tensor>>& params,
                   Transport& transport, int world,
                   const std::vector<bool>& sharded, double expert_scale, size_t bucket_bytes)
    : params_(params), sharded_(sharded), transport_(transport), world_(world),
      expert_scale_(expert_scale) {
  CHECK(sharded_.size() == params_.size(), "GradSync: ", sharded_.size(), " flags for ",
        params_.size(), " parameters");
  const int64_t bucket_numel = static_cast<int64_t>(bucket_bytes / sizeof(float));
  // From the last parameter back: the backward finishes the last layers first.
  for (size_t k = params_.size(); k-- > 0;) {
    if (sharded_[k]) continue;
    if (buckets_.empty() || buckets_.back().numel >= bucket_numel) buckets_.emplace_back();
    buckets_.back().members.push_back(k);
    buckets_.back().numel += params_[k].second.numel();
    bucket_of_[params_[k].second.meta().get()] = buckets_.size() - 1;
  }
}

void GradSync::backward(const Tensor& loss) {
  next_ = 0;
  started_.clear();
  for (Bucket& b : buckets_) b.pending = static_cast<int>(b.members.size());
  {
    LeafReadyScope hook([this](AutogradMeta& leaf) { leaf_ready(leaf); });
    moe::backward(loss);
  }
  started_in_backward_ = static_cast<int>(started_.size());
  finish();
}

void GradSync::sync() {
  next_ = 0;
  started_.clear();
  started_in_backward_ = 0;
  finish();
}

void GradSync::leaf_ready(AutogradMeta& leaf) {
  if (world_ <= 1) return;
  const auto it = bucket_of_.find(&leaf);
  if (it == bucket_of_.end()) return;  // an expert slice, or not one of ours
  --buckets_[it->second].pending;
  while (next_ < buckets_.size() && buckets_[next_].pending == 0) start(next_++);
}

void GradSync::start(size_t bi) {
  NoGradGuard ng;
  Bucket& b = buckets_[bi];
  const Device dev = params_[b.members[0]].second.device();
  if (!b.flat.defined()) b.flat = Tensor::empty({b.numel}, DType::F32, dev);
  int64_t off = 0;
  for (size_t k : b.members) {  // pack (a missing gradient is a zero one)
    Tensor p = params_[k].second;
    if (!p.grad().defined()) p.meta()->grad = Tensor::zeros(p.shape(), p.dtype(), p.device());
    const Tensor g = p.grad();
    b.flat.slice_view(0, off, off + g.numel()).copy_from(g.contiguous().view({g.numel()}));
    off += g.numel();
  }
  const double inv_w = 1.0 / static_cast<double>(world_);
  if (transport_.asynchronous()) {
    transport_.all_reduce_start(b.flat, inv_w);  // timed by the transport, on the device
  } else {
    cuda_synchronize();  // the backward's kernels are not the exchange's (comm_stats)
    const auto t0 = std::chrono::steady_clock::now();
    transport_.all_reduce_start(b.flat, inv_w);
    cuda_synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CommStats& st = comm_stats();
    st.ar_seconds += s;
    st.ar_exposed_seconds += s;  // a blocking exchange overlaps nothing
    st.ar_bytes += static_cast<double>(b.numel) * sizeof(float);
    ++st.ar_calls;
  }
  started_.push_back(static_cast<int>(bi));
}

void GradSync::finish() {
  NoGradGuard ng;
  for (size_t k = 0; k < params_.size(); ++k) {  // a missing gradient is a zero one
    Tensor p = params_[k].second;
    if (!p.grad().defined()) p.meta()->grad = Tensor::zeros(p.shape(), p.dtype(), p.device());
  }
  for (size_t k = 0; k < params_.size(); ++k)
    if (sharded_[k] && expert_scale_ != 1.0) {
      Tensor g = params_[k].second.grad();
      scale_inplace(g, expert_scale_);
    }
  if (world_ <= 1) return;
  while (next_ < buckets_.size()) start(next_++);  // unused parameters, or sync() after backward
  transport_.all_reduce_wait();
  for (Bucket& b : buckets_) {
    int64_t off = 0;
    for (size_t k : b.members) {  // unpack
      Tensor g = params_[k].second.grad();
      g.copy_from(b.flat.slice_view(0, off, off + g.numel()).view(g.shape()));
      off += g.numel();
    }
  }
}

}  // namespace moe
