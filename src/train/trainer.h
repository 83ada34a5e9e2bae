// trainer.h — the pretraining loop (SPEC §5): batches -> loss -> backward -> AdamW, with logging,
// validation, compute accounting, atomic checkpoints, exact resume, Ctrl-C/SIGTERM and NaN
// handling, and the run folder's rules (notes/design.md "Hardening": a lock, no silent
// replacement, checked writes).
//
// What a checkpoint holds (notes/checkpoint-format.md): the model configuration and tokenizer
// fingerprint (checked on resume), every parameter, both AdamW moments and the step count, the
// dropout RNG state and the data cursor. Restoring all of them is what makes a resumed run
// continue the *same* loss curve, bit for bit on the CPU: nothing else carries state between steps.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "dist/grad_sync.h"
#include "dist/transport.h"
#include "io/checkpoint.h"
#include "io/run_dir.h"
#include "nn/gpt.h"
#include "optim/adamw.h"
#include "train/batcher.h"
#include "train/data_setup.h"
#include "train/moe_report.h"
#include "train/resume_settings.h"

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
  bool overwrite = false;     // a fresh run may replace out_dir's checkpoint (else refused)
  double max_minutes = 0;     // stop (and save) after this much wall time; 0 = no limit
  bool quiet = false;         // no progress lines (tests)
  // MoE training (SPEC §3 step 10, §4)
  double moe_loss_weight = 0.01;          // loss = NLL + w * sum over MoE layers of l_aux
  std::string expert_scaling = "gradient";  // "gradient" (fairseq) | "lr" (seed summary)
  // Ranks (SPEC §4, notes/distributed.md): under mpirun every rank builds a Trainer with the same
  // config; batch_size is the global batch, each rank takes its B/W rows. `distributed = false`
  // makes this Trainer a one-rank run whatever the launcher (tests compare the two).
  std::string transport = "auto";  // auto | host | cuda-ipc | mpi-cuda
  bool distributed = true;
};

// What one step produced, as () tensors on the model's device: reading them (item()) waits for
// the GPU, so the loop reads them only at logging steps (notes/design.md: the step stays on the
// device).
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
  // CHECK-fails, writing nothing, when a parameter or AdamW moment is not finite.
  void save_checkpoint_to(const std::string& path);

  // The whole run: returns the process exit code (0 done, 3 non-finite loss or state, and for a
  // stop request 128 + the signal: 130 SIGINT, 143 SIGTERM; io/run_dir.h StopSignals).
  int run();

  int64_t step() const { return step_; }
  const std::string& checkpoint_path() const { return ckpt_path_; }
  const std::string& log_path() const { return log_path_; }
  GPT& model() { return *model_; }
  const TrainData& data() const { return data_; }
  // The first parameter or optimizer state tensor that holds a NaN or an infinity ("" if none):
  // one reduction per tensor on the device and a single read (the names only on failure).
  std::string first_nonfinite_state() const;

 private:
  void check_checkpoint_meta(const Checkpoint& ck, const std::string& path) const;
  void load_checkpoint_from(const Checkpoint& ck, const std::string& path);
  void write_checkpoint(const std::string& path) const;
  std::string sample_text();                  // a short generated sample for the log
  bool stop_if_nonfinite(int* code) const;    // reads the optimizer's flag (a device sync)
  bool stop_if_state_nonfinite(int* code);    // before a save: parameters and moments finite?
  std::string kept_checkpoint_note() const;   // what a stop leaves behind, truthfully
  void start_or_trim_log();
  void write_pictures(bool with_moe) const;   // loss.svg, and the MoE pictures if asked
  std::string progress_json(const StepResult& s, double loss, double elapsed, double tps) const;
  void log_step(const StepResult& s, double loss, bool eval_now, double elapsed,
                int64_t first_step);
  void log_line(const std::string& json) const;
  void say_line(const std::string& s) const;  // progress output (silent when quiet)
  void say_config() const;                    // data and model summary at start
  std::vector<std::pair<std::string, std::string>> run_meta() const;   // must match on resume
  std::vector<std::pair<std::string, std::string>> data_meta() const;  // train.data, ... (eval)
  ScheduleSettings schedule() const;  // this run's lr, steps, warmup, seed, batch size

  TrainConfig cfg_;
  std::unique_ptr<RunDirLock> lock_;  // held for the Trainer's life: one run per out_dir
  TrainData data_;
  std::unique_ptr<GPT> model_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<TrainBatcher> batcher_;
  // Ranks: this rank and W; the exchange of tensors; the gradient averaging after backward.
  int rank_ = 0, world_ = 1;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<GradSync> grad_sync_;
  bool root() const { return rank_ == 0; }
  bool any_rank(bool v) const;
  void check_same_settings_on_every_rank() const;
  // The per-step time breakdown of a multi-rank run (train_loop.cpp), from the second step on,
  // measured over the windows between log and checkpoint points.
  void close_comm_window(double now);
  void open_comm_window(double now);
  void say_comm_breakdown() const;
  CommStats step_comm_;              // summed over the closed windows
  double step_seconds_ = 0;
  int64_t comm_steps_ = 0;
  CommStats comm_mark_;              // where the open window started
  double comm_mark_time_ = 0;
  int64_t comm_mark_step_ = -1;      // -1: no window open yet (the first step is left out)
  CounterRng dropout_rng_;  // dropout and gate noise: Philox stream (seed, offset), saved
  int64_t step_ = 0, warmup_steps_ = 0;
  double tokens_seen_ = 0;
  std::string ckpt_path_, log_path_;
  int64_t last_saved_step_ = -1;   // step of the last checkpoint this run wrote, -1 = none
  int64_t resumed_step_ = -1;      // step of the checkpoint this run resumed from, -1 = none
  std::vector<double> lr_scale_;   // per parameter (SPEC §4 "lr" expert scaling), else all 1
  double expert_grad_scale_ = 1.0; // SPEC §4 "gradient" scaling: sqrt(world size)
  RoutingHistory routing_;
};

}  // namespace moe
