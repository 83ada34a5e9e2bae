// adamw.h — Adam with decoupled weight decay, and the learning-rate schedule (SPEC §5).
//
// Per parameter p with gradient g, at step t (1-based), learning rate lr:
//   p <- p - lr * wd * p                        (decoupled decay, applied to all parameters)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// with the paper's b1 = 0.9, b2 = 0.98, eps = 1e-8, wd = 0.01, as fairseq's Adam does it.
// Optional clipping rescales all gradients so their global L2 norm is at most `clip`.
//
// Schedule: linear warmup from 0 to the peak lr over `warmup_steps`, then linear decay to 0 at
// `total_steps` (SPEC §5; the paper warms up over 375M tokens).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "nn/params.h"

namespace moe {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8, weight_decay = 0.01;
  double clip_grad = 0.0;  // 0 = no clipping (the paper's default)
};

class AdamW {
 public:
  AdamW(const ParamRegistry& params, const AdamWConfig& cfg);
  // One update with learning rate `lr`; returns the global gradient norm before clipping.
  // A parameter whose gradient is undefined (unused this step) is skipped but still decays.
  // `lr_scale` (optional, same order as the registry) multiplies each parameter's lr.
  double step(double lr, const std::vector<double>* lr_scale = nullptr);
  int64_t steps_taken() const { return t_; }

  // Moments by parameter name, for checkpoints ("adam_m/<name>", "adam_v/<name>").
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  void load_state(int64_t t, const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Tensor> m_, v_;  // same shapes as the parameters
  AdamWConfig cfg_;
  int64_t t_ = 0;
};

// Learning rate at (0-based) step `step`: linear warmup then linear decay to 0 (SPEC §5).
double lr_at(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak_lr);

}  // namespace moe
