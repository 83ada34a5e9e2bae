// classifier.h — the pretrained GPT plus one linear layer: the fine-tuning model of SPEC §7.
//
//   h      = GPT.forward_hidden(ids)         (B, T, C)  after the final layer norm
//   z      = last_token(h, lengths)          (B, C)     state of the last real token per row
//   logits = z @ W^T + b                     (B, K)     W (K, C), b (K,), K = number of classes
//
// "Add one linear layer on top of the pretrained model and fine-tune all parameters" (SPEC §7).
// The head is initialised U(+-1/sqrt(C)) like every other linear layer of the model (SPEC §2,
// fairseq's default for nn.Linear), from the run's --seed.
//
// Options for MoE models (SPEC §7: "options to freeze experts or router ... are welcome"):
// freeze_matching() freezes parameters by name. MoE parameters are named
// "blocks.<i>.moe.experts.*" (expert FFNs) and "blocks.<i>.moe.gate.*" (router), so
// --freeze-experts matches ".moe.experts." and --freeze-router ".moe.gate.". A frozen parameter
// stops requiring grad (backward skips it and it leaves the clipping norm) and gets lr scale 0
// (AdamW then neither moves nor decays it). A dense model has no such names: the flags are
// accepted and freeze nothing, and the program says so.
//
// Ranks (SPEC §4; notes/finetune.md "Under mpirun"): with an ExpertParallel of W > 1 ranks the
// GPT holds this rank's experts only (gpt_from_checkpoint slices the checkpoint's full tensors),
// the head is replicated (the same draw on every rank), and save() is collective: every rank
// gathers the expert slices, rank 0 alone writes the file, so a checkpoint written by W ranks
// holds the full experts and loads on any W'. forward() accepts dummy rows of length 0 (the
// filler of a short batch split over ranks): the MoE gates route them nowhere and their logits
// are meaningless (the caller drops them).
//
// Devices: the GPT and the head are built on one device (the GPT from the checkpoint's CPU
// tensors; the head drawn on the CPU from the seed, then moved, so a seed gives the same head on
// both devices). save() works from either device: the checkpoint writer copies device tensors to
// the CPU, so a checkpoint written from the GPU loads on the CPU and the other way round.
//
// Checkpoints. A fine-tuned checkpoint is a pretraining checkpoint (config, "param/<name>",
// tokenizer) plus "head/weight", "head/bias" and meta "finetune.task", "finetune.num-classes",
// "finetune.labels", so eval can read it as a plain GPT and finetune can continue from it. Loading
// a fine-tuned checkpoint for a task with another number of classes is an error (the head cannot
// be reused); use the pretraining checkpoint instead.
// What it leaves out: a hidden layer / dropout in the head, pooling over positions.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"
#include "data/bpe.h"
#include "finetune/task_data.h"
#include "io/checkpoint.h"
#include "nn/gpt.h"

namespace moe {

class SequenceClassifier {
 public:
  // Build the GPT the checkpoint describes with its parameters, with dropout `dropout` (the
  // fine-tuning value, not the pretraining one), and a head for `task`: loaded from a fine-tuned
  // checkpoint of the same number of classes, else freshly initialised from `seed`. Everything
  // (GPT and head) lives on `device`; the checkpoint may come from either device.
  // `ep`: this rank's share of the experts (one rank by default).
  SequenceClassifier(const Checkpoint& ck, const TaskInfo& task, double dropout, uint64_t seed,
                     Device device = cpu(), const ExpertParallel& ep = {});

  // ids (B, L) i32 right-padded (any device: moved to the model's), lengths (B,) i32 on the host
  // (read there to find each row's last token, finetune/last_token.h)  ->  logits (B, K) on the
  // model's device. L <= the model's T. A row of length 0 is a dummy row (its logits are junk).
  Tensor forward(const Tensor& ids, const Tensor& lengths, bool training, CounterRng& rng);
  // The MoE load-balancing loss of the last forward (undefined for a dense model).
  const Tensor& aux_loss() const { return gpt_->aux_loss(); }

  // Every trainable tensor: the GPT's (same names as in pretraining) + "head.weight", "head.bias".
  ParamRegistry& params() { return params_; }
  GPT& gpt() { return *gpt_; }
  Device device() const { return gpt_->device(); }
  const BpeTokenizer& tokenizer() const { return tok_; }
  const TaskInfo& task() const { return task_; }
  int context() const { return gpt_->config().seq_len; }
  // Scalars of the whole classifier, every rank's experts counted (params().count() is this
  // rank's).
  int64_t param_count_all_ranks() const;
  bool head_from_checkpoint() const { return head_from_checkpoint_; }

  // Write a fine-tuned checkpoint (atomic: io/checkpoint.h); `extra` meta goes in as given.
  // Collective under expert parallelism: every rank calls it, rank 0 writes.
  void save(const std::string& path,
            const std::vector<std::pair<std::string, std::string>>& extra) const;

 private:
  void load_or_init_head(const Checkpoint& ck, uint64_t seed);

  TaskInfo task_;
  BpeTokenizer tok_;
  std::unique_ptr<GPT> gpt_;
  Tensor head_w_, head_b_;  // (K, C), (K,) on the model's device
  ParamRegistry params_;
  bool head_from_checkpoint_ = false;
  std::vector<std::pair<std::string, std::string>> pretrain_meta_;  // carried into saves
};

// Freeze every parameter whose name contains one of `patterns` (see the file comment): it stops
// requiring grad and (*lr_scale)[k] = 0 (lr_scale has one entry per parameter, registry order).
// Returns the names frozen.
std::vector<std::string> freeze_matching(ParamRegistry& params,
                                         const std::vector<std::string>& patterns,
                                         std::vector<double>* lr_scale);

}  // namespace moe
