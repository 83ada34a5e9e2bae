// adamw.cpp — the AdamW update and the warmup + linear-decay schedule (see adamw.h).
#include "train/adamw.h"

#include <cmath>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

AdamW::AdamW(const ParamRegistry& params, const AdamWConfig& cfg)
    : params_(params.all()), cfg_(cfg) {
  for (const auto& [name, p] : params_) {
    m_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.dtype(), p.device()));
  }
}

// Global L2 norm of all gradients, summed in double in a fixed order.
static double grad_norm(const std::vector<std::pair<std::string, Tensor>>& params) {
  double ss = 0.0;
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const float* gp = g.data<float>();
    for (int64_t i = 0; i < g.numel(); ++i) ss += static_cast<double>(gp[i]) * gp[i];
  }
  return std::sqrt(ss);
}

double AdamW::step(double lr, const std::vector<double>* lr_scale) {
  NoGradGuard ng;
  ++t_;
  const double norm = grad_norm(params_);
  const double clip_coef = (cfg_.clip_grad > 0 && norm > cfg_.clip_grad) ? cfg_.clip_grad / norm : 1.0;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  for (size_t k = 0; k < params_.size(); ++k) {
    Tensor p = params_[k].second;
    const double plr = lr * (lr_scale ? (*lr_scale)[k] : 1.0);
    float* pp = p.data<float>();
    const Tensor g = p.grad();
    const float b1 = cfg_.beta1, b2 = cfg_.beta2, decay = 1.0 - plr * cfg_.weight_decay;
    const float step_size = plr / bc1, inv_sqrt_bc2 = 1.0 / std::sqrt(bc2), eps = cfg_.eps;
    if (!g.defined()) {  // unused this step (e.g. an expert that got no token): decay only
      for (int64_t i = 0; i < p.numel(); ++i) pp[i] *= decay;
      continue;
    }
    const float* gp = g.data<float>();
    float* mp = m_[k].data<float>();
    float* vp = v_[k].data<float>();
    const float cc = static_cast<float>(clip_coef);
    parallel_for(p.numel(), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const float gi = gp[i] * cc;
        mp[i] = b1 * mp[i] + (1 - b1) * gi;
        vp[i] = b2 * vp[i] + (1 - b2) * gi * gi;
        pp[i] = pp[i] * decay - step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + eps);
      }
    }, 1 << 15);
  }
  return norm;
}

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
  if (warmup_steps > 0 && step < warmup_steps)
    return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 0) return peak_lr;
  const double frac = static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps);
  return peak_lr * std::max(0.0, 1.0 - frac);
}

}  // namespace moe
