// trainer.h — the pretraining loop (SPEC §5): batches -> loss -> backward -> AdamW, with logging,
// validation, compute accounting, atomic checkpoints, exact resume, Ctrl-C and NaN handling.
//
// What a checkpoint holds (notes/checkpoint-format.md): the model configuration and tokenizer
// fingerprint (checked on resume), every parameter, both AdamW moments and the step count, the
// dropout RNG state and the data cursor. Restoring all of them is what makes a resumed run
// continue the *same* loss curve, bit for bit on the CPU: nothing else carries state between steps.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "train/batcher.h"
#include "train/data_setup.h"
#include "train/moe_report.h"

namespace moe {

struct TrainConfig {
  Device device = cpu();      // where the model, optimizer state and batches live
  GPTConfig model;            // vocab_size is taken from the tokenizer
  DataConfig data;
  AdamWConfig adam;
  int batch_size = 16;        // B sequences of T tokens per step
  int64_t steps = 300;        // total optimizer steps of the schedule
  double lr = 2e-3;           // peak learning rate
  double warmup = 0.05;       // warmup length as a fraction of `steps`
  uint64_t seed = 1;          // model init, dropout and data order
  std::string out_dir = "runs/default";
  int log_every = 10, eval_every = 100, eval_batches = 8, ckpt_every = 200;
  std::string resume;         // checkpoint to continue from ("" = start fresh)
  double max_minutes = 0;     // stop (and save) after this much wall time; 0 = no limit
  bool quiet = false;         // no progress lines (tests)
  // MoE training (SPEC §3 step 10, §4)
  double moe_loss_weight = 0.01;          // loss = NLL + w * sum over MoE layers of l_aux
  std::string expert_scaling = "gradient";  // "gradient" (fairseq) | "lr" (seed summary)
};

// What one step produced, as () tensors on the model's device: reading them (item()) waits for
// the GPU, so the loop reads them only at logging steps (DESIGN.md: the step stays on the device).
struct StepResult {
  Tensor loss;       // the mean token NLL (what perplexity uses)
  Tensor aux;        // sum of l_aux over MoE layers; undefined for a dense model
  Tensor grad_norm;  // global gradient norm before clipping
  double lr = 0;
};

class Trainer {
 public:
  explicit Trainer(const TrainConfig& cfg);

  StepResult train_step();                 // one optimizer step; no host synchronisation
  double validation_loss(int max_batches); // mean NLL over the first validation blocks
  void save_checkpoint_to(const std::string& path) const;

  // The whole run: returns the process exit code (0 done, 130 interrupted, 3 non-finite loss).
  int run();

  int64_t step() const { return step_; }
  const std::string& checkpoint_path() const { return ckpt_path_; }
  GPT& model() { return *model_; }
  const TrainData& data() const { return data_; }
  static std::atomic<bool>& interrupt_flag();  // set by the SIGINT handler

 private:
  void load_checkpoint_from(const std::string& path);
  bool stop_if_nonfinite(int* code) const;    // reads the optimizer's flag (a device sync)
  std::string progress_json(const StepResult& s, double loss, double elapsed, double tps) const;
  void log_line(const std::string& json) const;
  void say_line(const std::string& s) const;  // progress output (silent when quiet)
  void say_config() const;                    // data and model summary at start
  std::vector<std::pair<std::string, std::string>> run_meta() const;

  TrainConfig cfg_;
  TrainData data_;
  std::unique_ptr<GPT> model_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<TrainBatcher> batcher_;
  CounterRng dropout_rng_;  // dropout and gate noise: Philox stream (seed, offset), saved
  int64_t step_ = 0, warmup_steps_ = 0;
  double tokens_seen_ = 0;
  std::string ckpt_path_, log_path_;
  std::vector<double> lr_scale_;   // per parameter (SPEC §4 "lr" expert scaling), else all 1
  double expert_grad_scale_ = 1.0; // SPEC §4 "gradient" scaling: sqrt(world size)
  RoutingHistory routing_;
  void write_moe_pictures() const;
};

}  // namespace moe
