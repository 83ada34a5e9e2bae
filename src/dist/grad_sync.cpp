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
  for (size_t k = 0; k < params_.size(); ++k) {
    if (sharded_[k]) continue;
    if (buckets_.empty() || buckets_.back().numel >= bucket_numel) buckets_.emplace_back();
    buckets_.back().members.push_back(k);
    buckets_.back().numel += params_[k].second.numel();
  }
}

void GradSync::sync() {
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
  const double inv_w = 1.0 / static_cast<double>(world_);
  cuda_synchronize();  // the backward is not the exchange's (comm_stats)
  const auto t0 = std::chrono::steady_clock::now();
  for (Bucket& b : buckets_) {
    if (!b.flat.defined())
      b.flat = Tensor::empty({b.numel}, DType::F32, params_[b.members[0]].second.device());
    int64_t off = 0;
    for (size_t k : b.members) {  // pack
      const Tensor g = params_[k].second.grad();
      b.flat.slice_view(0, off, off + g.numel()).copy_from(g.contiguous().view({g.numel()}));
      off += g.numel();
    }
    transport_.all_reduce(b.flat, inv_w);
    off = 0;
    for (size_t k : b.members) {  // unpack
      Tensor g = params_[k].second.grad();
      g.copy_from(b.flat.slice_view(0, off, off + g.numel()).view(g.shape()));
      off += g.numel();
    }
    comm_stats().ar_bytes += static_cast<double>(b.numel) * sizeof(float);
    ++comm_stats().ar_calls;
  }
  cuda_synchronize();
  comm_stats().ar_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace moe
