// adamw.h — Adam with decoupled weight decay, and the learning-rate schedule (SPEC §5); used by
// pretraining (src/train) and fine-tuning (src/finetune).
//
// Per parameter p with gradient g, at step t (1-based), learning rate lr:
//   p <- p - lr * wd * p                        (decoupled decay, applied to all parameters)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// with the paper's b1 = 0.9, b2 = 0.98, eps = 1e-8, wd = 0.01, as fairseq's Adam does it.
// Optional clipping rescales all gradients so their global L2 norm is at most `clip`.
//
// On the GPU the whole update is one kernel launch over every parameter (a table of the
// tensors' pointers is passed by value), after a two-pass, fixed-order reduction of the squared
// gradients (the global norm). Nothing is read back to the host: the norm stays a device scalar,
// and the decision "is this step finite?" is taken on the device too.
//
// Non-finite steps: if the gradient norm, or the optional `guard` scalar (the trainer passes the
// loss), is NaN or infinite, the update is skipped — no parameter and no moment changes — and the
// step number is remembered in a sticky device flag; every later step is skipped as well. The
// caller reads the flag (first_nonfinite_step) when it logs or before it saves, and stops. So a
// poisoned step can never reach a checkpoint, and the GPU never waits for the host to decide.
//
// Schedule: linear warmup from 0 to the peak lr over `warmup_steps`, then linear decay to 0 at
// `total_steps` (SPEC §5; the paper warms up over 375M tokens).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/dispatch.h"
#include "core/tensor.h"
#include "nn/params.h"

namespace moe {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-8, weight_decay = 0.01;
  double clip_grad = 0.0;  // 0 = no clipping (the paper's default)
};

struct AdamWTensor;  // one parameter's pointers for the update kernels (below)

class AdamW {
 public:
  AdamW(const ParamRegistry& params, const AdamWConfig& cfg);
  // One update with learning rate `lr`. Returns the global gradient norm before clipping, a ()
  // f32 tensor on the parameters' device. A parameter whose gradient is undefined (unused this
  // step) is skipped but still decays. `lr_scale` (optional, same order as the registry)
  // multiplies each parameter's lr. `guard` (optional () f32 on the device): skip the update when
  // it is not finite (see the file comment).
  Tensor step(double lr, const std::vector<double>* lr_scale = nullptr,
              const Tensor& guard = Tensor());
  int64_t steps_taken() const { return t_; }
  // Expert parallelism (SPEC §4; notes/distributed.md): the parameters with sharded[k] set are
  // held in slices, one per rank, so the global gradient norm needs every rank's share of their
  // squares. `sum_over_ranks` adds a (world) f32 tensor over the ranks, in place, on its device
  // (a transport's all-reduce). Each rank puts the norm of its slices in its own entry of a
  // zeroed (world) tensor, the sum gathers all of them exactly (adding zeros), and the norm
  // kernel then gives sqrt(shared^2 + sum over ranks of sliced^2) — the same on every rank, so
  // clipping and the non-finite skip agree everywhere — without reading anything back.
  void set_sharded(std::vector<bool> sharded, int rank, int world,
                   std::function<void(Tensor&)> sum_over_ranks);
  // The first step whose update was skipped as non-finite, 0 if none (reads the device flag).
  int64_t first_nonfinite_step() const;

  // Moments by parameter name, for checkpoints ("adam_m/<name>", "adam_v/<name>").
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  void load_state(int64_t t, const std::vector<std::pair<std::string, Tensor>>& tensors);

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<Tensor> m_, v_;  // same shapes as the parameters
  AdamWConfig cfg_;
  int64_t t_ = 0;
  void sharded_grad_norm(Tensor& norm, const std::vector<AdamWTensor>& table) const;
  std::vector<bool> sharded_;                   // empty: nothing sharded
  int rank_ = 0, world_ = 1;
  std::function<void(Tensor&)> sum_over_ranks_;
  Tensor bad_step_;  // () i32 on the parameters' device: first non-finite step, 0 = none
};

// Learning rate at (0-based) step `step`: linear warmup then linear decay to 0 (SPEC §5).
double lr_at(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak_lr);

// ---- the update as raw kernels, CPU and CUDA twins ----------------------------------------------
// One parameter tensor of the update (p, m, v of n floats; g null when it has no gradient).
struct AdamWTensor {
  float* p = nullptr;
  const float* g = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t n = 0;
  float decay = 1.0f;      // 1 - lr * weight_decay, this tensor's lr (lr * its lr_scale)
  float step_size = 0.0f;  // lr / (1 - b1^t)
};
// The hyper-parameters of one step shared by every tensor.
struct AdamWStepArgs {
  float beta1 = 0, beta2 = 0, eps = 0, clip = 0;  // clip 0 = none
  float inv_sqrt_bc2 = 1;                          // 1 / sqrt(1 - b2^t)
  int32_t step = 0;                                // t, recorded in bad_step if skipped
};

// norm (1) = sqrt(sum of g^2 over every tensor with a gradient), fixed order.
void adamw_grad_norm(float* norm, const AdamWTensor* ts, int64_t count);
// The update of every tensor, unless *norm or *guard (may be null) is not finite or *bad_step is
// already set; then *bad_step = step if it was 0, and nothing else changes.
void adamw_update(const AdamWTensor* ts, int64_t count, AdamWStepArgs args, const float* norm,
                  const float* guard, int32_t* bad_step);

MOE_CUDA_BEGIN
void adamw_grad_norm_cuda(float* norm, const AdamWTensor* ts, int64_t count) MOE_CUDA_STUB
void adamw_update_cuda(const AdamWTensor* ts, int64_t count, AdamWStepArgs args,
                       const float* norm, const float* guard, int32_t* bad_step) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
