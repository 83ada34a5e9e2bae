// finetuner.h — supervised fine-tuning with a linear head (SPEC §7): data -> epochs of AdamW over
// shuffled batches -> dev accuracy after every epoch -> the best checkpoint and a results file.
//
// Loss per batch: mean cross-entropy of the head's logits, plus aux_loss_weight times the MoE
// load-balancing loss (SPEC §3 step 10) when the model has one (0 drops it; dense: nothing).
// Schedule: AdamW (SPEC §5 settings from the flags) with linear warmup over the first
// `warmup` fraction of all steps and linear decay to 0 at the last step (optim/adamw.h lr_at).
// Determinism: the head init, the epoch shuffles and the dropout masks all come from --seed, and
// every CPU kernel is deterministic, so a seed reproduces a run bit for bit.
// Devices: the model, its head and the optimizer state live on `device` (finetune.cpp passes the
// program's --device; the default is the CPU). A training step reads nothing back: the loss is
// summed on the device and AdamW skips a non-finite step there (optim/adamw.h). The host reads the
// loss window, the gradient norm, the aux loss and the optimizer's non-finite flag at --log-every
// steps and at the end of an epoch (or on a stop request); evaluation reads each batch's (B, K)
// logits.
// A non-finite step is therefore noticed up to --log-every steps late; those steps changed
// nothing (the optimizer skips every step from the bad one on), and no checkpoint is written
// after it.
//
// Outputs in out_dir: best.bin (the best dev epoch, written atomically when dev accuracy
// improves), results.json (written atomically after every epoch, see notes/finetune.md),
// finetune_log.jsonl (one line per --log-every steps and per epoch), interrupted.bin (stopped).
// Every write is checked where it happens, so a full disk stops the run at the first write that
// fails, naming the file (notes/design.md "Hardening", "Nothing lost").
// Stopping: the loops poll StopSignals (io/run_dir.h): Ctrl-C and SIGTERM (a cluster's time
// limit, `timeout`) both finish the step in flight and save. The program installs the handlers;
// tests call StopSignals::request().
// Exit codes of run(): 0 done, 3 non-finite loss or gradient (that update and later ones were
// not applied; best.bin is kept, nothing else is written), 130 (Ctrl-C) or 143 (SIGTERM): stopped,
// state saved to interrupted.bin.
// Ranks (SPEC §4; notes/finetune.md "Under mpirun"): under `mpirun -np W` every rank builds a
// Finetuner with the same config. batch_size is the global batch; every rank shuffles the same
// way and takes its rows of each batch (collect.h row_share; the last, short batch is filled with
// dummy rows), MoE layers run expert-parallel, and after backward the replicated gradients are
// averaged (GradSync; the head is replicated too) and the experts' scaled (expert_scaling, SPEC
// §4). Each rank's loss is weighted by its share of the batch's real rows, so the averaged
// gradient is the one of the global batch's mean loss. Dev batches are split the same way and the
// logits gathered on every rank, so every rank computes the same accuracy. Rank 0 alone prints
// and writes; saves are collective (the expert slices gather). Stops (signals, non-finite steps)
// and failures are agreed over the ranks before any of them acts, so no rank is left waiting in a
// collective (finetune_ranks.cpp).
// What it leaves out: gradient accumulation, early stopping, resuming an interrupted run (the
// interrupted checkpoint can be given back as --ckpt to continue from its weights).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "dist/grad_sync.h"
#include "dist/transport.h"
#include "finetune/classifier.h"
#include "finetune/encode.h"
#include "finetune/task_data.h"
#include "io/run_dir.h"
#include "optim/adamw.h"

namespace moe {

struct FinetuneConfig {
  std::string ckpt;                   // pretraining (or fine-tuned) checkpoint to start from
  FinetuneDataConfig data;
  AdamWConfig adam;
  int epochs = 3;                     // 0: only evaluate the checkpoint on dev
  int batch_size = 16;
  double lr = 1e-4, warmup = 0.06, dropout = 0.1;
  uint64_t seed = 1;
  std::string out_dir = "runs/finetune";  // finetune.cpp: <ckpt dir>/finetune-<task> by default
  bool overwrite = false;                 // --overwrite: replace an earlier run's outputs
  int log_every = 10;
  bool freeze_experts = false, freeze_router = false;
  double aux_loss_weight = 0.01;
  double eval_capacity_fraction = 0.0;  // MoE eval capacity (SPEC §3 step 2); 0 = training rule
  bool quiet = false;                   // no stdout lines, no progress bar (tests)
  Device device = cpu();                // where the model runs (finetune.cpp: --device)
  // Ranks: --transport, and the SPEC §4 expert scaling ("gradient": the owner's gradient sum
  // times 1/sqrt(W), fairseq's; "lr": times 1/W with the experts' lr times 1/sqrt(E), as train's
  // --moe-expert-scaling). `distributed = false` makes this a one-rank run whatever the launcher
  // (the tests compare the two in one mpirun).
  std::string transport = "auto";
  std::string expert_scaling = "gradient";
  bool distributed = true;
};

struct EpochResult {
  int epoch = 0;
  double train_loss = 0, dev_accuracy = 0, seconds = 0, examples_per_s = 0;
};

class Finetuner {
 public:
  explicit Finetuner(const FinetuneConfig& cfg);  // loads the checkpoint, reads and encodes data

  // One pass over the shuffled training set; returns the mean training loss (NaN if a step's
  // loss or gradient was not finite: the optimizer applied nothing from that step on, and
  // steps_done() counts only the steps before it).
  double train_epoch(int epoch);
  double evaluate();                   // dev accuracy in [0, 1]
  int run();                           // the whole run (see the file comment); exit code

  SequenceClassifier& model() { return *model_; }
  const FinetuneData& data() const { return data_; }
  const std::vector<EpochResult>& history() const { return history_; }
  double majority_baseline() const;    // dev accuracy of always predicting train's top class
  int64_t steps_done() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  const std::vector<std::string>& frozen() const { return frozen_; }
  const std::string& best_path() const { return best_path_; }
  const std::string& results_path() const { return results_path_; }
  int rank() const { return rank_; }
  int world() const { return world_; }
  // The (n_dev, K) logits of the last evaluate(), row-major in dev-file order (the same on every
  // rank: gathered).
  const std::vector<float>& dev_logits() const { return dev_logits_; }

 private:
  // --- ranks (finetune_ranks.cpp)
  bool root() const { return rank_ == 0; }
  // f() on every rank; a failure on one becomes the same error on all (dist/collect.h).
  void on_every_rank(const std::function<void()>& f) const;
  void check_same_settings() const;  // flags, before any work
  void check_same_data() const;      // what each rank read: examples, tokenizer, checkpoint
  // The stop signal any rank has seen (collective per call; 0 = none), remembered in stop_sig_.
  int agreed_stop();
  void make_grad_sync();             // GradSync + AdamW's global norm, for W > 1
  std::string ranks_line() const;    // "ranks: W (...), transport X" for the start-up lines

  void say(const std::string& s) const;
  void log_line(const std::string& json) const;
  // The progress bar on stderr: "what [####....] done/total ex | ex/s | loss | ETA".
  void progress(const std::string& what, int64_t done, int64_t total, double loss, double elapsed,
                bool force) const;
  void write_results(bool interrupted) const;
  // interrupted.bin + results; returns the exit code for a stop by `sig` (130, 143).
  int save_interrupted(int epoch, int sig) const;
  // Reads the optimizer's non-finite flag (a wait for the device); if a step was skipped, rewinds
  // step_ to the steps really applied and returns true.
  bool stop_if_nonfinite();
  int report_nonfinite() const;           // the error message; returns 3
  std::vector<std::pair<std::string, std::string>> save_meta(int epoch, double acc) const;

  FinetuneConfig cfg_;
  int rank_ = 0, world_ = 1;
  double expert_grad_scale_ = 1.0;
  std::unique_ptr<Transport> transport_;  // before model_: the MoE layers hold a pointer to it
  FinetuneData data_;
  std::unique_ptr<SequenceClassifier> model_;
  std::unique_ptr<GradSync> grad_sync_;
  int stop_sig_ = 0;
  std::vector<float> dev_logits_;
  std::unique_ptr<AdamW> opt_;
  std::vector<double> lr_scale_;
  std::vector<std::string> frozen_;
  std::vector<EncodedExample> train_enc_, dev_enc_;
  int64_t truncated_train_ = 0, truncated_dev_ = 0;
  Rng order_rng_;            // shuffling the training examples
  CounterRng dropout_rng_;   // dropout and gate noise (core/philox.h)
  int64_t step_ = 0, total_steps_ = 0, warmup_steps_ = 0;
  std::vector<EpochResult> history_;
  int best_epoch_ = 0;
  double best_accuracy_ = -1.0;
  std::string best_path_, results_path_, log_path_;
  mutable double last_progress_s_ = -1.0;
  bool progress_tty_ = false;
};

// What the program does with --out-dir before any work (notes/design.md "Hardening"):
// check_out_dir (not empty, not a file or under one, writable), take the folder's lock (a second run there is refused), and refuse
// to replace an earlier run's best.bin or results.json unless cfg.overwrite. The lock is held
// until the returned object dies.
std::unique_ptr<RunDirLock> claim_out_dir(const FinetuneConfig& cfg);

}  // namespace moe
