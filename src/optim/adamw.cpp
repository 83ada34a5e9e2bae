// adamw.cpp — the AdamW update (CPU loops; the CUDA kernels are cuda/optim/adamw.cu), the
// non-finite guard, and the warmup + linear-decay schedule (see adamw.h).
#include "optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

AdamW::AdamW(const ParamRegistry& params, const AdamWConfig& cfg)
    : params_(params.all()), cfg_(cfg) {
  Device dev = params_.empty() ? cpu() : params_.front().second.device();
  for (const auto& [name, p] : params_) {
    CHECK(p.device() == dev && p.dtype() == DType::F32, "AdamW: parameter ", name, " is ",
          p.desc(), "; every parameter must be f32 on ", dev.str());
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
  bad_step_ = Tensor::zeros({}, DType::I32, dev);
}

// ---------------------------------------------------------------------------------------------
// CPU kernels

// Global L2 norm of all gradients, summed in double in a fixed order (tensor by tensor).
void adamw_grad_norm(float* norm, const AdamWTensor* ts, int64_t count) {
  // ASSIGNMENT 6 BEGIN adamw_grad_norm
  double ss = 0.0;
  for (int64_t k = 0; k < count; ++k) {
    if (ts[k].g == nullptr) continue;
    for (int64_t i = 0; i < ts[k].n; ++i) ss += static_cast<double>(ts[k].g[i]) * ts[k].g[i];
  }
  *norm = static_cast<float>(std::sqrt(ss));
  // ASSIGNMENT 6 END
}

void adamw_update(const AdamWTensor* ts, int64_t count, AdamWStepArgs a, const float* norm,
                  const float* guard, int32_t* bad_step) {
  // ASSIGNMENT 6 BEGIN adamw_update
  const bool finite = std::isfinite(*norm) && (guard == nullptr || std::isfinite(*guard));
  if (!finite || *bad_step != 0) {
    if (*bad_step == 0) *bad_step = a.step;
    return;
  }
  const float cc = (a.clip > 0 && *norm > a.clip) ? a.clip / *norm : 1.0f;
  for (int64_t k = 0; k < count; ++k) {
    const AdamWTensor& t = ts[k];
    if (t.g == nullptr) {  // unused this step (e.g. a frozen head): decay only
      for (int64_t i = 0; i < t.n; ++i) t.p[i] *= t.decay;
      continue;
    }
    parallel_for(t.n, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const float gi = t.g[i] * cc;
        t.m[i] = a.beta1 * t.m[i] + (1 - a.beta1) * gi;
        t.v[i] = a.beta2 * t.v[i] + (1 - a.beta2) * gi * gi;
        t.p[i] = t.p[i] * t.decay - t.step_size * t.m[i] / (std::sqrt(t.v[i]) * a.inv_sqrt_bc2 + a.eps);
      }
    }, 1 << 15);
  }
  // ASSIGNMENT 6 END
}

// ---------------------------------------------------------------------------------------------
// the step

Tensor AdamW::step(double lr, const std::vector<double>* lr_scale, const Tensor& guard) {
  NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  std::vector<AdamWTensor> table(params_.size());
  std::vector<Tensor> grads(params_.size());  // keeps the gradients alive during the launch
  for (size_t k = 0; k < params_.size(); ++k) {
    const Tensor& p = params_[k].second;
    const double plr = lr * (lr_scale ? (*lr_scale)[k] : 1.0);
    grads[k] = p.grad().defined() ? p.grad().contiguous() : Tensor();
    AdamWTensor& t = table[k];
    t.p = p.data<float>(true);
    t.g = grads[k].defined() ? grads[k].data<float>(true) : nullptr;
    t.m = m_[k].data<float>(true);
    t.v = v_[k].data<float>(true);
    t.n = p.numel();
    t.decay = static_cast<float>(1.0 - plr * cfg_.weight_decay);
    t.step_size = static_cast<float>(plr / bc1);
  }
  AdamWStepArgs a;
  a.beta1 = static_cast<float>(cfg_.beta1);
  a.beta2 = static_cast<float>(cfg_.beta2);
  a.eps = static_cast<float>(cfg_.eps);
  a.clip = static_cast<float>(cfg_.clip_grad);
  a.inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  a.step = static_cast<int32_t>(std::min<int64_t>(t_, INT32_MAX));
  const Device dev = bad_step_.device();
  Tensor norm = Tensor::empty({}, DType::F32, dev);
  const Tensor g = guard.defined() ? guard.to(dev).contiguous() : Tensor();
  const float* gp = g.defined() ? g.data<float>(true) : nullptr;
  const int64_t count = static_cast<int64_t>(table.size());
  if (!sharded_.empty()) {
    sharded_grad_norm(norm, table);
    if (dev.is_cuda())
      adamw_update_cuda(table.data(), count, a, norm.data<float>(true), gp,
                        bad_step_.data<int32_t>(true));
    else
      adamw_update(table.data(), count, a, norm.data<float>(), gp, bad_step_.data<int32_t>());
  } else if (dev.is_cuda()) {
    adamw_grad_norm_cuda(norm.data<float>(true), table.data(), count);
    adamw_update_cuda(table.data(), count, a, norm.data<float>(true), gp,
                      bad_step_.data<int32_t>(true));
  } else {
    adamw_grad_norm(norm.data<float>(), table.data(), count);
    adamw_update(table.data(), count, a, norm.data<float>(), gp, bad_step_.data<int32_t>());
  }
  return norm;
}

void AdamW::set_sharded(std::vector<bool> sharded, int rank, int world,
                        std::function<void(Tensor&)> sum_over_ranks) {
  CHECK(sharded.size() == params_.size(), "AdamW::set_sharded: ", sharded.size(),
        " flags for ", params_.size(), " parameters");
  sharded_ = std::move(sharded);
  rank_ = rank;
  world_ = world;
  sum_over_ranks_ = std::move(sum_over_ranks);
}

// norm = sqrt(shared^2 + sum over ranks of sliced^2), where shared and sliced are the norms of
// the two halves of the table (the same norm kernel over each). The last step runs the kernel
// once more, over a table of two "tensors": shared (1) and every rank's sliced (W).
void AdamW::sharded_grad_norm(Tensor& norm, const std::vector<AdamWTensor>& table) const {
  std::vector<AdamWTensor> parts[2];
  for (size_t k = 0; k < table.size(); ++k) parts[sharded_[k] ? 1 : 0].push_back(table[k]);
  const Device dev = norm.device();
  Tensor shared = Tensor::zeros({1}, DType::F32, dev);      // (1)
  Tensor sliced = Tensor::zeros({world_}, DType::F32, dev);  // (W): entry r from rank r
  auto run_norm = [&](float* out, const std::vector<AdamWTensor>& ts) {
    if (dev.is_cuda())
      adamw_grad_norm_cuda(out, ts.data(), static_cast<int64_t>(ts.size()));
    else
      adamw_grad_norm(out, ts.data(), static_cast<int64_t>(ts.size()));
  };
  const bool on_gpu = dev.is_cuda();
  run_norm(on_gpu ? shared.data<float>(true) : shared.data<float>(), parts[0]);
  run_norm((on_gpu ? sliced.data<float>(true) : sliced.data<float>()) + rank_, parts[1]);
  sum_over_ranks_(sliced);
  std::vector<AdamWTensor> both(2);
  both[0].g = on_gpu ? shared.data<float>(true) : shared.data<float>();
  both[0].n = 1;
  both[1].g = on_gpu ? sliced.data<float>(true) : sliced.data<float>();
  both[1].n = world_;
  run_norm(on_gpu ? norm.data<float>(true) : norm.data<float>(), both);
}

int64_t AdamW::first_nonfinite_step() const { return static_cast<int64_t>(bad_step_.item()); }

std::vector<std::pair<std::string, Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t k = 0; k < params_.size(); ++k) {
    out.emplace_back("adam_m/" + params_[k].first, m_[k]);
    out.emplace_back("adam_v/" + params_[k].first, v_[k]);
  }
  return out;
}

void AdamW::load_state(int64_t t, const std::vector<std::pair<std::string, Tensor>>& tensors) {
  t_ = t;
  auto find = [&](const std::string& name) -> const Tensor& {
    for (const auto& [n, ten] : tensors)
      if (n == name) return ten;
    CHECK(false, "checkpoint has no optimizer state '", name, "'");
    static Tensor none;
    return none;
  };
  for (size_t k = 0; k < params_.size(); ++k) {
    m_[k].copy_from(find("adam_m/" + params_[k].first));
    v_[k].copy_from(find("adam_v/" + params_[k].first));
  }
}

double lr_at(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak_lr) {
  // ASSIGNMENT 6 BEGIN lr_at
  if (warmup_steps > 0 && step < warmup_steps)
    return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 0) return peak_lr;
  const double frac = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps);
  return peak_lr * std::max(0.0, 1.0 - frac);
  // ASSIGNMENT 6 END
}

}  // namespace moe
