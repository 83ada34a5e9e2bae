// trainer.cpp — the training loop, checkpoints and resume (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/autograd.h"
#include "core/device.h"
#include "io/checkpoint.h"
#include "ops/elementwise.h"
#include "nn/gpt_io.h"

namespace fs = std::filesystem;

namespace moe {

std::atomic<bool>& Trainer::interrupt_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

static void say(const std::string& s) { std::cout << s << std::endl; }

Trainer::Trainer(const TrainConfig& cfg)
    : cfg_(cfg), dropout_rng_(cfg.seed * 7919 + 17, kTrainDropoutStream) {
  CHECK(cfg.steps >= 1, "--steps must be at least 1");
  CHECK(cfg.batch_size >= 1, "--batch-size must be at least 1");
  LogFn log = cfg.quiet ? LogFn() : LogFn(say);
  cfg_.data.seq_len = cfg.model.seq_len;
  cfg_.data.seed = cfg.seed;
  data_ = prepare_data(cfg_.data, log);
  cfg_.model.vocab_size = data_.tokenizer.vocab_size();
  cuda_set_oom_hint(str_cat("lower --batch-size (now ", cfg.batch_size, ") or --seq-len (now ",
                            cfg_.model.seq_len, "), or train a smaller --model"));
  model_ = std::make_unique<GPT>(cfg_.model, cfg.seed, cfg.device);
  opt_ = std::make_unique<AdamW>(model_->params(), cfg.adam);
  batcher_ = std::make_unique<TrainBatcher>(*data_.dataset, cfg.device);
  // SPEC §4 expert scaling. Experts see ~E times fewer tokens than shared weights. fairseq scales
  // expert gradients by sqrt(W) (W = expert-parallel world size; 1 in one process, so exactly
  // the mean-loss gradient here); the seed summary instead lowers the experts' learning rate by
  // 1/sqrt(E). Adam is nearly invariant to a constant gradient scale, so only "lr" changes the
  // optimisation on one rank (notes/moe-training.md).
  CHECK(cfg.expert_scaling == "gradient" || cfg.expert_scaling == "lr",
        "--moe-expert-scaling must be gradient or lr, got '", cfg.expert_scaling, "'");
  const int world_size = 1;
  expert_grad_scale_ = std::sqrt(static_cast<double>(world_size));
  for (const auto& [name, t] : model_->params().all()) {
    const bool expert = GPT::is_expert_param(name);
    lr_scale_.push_back(expert && cfg.expert_scaling == "lr"
                            ? 1.0 / std::sqrt(static_cast<double>(cfg_.model.moe_experts))
                            : 1.0);
  }
  warmup_steps_ = static_cast<int64_t>(std::llround(cfg.warmup * static_cast<double>(cfg.steps)));
  fs::create_directories(cfg.out_dir);
  ckpt_path_ = (fs::path(cfg.out_dir) / "checkpoint.bin").string();
  log_path_ = (fs::path(cfg.out_dir) / "log.jsonl").string();
  if (!cfg.resume.empty()) load_checkpoint_from(cfg.resume);
}

void Trainer::say_line(const std::string& s) const {
  if (!cfg_.quiet) say(s);
}

void Trainer::say_config() const {
  say(str_cat("data: ", data_.description));
  say(str_cat("model: L=", cfg_.model.n_layer, " C=", cfg_.model.d_model, " NH=", cfg_.model.n_head,
              " T=", cfg_.model.seq_len, " V=", cfg_.model.vocab_size, ", ",
              model_->params().count(), " parameters; ",
              paper_flops_per_token(cfg_.model), " training FLOPs per token (paper count)"));
  if (cfg_.model.is_moe())
    say(str_cat("MoE: E=", cfg_.model.moe_experts, " experts in layers every ", cfg_.model.moe_freq,
                " (", cfg_.model.n_moe_layers(), " MoE layers), top-2 policy ", cfg_.model.top2_policy,
                ", capacity factor ", cfg_.model.capacity_factor, ", aux loss weight ",
                cfg_.moe_loss_weight, ", expert scaling ", cfg_.expert_scaling));
  if (step_ > 0) say(str_cat("resuming from ", cfg_.resume, " at step ", step_));
}

void Trainer::write_moe_pictures() const {
  if (!cfg_.model.is_moe()) return;
  const std::string a = (fs::path(cfg_.out_dir) / "moe_tokens_per_expert.svg").string();
  routing_.write_svg(a, model_->moe_layer_indices());
  std::string msg = "wrote " + a;
  if (cfg_.data.data.empty()) {
    const std::string b = (fs::path(cfg_.out_dir) / "moe_domain_routing.svg").string();
    write_domain_routing_svg(*model_, data_.tokenizer, b);
    msg += " and " + b;
  }
  say_line(msg);
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
  StepResult s;
  s.lr = lr_at(step_, cfg_.steps, warmup_steps_, cfg_.lr);
  Tensor nll = model_->forward_loss(x, y, true, dropout_rng_);  // ()
  Tensor loss = nll;
  if (model_->aux_loss().defined()) {
    s.aux = model_->aux_loss().detach();
    loss = add(loss, scale(model_->aux_loss(), cfg_.moe_loss_weight));
  }
  s.loss = nll.detach();
  backward(loss);
  if (expert_grad_scale_ != 1.0)
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
  meta.push_back({"batch-size", std::to_string(cfg_.batch_size)});
  return meta;
}

void Trainer::save_checkpoint_to(const std::string& path) const {
  Checkpoint ck;
  ck.set_meta("format", "moe-gpt pretraining checkpoint");
  for (const auto& [k, v] : run_meta()) ck.set_meta(k, v);
  ck.set_meta("step", std::to_string(step_));
  ck.set_meta("tokens", str_cat(static_cast<int64_t>(tokens_seen_)));
  ck.set_meta("dropout-rng", str_cat(dropout_rng_.seed, " ", dropout_rng_.stream, " ",
                                     dropout_rng_.offset));
  ck.set_meta("data-epoch", std::to_string(data_.dataset->cursor().epoch));
  ck.set_meta("data-pos", std::to_string(data_.dataset->cursor().pos));
  ck.set_meta("compute-paper-flops", str_cat(paper_flops_per_token(cfg_.model) * tokens_seen_));
  add_gpt_to_checkpoint(ck, *model_);
  add_tokenizer_to_checkpoint(ck, data_.tokenizer);
  for (const auto& [name, t] : opt_->state_tensors()) ck.add_tensor(name, t);
  save_checkpoint(path, ck);
}

void Trainer::load_checkpoint_from(const std::string& path) {
  Checkpoint ck = load_checkpoint(path);
  check_meta_matches(ck, path, run_meta());
  load_gpt_params(*model_, ck);
  step_ = std::stoll(ck.get_meta("step"));
  tokens_seen_ = std::stod(ck.get_meta("tokens"));
  opt_->load_state(step_, ck.tensors);
  CHECK(ck.has_meta("dropout-rng"), "checkpoint ", path, " has no dropout generator state "
        "(written by an older moe-gpt, before the counter-based generator). HINT: start a new "
        "run, or resume it with the version that wrote it");
  std::istringstream in(ck.get_meta("dropout-rng"));
  in >> dropout_rng_.seed >> dropout_rng_.stream >> dropout_rng_.offset;
  CHECK(!in.fail(), "checkpoint ", path, ": malformed dropout-rng '", ck.get_meta("dropout-rng"), "'");
  data_.dataset->set_cursor({std::stoll(ck.get_meta("data-epoch")), std::stoll(ck.get_meta("data-pos"))});
  CHECK(step_ <= cfg_.steps, "checkpoint ", path, " is at step ", step_, " but --steps is ",
        cfg_.steps, ". HINT: pass a larger --steps to train further");
}

}  // namespace moe
