// finetune_ranks.cpp — what a fine-tuning run on W ranks needs beyond one process (SPEC §4
// "eval and finetune under mpirun"; notes/finetune.md "Under mpirun"): the checks that every rank
// was started alike and read the same data, the agreement on stops, and the gradient exchange.
//
// Why the checks: the ranks exchange buffers whose shapes follow from the flags (batch size,
// eval capacity) and from the data (number of batches, longest row of each). A rank started with
// another --batch-size, or that read another file at the same path (another host's copy), would
// send buffers of other sizes, or stop after another number of steps, and the job would hang or
// compute garbage. Each check runs before the first exchange and ends every rank with a message
// that names the setting or the data that differs (dist/collect.h dist_check_same).
#include <sys/stat.h>

#include <cstdio>

#include "dist/collect.h"
#include "dist/dist.h"
#include "finetune/finetuner.h"

namespace moe {

namespace {

// Doubles in full (a setting of 1e-4 and one of 1.00001e-4 are different runs).
std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// FNV-1a over the token ids and labels of `v`: the same encoded examples give the same number.
uint64_t fingerprint(const std::vector<EncodedExample>& v) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](int64_t x) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(x >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  for (const EncodedExample& e : v) {
    mix(static_cast<int64_t>(e.ids.size()));
    for (int32_t id : e.ids) mix(id);
    mix(e.label);
  }
  return h;
}

std::string describe(const std::vector<EncodedExample>& v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu examples, fingerprint %016llx", v.size(),
                static_cast<unsigned long long>(fingerprint(v)));
  return buf;
}

std::string file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? std::to_string(static_cast<long long>(st.st_size))
                                        : std::string("missing");
}

}  // namespace

void Finetuner::on_every_rank(const std::function<void()>& f) const {
  if (world_ > 1) dist_agree_on_errors(f);
  else f();
}

void Finetuner::check_same_settings() const {
  const FinetuneConfig& c = cfg_;
  const FinetuneDataConfig& d = c.data;
  dist_check_same(
      {{"--ckpt", c.ckpt}, {"--task", d.task}, {"--train-file", d.train_file},
       {"--dev-file", d.dev_file}, {"--data-dir", d.data_dir},
       {"--carve-train", std::to_string(d.carve_train)},
       {"--carve-seed", std::to_string(d.carve_seed)},
       {"--limit-train", std::to_string(d.limit_train)},
       {"--limit-dev", std::to_string(d.limit_dev)}, {"--epochs", std::to_string(c.epochs)},
       {"--batch-size", std::to_string(c.batch_size)}, {"--lr", exact(c.lr)},
       {"--warmup", exact(c.warmup)}, {"--dropout", exact(c.dropout)},
       {"--seed", std::to_string(c.seed)}, {"--log-every", std::to_string(c.log_every)},
       {"--freeze-experts", c.freeze_experts ? "true" : "false"},
       {"--freeze-router", c.freeze_router ? "true" : "false"},
       {"--aux-loss-weight", exact(c.aux_loss_weight)},
       {"--eval-capacity-fraction", exact(c.eval_capacity_fraction)},
       {"--beta1", exact(c.adam.beta1)}, {"--beta2", exact(c.adam.beta2)},
       {"--adam-eps", exact(c.adam.eps)}, {"--weight-decay", exact(c.adam.weight_decay)},
       {"--clip-grad", exact(c.adam.clip_grad)}, {"--transport", c.transport},
       {"expert scaling", c.expert_scaling}, {"device kind", c.device.is_cuda() ? "cuda" : "cpu"}},
      "every rank of a run must get the same flags (one mpirun command line, or the same "
      "--config file)");
}

void Finetuner::check_same_data() const {
  const FinetuneDataConfig& d = data_.used;
  dist_check_same(
      {{"the training examples (" + (d.train_file.empty() ? "carved" : d.train_file) + ")",
        describe(train_enc_)},
       {"the dev examples (" + d.dev_file + ")", describe(dev_enc_)},
       {"the tokenizer of " + cfg_.ckpt, model_->tokenizer().fingerprint()},
       {"the size in bytes of " + cfg_.ckpt, file_size(cfg_.ckpt)}},
      "every rank must read the same files: a relative path is read from each rank's working "
      "folder, and each host reads its own copy; give paths that name the same files on every "
      "host");
}

int Finetuner::agreed_stop() {
  int sig = StopSignals::requested();
  if (world_ > 1) sig = static_cast<int>(dist_max(static_cast<double>(sig)));
  if (sig != 0) stop_sig_ = sig;
  return stop_sig_;
}

void Finetuner::make_grad_sync() {
  // Replicated parameters (the GPT's shared ones and the head) are averaged; expert slices are
  // not exchanged (their owner already holds the sum over ranks) but scaled. Frozen parameters
  // get no gradient and are left out, so nothing is exchanged for them.
  std::vector<std::pair<std::string, Tensor>> trainable;
  std::vector<bool> sharded_trainable, sharded_all;
  for (const auto& [name, p] : model_->params().all()) {
    const bool expert = GPT::is_expert_param(name);
    sharded_all.push_back(expert);
    if (!p.requires_grad()) continue;
    trainable.emplace_back(name, p);
    sharded_trainable.push_back(expert);
  }
  grad_sync_ = std::make_unique<GradSync>(trainable, *transport_, world_, sharded_trainable,
                                          expert_grad_scale_);
  // The clipping norm and the non-finite check must see every rank's experts (AdamW sums their
  // squares over the ranks), so that every rank clips and skips alike.
  if (model_->gpt().config().is_moe())
    opt_->set_sharded(sharded_all, rank_, world_,
                      [this](Tensor& t) { transport_->all_reduce(t, 1.0); });
}

std::string Finetuner::ranks_line() const {
  const GPTConfig& mc = model_->gpt().config();
  return str_cat("ranks: ", world_, " (batch ", cfg_.batch_size / world_, " of the global ",
                 cfg_.batch_size, " each",
                 mc.is_moe() ? str_cat(", ", mc.moe_experts / world_, " experts per MoE layer each")
                             : std::string(),
                 "; expert scaling ", cfg_.expert_scaling, "), transport ",
                 transport_ ? transport_->name() : std::string("none"));
}

}  // namespace moe
