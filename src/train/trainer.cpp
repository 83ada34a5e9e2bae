// trainer.cpp — the Trainer's set-up, one step, validation, checkpoints and resume (trainer.h);
// the outer loop is in train_loop.cpp.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/autograd.h"
#include "core/device.h"
#include "dist/dist.h"
#include "io/program.h"
#include "nn/gpt_io.h"
#include "ops/elementwise.h"

namespace fs = std::filesystem;

namespace moe {

static void say(const std::string& s) {
  if (is_root()) std::cout << s << std::endl;  // rank 0 alone prints (dist.h)
}

static void dist_barrier_if(bool many) {
  if (many) dist_barrier();
}

// The vocabulary a run will have, before the tokenizer exists: GPT-2's (50257 + </s>) with
// --bpe-dir, else at most --vocab-size. Only for the memory check that runs before data setup.
static int expected_vocab(const DataConfig& d) { return d.bpe_dir.empty() ? d.vocab_size : 50258; }

// Each rank draws its own dropout masks: the run's stream moved by the rank (rank 0 keeps the
// one-process stream, which is what a checkpoint records).
static uint64_t rank_stream(uint64_t stream, int rank) {
  return stream + (static_cast<uint64_t>(rank) << 32);
}

Trainer::Trainer(const TrainConfig& cfg)
    : cfg_(cfg), dropout_rng_(cfg.seed * 7919 + 17, kTrainDropoutStream) {
  CHECK(cfg.steps >= 1, "--steps must be at least 1");
  CHECK(cfg.batch_size >= 1, "--batch-size must be at least 1");
  if (cfg.distributed) {
    rank_ = dist().rank;
    world_ = dist().world;
  }
  CHECK(cfg.batch_size % world_ == 0, "--batch-size ", cfg.batch_size, " is the global batch; "
        "it must divide evenly over the ", world_, " ranks. HINT: use a multiple of ", world_);
  dropout_rng_.stream = rank_stream(dropout_rng_.stream, rank_);
  // The run folder first, before any slow work: usable, ours alone, nothing replaced silently.
  // Rank 0 alone owns it (an error there ends every rank, io/program.cpp).
  ckpt_path_ = (fs::path(cfg.out_dir) / "checkpoint.bin").string();
  log_path_ = (fs::path(cfg.out_dir) / "log.jsonl").string();
  if (root()) {
    check_out_dir(cfg.out_dir);
    lock_ = std::make_unique<RunDirLock>(cfg.out_dir, "train");
    refuse_to_replace(ckpt_path_, !cfg.resume.empty(), cfg.overwrite);
  }
  const std::string lower = str_cat("lower --batch-size (now ", cfg.batch_size,
                                    ") or --seq-len (now ", cfg.model.seq_len,
                                    "), or train a smaller --model");
  GPTConfig guess = cfg.model;
  guess.vocab_size = expected_vocab(cfg.data);
  check_model_fits(guess, cfg.batch_size / world_, guess.seq_len, cfg.device, true, lower);
  // A checkpoint to resume from is read and its model meta checked before the data is prepared:
  // a wrong file fails in a second, not after tokenizing a corpus.
  Checkpoint ck;
  if (!cfg.resume.empty()) {
    ck = load_checkpoint(cfg.resume);
    check_checkpoint_meta(ck, cfg.resume);
  }
  if (world_ > 1) check_same_settings_on_every_rank();
  LogFn log = cfg.quiet || !root() ? LogFn() : LogFn(say);
  cfg_.data.seq_len = cfg.model.seq_len;
  cfg_.data.seed = cfg.seed;
  // Rank 0 prepares the data first (it may write the token cache); the others then read it.
  if (!root()) dist_barrier_if(world_ > 1);
  data_ = prepare_data(cfg_.data, log);
  if (root()) dist_barrier_if(world_ > 1);
  cfg_.model.vocab_size = data_.tokenizer.vocab_size();
  check_model_fits(cfg_.model, cfg.batch_size / world_, cfg_.model.seq_len, cfg.device, true,
                   lower);
  cuda_set_oom_hint(lower);
  if (world_ > 1 || cfg.transport != "auto") transport_ = make_transport(cfg.transport, cfg.device);
  const ExpertParallel ep{rank_, world_, transport_.get()};
  model_ = std::make_unique<GPT>(cfg_.model, cfg.seed, cfg.device, ep);
  opt_ = std::make_unique<AdamW>(model_->params(), cfg.adam);
  batcher_ = std::make_unique<TrainBatcher>(*data_.dataset, cfg.device);
  // SPEC §4 expert scaling (notes/distributed.md "Expert gradient scaling for any W"). An expert's
  // gradient reaches its owner summed over the W ranks' losses, W times the gradient of the mean
  // loss. "gradient" (fairseq) keeps sqrt(W) times the exact gradient: the sum times 1/sqrt(W).
  // "lr" keeps the exact gradient (the sum times 1/W) and lowers the experts' learning rate by
  // 1/sqrt(E). On one rank both factors are 1. Adam is nearly invariant to a constant gradient
  // scale, so only "lr" changes the optimisation on one rank (notes/moe-training.md).
  CHECK(cfg.expert_scaling == "gradient" || cfg.expert_scaling == "lr",
        "--moe-expert-scaling must be gradient or lr, got '", cfg.expert_scaling, "'");
  expert_grad_scale_ = cfg.expert_scaling == "gradient" ? 1.0 / std::sqrt(double(world_))
                                                        : 1.0 / double(world_);
  std::vector<bool> sharded;
  for (const auto& [name, t] : model_->params().all()) {
    const bool expert = GPT::is_expert_param(name);
    sharded.push_back(expert && world_ > 1);
    lr_scale_.push_back(expert && cfg.expert_scaling == "lr"
                            ? 1.0 / std::sqrt(static_cast<double>(cfg_.model.moe_experts))
                            : 1.0);
  }
  if (world_ > 1) {
    grad_sync_ = std::make_unique<GradSync>(model_->params().all(), *transport_, world_, sharded,
                                            expert_grad_scale_);
    if (cfg_.model.is_moe())
      opt_->set_sharded(sharded, rank_, world_, [this](Tensor& t) { transport_->all_reduce(t, 1.0); });
  }
  warmup_steps_ = warmup_steps_of(schedule());
  if (!cfg.resume.empty()) load_checkpoint_from(ck, cfg.resume);
}

// Ranks started with different flags (an MPMD launch, a hand-edited config on one host) would
// exchange buffers of different shapes: refuse before the first exchange, naming the setting.
void Trainer::check_same_settings_on_every_rank() const {
  std::vector<std::pair<std::string, std::string>> mine;
  for (const auto& kv : cfg_.model.to_meta())
    if (kv.first != "vocab-size") mine.push_back(kv);  // set later, by the tokenizer
  for (const auto& kv : schedule_meta(schedule())) mine.push_back(kv);
  mine.push_back({"data", cfg_.data.data});
  mine.push_back({"val-data", cfg_.data.val_data});
  mine.push_back({"bpe-dir", cfg_.data.bpe_dir});
  mine.push_back({"vocab-size", std::to_string(cfg_.data.vocab_size)});
  mine.push_back({"moe-expert-scaling", cfg_.expert_scaling});
  mine.push_back({"moe-loss-weight", str_cat(cfg_.moe_loss_weight)});
  mine.push_back({"transport", cfg_.transport});
  mine.push_back({"resume", cfg_.resume});
  std::string flat;
  for (const auto& [k, v] : mine) flat += k + '\0' + v + '\0';
  const std::string root_flat = dist_broadcast(flat);
  if (root_flat == flat) return;
  std::vector<std::string> parts;
  std::string cur;
  for (char c : root_flat) {
    if (c != '\0') { cur += c; continue; }
    parts.push_back(cur);
    cur.clear();
  }
  for (size_t i = 0; i + 1 < parts.size(); i += 2)
    for (const auto& [k, v] : mine)
      CHECK(k != parts[i] || v == parts[i + 1], "this rank was started with ", k, "=", v,
            " but rank 0 with ", k, "=", parts[i + 1], ". HINT: every rank of a run must get "
            "the same flags (one mpirun command line, or the same --config file)");
  CHECK(false, "this rank was started with other settings than rank 0. HINT: every rank of a "
        "run must get the same flags");
}

bool Trainer::any_rank(bool v) const {
  return world_ > 1 ? dist_max(v ? 1.0 : 0.0) > 0 : v;
}

ScheduleSettings Trainer::schedule() const {
  ScheduleSettings s;
  s.lr = cfg_.lr;
  s.steps = cfg_.steps;
  s.warmup = cfg_.warmup;
  s.seed = cfg_.seed;
  s.batch_size = cfg_.batch_size;
  return s;
}

void Trainer::say_line(const std::string& s) const {
  if (!cfg_.quiet) say(s);
}

void Trainer::say_config() const {
  say(str_cat("data: ", data_.description));
  say(str_cat("model: L=", cfg_.model.n_layer, " C=", cfg_.model.d_model, " NH=", cfg_.model.n_head,
              " T=", cfg_.model.seq_len, " V=", cfg_.model.vocab_size, ", ",
              model_->param_count_all_ranks(), " parameters; ",
              paper_flops_per_token(cfg_.model), " training FLOPs per token (paper count)"));
  if (cfg_.model.is_moe())
    say(str_cat("MoE: E=", cfg_.model.moe_experts, " experts in layers every ", cfg_.model.moe_freq,
                " (", cfg_.model.n_moe_layers(), " MoE layers), top-2 policy ", cfg_.model.top2_policy,
                ", capacity factor ", cfg_.model.capacity_factor, ", aux loss weight ",
                cfg_.moe_loss_weight, ", expert scaling ", cfg_.expert_scaling));
  if (world_ > 1)
    say(str_cat("ranks: ", world_, " (batch ", cfg_.batch_size / world_, " of the global ",
                cfg_.batch_size, " each", cfg_.model.is_moe() ? str_cat(", ", cfg_.model.moe_experts /
                world_, " experts per MoE layer each") : std::string(), "), transport ",
                transport_->name()));
  if (step_ > 0) say(str_cat("resuming from ", cfg_.resume, " at step ", step_));
}

// ---------------------------------------------------------------------------------------------
// one step

// Nothing here reads a value back from the device: the batch is gathered there, the losses and
// the gradient norm stay there, and a non-finite step is caught there by the optimizer (it skips
// the update and raises a flag the loop reads when it logs or saves).
StepResult Trainer::train_step() {
  const int B = cfg_.batch_size, T = cfg_.model.seq_len;
  Tensor x, y;                                                   // (B, T) i32 on the device
  batcher_->next(B, &x, &y);
  if (world_ > 1) {  // this rank's rows of the global batch: (B/W, T)
    const int b = B / world_;
    x = x.slice_view(0, rank_ * b, (rank_ + 1) * b).clone();
    y = y.slice_view(0, rank_ * b, (rank_ + 1) * b).clone();
  }
  StepResult s;
  s.lr = lr_at(step_, cfg_.steps, warmup_steps_, cfg_.lr);
  Tensor nll = model_->forward_loss(x, y, true, dropout_rng_);  // ()
  Tensor loss = nll;
  if (model_->aux_loss().defined()) {
    s.aux = model_->aux_loss().detach();
    loss = add(loss, scale(model_->aux_loss(), cfg_.moe_loss_weight));
  }
  s.loss = nll.detach();
  if (grad_sync_) {
    grad_sync_->backward(loss);  // and average the shared gradients (overlapped), scale the experts'
  } else {
    backward(loss);
  }
  if (!grad_sync_ && expert_grad_scale_ != 1.0)
    for (auto& [name, p] : model_->params().all())
      if (GPT::is_expert_param(name) && p.grad().defined()) {
        Tensor g = p.grad();
        scale_inplace(g, expert_grad_scale_);
      }
  s.grad_norm = opt_->step(s.lr, &lr_scale_, loss.detach());
  model_->params().zero_grad();
  ++step_;
  tokens_seen_ += static_cast<double>(B) * T;
  return s;
}

double Trainer::validation_loss(int max_batches) {
  NoGradGuard ng;
  const int B = cfg_.batch_size, T = cfg_.model.seq_len;
  const BlockDataset& ds = *data_.dataset;
  Tensor x = Tensor::empty({B, T}, DType::I32), y = Tensor::empty({B, T}, DType::I32);  // (B, T)
  CounterRng unused;
  Tensor total = Tensor::zeros({}, DType::F32, cfg_.device);  // summed on the device
  int64_t blocks = 0;
  for (int b = 0; b < max_batches && blocks < ds.num_val_blocks(); ++b) {  // NLL only, no aux
    int filled = 0;
    ds.val_batch(blocks, B, x.data<int32_t>(), y.data<int32_t>(), &filled);
    if (filled == 0) break;
    Tensor xs = x.slice_view(0, 0, filled), ys = y.slice_view(0, 0, filled);
    add_inplace(total, scale(model_->forward_loss(xs, ys, false, unused), filled));
    blocks += filled;
  }
  return blocks > 0 ? total.item() / static_cast<double>(blocks) : NAN;  // one read at the end
}

// ---------------------------------------------------------------------------------------------
// checkpoints

std::vector<std::pair<std::string, std::string>> Trainer::run_meta() const {
  auto meta = cfg_.model.to_meta();
  meta.push_back({"tokenizer", data_.tokenizer.fingerprint()});
  return meta;
}

// What eval needs to measure honest in-domain perplexity on the data this model was trained on:
// where the text was (absolute, so another working folder finds it) and how validation was cut.
std::vector<std::pair<std::string, std::string>> Trainer::data_meta() const {
  auto absolute = [](const std::string& p) {
    std::error_code ec;
    return p.empty() ? p : fs::absolute(p, ec).lexically_normal().string();
  };
  char fraction[40];
  std::snprintf(fraction, sizeof fraction, "%.17g", cfg_.data.val_fraction);
  return {{"train.data", absolute(cfg_.data.data)},
          {"train.val-data", absolute(cfg_.data.val_data)},
          {"train.val-fraction", cfg_.data.val_data.empty() ? fraction : ""},
          {"train.cache-dir", absolute(cfg_.data.cache_dir)}};
}

std::string Trainer::first_nonfinite_state() const {
  NoGradGuard ng;
  std::vector<std::pair<std::string, Tensor>> all;
  for (const auto& [name, t] : model_->params().all()) all.emplace_back("param/" + name, t);
  for (const auto& nt : opt_->state_tensors()) all.push_back(nt);
  // sum(0 * t) is exactly 0 when every value of t is finite and NaN otherwise (0 * inf = NaN), so
  // one scalar summed on the device answers for every tensor with a single read.
  Tensor acc = Tensor::zeros({}, DType::F32, cfg_.device);
  for (const auto& nt : all) add_inplace(acc, sum(scale(nt.second, 0.0)));
  // Every rank must take the same decision (each holds other experts).
  if (!any_rank(!std::isfinite(acc.item()))) return "";
  if (std::isfinite(acc.item())) return "(the experts of another rank)";
  for (const auto& nt : all)  // the rare failure: find which one, tensor by tensor
    if (!std::isfinite(sum(scale(nt.second, 0.0)).item())) return nt.first;
  return "(unknown)";
}

// Every rank calls it (the expert slices are gathered onto rank 0); rank 0 alone writes the file.
void Trainer::write_checkpoint(const std::string& path) const {
  Checkpoint ck;
  add_gpt_to_checkpoint(ck, *model_);
  const ExpertParallel& ep = model_->expert_parallel();
  for (const auto& [name, t] : opt_->state_tensors()) {
    const Tensor full = gather_if_expert(name, t, ep);
    if (full.defined()) ck.add_tensor(name, full);
  }
  if (!root()) return;
  ck.set_meta("format", "moe-gpt pretraining checkpoint");
  for (const auto& [k, v] : run_meta()) ck.set_meta(k, v);
  for (const auto& [k, v] : schedule_meta(schedule())) ck.set_meta(k, v);
  for (const auto& [k, v] : data_meta()) ck.set_meta(k, v);
  ck.set_meta("step", std::to_string(step_));
  ck.set_meta("tokens", str_cat(static_cast<int64_t>(tokens_seen_)));
  ck.set_meta("dropout-rng", str_cat(dropout_rng_.seed, " ", dropout_rng_.stream, " ",
                                     dropout_rng_.offset));
  ck.set_meta("data-epoch", std::to_string(data_.dataset->cursor().epoch));
  ck.set_meta("data-pos", std::to_string(data_.dataset->cursor().pos));
  ck.set_meta("compute-paper-flops", str_cat(paper_flops_per_token(cfg_.model) * tokens_seen_));
  ck.set_meta("ranks", std::to_string(world_));  // informative: any number of ranks can load it
  add_tokenizer_to_checkpoint(ck, data_.tokenizer);
  save_checkpoint(path, ck);
}

void Trainer::save_checkpoint_to(const std::string& path) {
  const std::string bad = first_nonfinite_state();
  CHECK(bad.empty(), "not saving ", path, ": ", bad, " holds a value that is not finite at step ",
        step_, ". HINT: lower --lr or --moe-loss-weight, or set --clip-grad 1.0");
  write_checkpoint(path);
}

// The flag a mismatching meta key is set by, for check_meta_matches' message.
static std::string flag_for_key(const std::string& key) {
  if (key == "moe-capacity-factor") return "--capacity-factor";
  if (key == "tokenizer" || key == "vocab-size")
    return "set by the tokenizer: --bpe-dir, --vocab-size and --data";
  return "--" + key;  // n-layer, d-model, n-head, seq-len, moe-experts, moe-freq, moe-top2-policy
}

// The model keys (the tokenizer is compared once it exists, in load_checkpoint_from).
void Trainer::check_checkpoint_meta(const Checkpoint& ck, const std::string& path) const {
  auto expected = cfg_.model.to_meta();
  expected.erase(std::remove_if(expected.begin(), expected.end(),
                                [](const auto& kv) { return kv.first == "vocab-size"; }),
                 expected.end());
  check_meta_matches(ck, path, expected, flag_for_key);
}

void Trainer::load_checkpoint_from(const Checkpoint& ck_in, const std::string& path) {
  check_meta_matches(ck_in, path, run_meta(), flag_for_key);
  Checkpoint ck = ck_in;  // full expert tensors -> this rank's slices (any W' that divides E)
  if (cfg_.model.is_moe()) slice_experts_for_rank(ck, cfg_.model.moe_experts,
                                                  model_->expert_parallel());
  const int64_t step = parse_meta_int(ck.get_meta("step"), "step", 0, INT64_MAX / 2, path);
  CHECK(step <= cfg_.steps, "checkpoint ", path, " is at step ", step, " but --steps is ",
        cfg_.steps, ". HINT: pass a larger --steps to train further");
  for (const std::string& line : compare_resume_settings(ck.meta, path, step, schedule()))
    say_line(line);
  load_gpt_params(*model_, ck);
  step_ = step;
  resumed_step_ = step;
  tokens_seen_ = static_cast<double>(
      parse_meta_int(ck.get_meta("tokens"), "tokens", 0, INT64_MAX / 2, path));
  opt_->load_state(step_, ck.tensors);
  CHECK(ck.has_meta("dropout-rng"), "checkpoint ", path, " has no dropout generator state "
        "(written by an older moe-gpt, before the counter-based generator). HINT: start a new "
        "run, or resume it with the version that wrote it");
  std::istringstream in(ck.get_meta("dropout-rng"));
  in >> dropout_rng_.seed >> dropout_rng_.stream >> dropout_rng_.offset;
  CHECK(!in.fail(), "checkpoint ", path, ": malformed dropout-rng '", ck.get_meta("dropout-rng"),
        "'");
  dropout_rng_.stream = rank_stream(dropout_rng_.stream, rank_);
  const int64_t epoch = parse_meta_int(ck.get_meta("data-epoch"), "data-epoch", 0, INT64_MAX / 2,
                                       path);
  const int64_t pos = parse_meta_int(ck.get_meta("data-pos"), "data-pos", 0, INT64_MAX / 2, path);
  data_.dataset->set_cursor({epoch, pos});
}

}  // namespace moe
