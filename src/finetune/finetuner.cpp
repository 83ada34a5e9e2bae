// finetuner.cpp — building a fine-tuning run, one training epoch, dev evaluation (see
// finetuner.h). The outer loop, progress, logs and the results file are in finetune_loop.cpp.
#include "finetune/finetuner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/autograd.h"
#include "core/device.h"
#include "dist/collect.h"
#include "dist/dist.h"
#include "ops/elementwise.h"
#include "ops/softmax_xent.h"

namespace fs = std::filesystem;

namespace moe {

static int64_t count_truncated(const std::vector<EncodedExample>& v) {
  return std::count_if(v.begin(), v.end(), [](const EncodedExample& e) { return e.truncated; });
}

// Each rank draws its own dropout masks: the run's stream moved by the rank (rank 0 keeps the
// one-process stream), as train does.
static uint64_t rank_stream(uint64_t stream, int rank) {
  return stream + (static_cast<uint64_t>(rank) << 32);
}

Finetuner::Finetuner(const FinetuneConfig& cfg)
    : cfg_(cfg), order_rng_(cfg.seed * 0xD1B54A32D192ED03ull + 3), dropout_rng_(cfg.seed * 7919 + 17, kFinetuneDropoutStream) {
  if (cfg.distributed) {
    rank_ = dist().rank;
    world_ = dist().world;
  }
  dropout_rng_.stream = rank_stream(dropout_rng_.stream, rank_);
  // Ranks started with other flags would exchange buffers of other shapes: refuse first.
  if (world_ > 1) check_same_settings();
  CHECK(!cfg.ckpt.empty(), "--ckpt is required: the pretrained model to fine-tune. HINT: train "
        "one with ./train and pass its OUT-DIR/checkpoint.bin");
  CHECK(cfg.batch_size >= 1, "--batch-size must be at least 1");
  CHECK(cfg.epochs >= 0, "--epochs must be at least 0");
  CHECK(cfg.batch_size % world_ == 0, "--batch-size ", cfg.batch_size, " is the global batch; it "
        "must divide evenly over the ", world_, " ranks. HINT: use a multiple of ", world_);
  CHECK(cfg.expert_scaling == "gradient" || cfg.expert_scaling == "lr",
        "the expert scaling must be gradient or lr, got '", cfg.expert_scaling, "'");
  if (world_ > 1 || cfg.transport != "auto") transport_ = make_transport(cfg.transport, cfg.device);
  const ExpertParallel ep{rank_, world_, transport_.get()};
  // Each rank reads the files and the checkpoint itself; a failure on one (a file missing on
  // its host) ends them all with its message.
  on_every_rank([&] {
    data_ = prepare_task_data(cfg.data);
    Checkpoint ck = load_checkpoint(cfg.ckpt);  // released at the end of this scope
    model_ = std::make_unique<SequenceClassifier>(ck, data_.task, cfg.dropout, cfg.seed, cfg.device,
                                                  ep);
    const int T = model_->context();
    train_enc_ = encode_examples(model_->tokenizer(), data_.task, data_.train, T);
    dev_enc_ = encode_examples(model_->tokenizer(), data_.task, data_.dev, T);
  });
  if (world_ > 1) check_same_data();
  // A batch's activations (batch x T x C per layer) are what fills the GPU.
  if (cfg.device.is_cuda())
    cuda_set_oom_hint(str_cat("lower --batch-size (now ", cfg.batch_size, ")"));
  // SPEC §3 step 2: f > 0 gives MoE layers Cap = ceil(f * N) at evaluation (no effect on dense).
  if (cfg.eval_capacity_fraction > 0) model_->gpt().set_eval_capacity_fraction(cfg.eval_capacity_fraction);
  // SPEC §4 (notes/distributed.md "Expert gradient scaling for any W"): an expert's gradient
  // reaches its owner summed over the W ranks; "gradient" keeps sqrt(W) times the exact one,
  // "lr" the exact one with the experts' learning rate lowered by 1/sqrt(E). Both are 1 on one
  // rank, except lr's 1/sqrt(E), as in train.
  expert_grad_scale_ = cfg.expert_scaling == "gradient" ? 1.0 / std::sqrt(double(world_))
                                                        : 1.0 / double(world_);
  const int E = model_->gpt().config().moe_experts;
  for (const auto& [name, t] : model_->params().all())
    lr_scale_.push_back(GPT::is_expert_param(name) && cfg.expert_scaling == "lr"
                            ? 1.0 / std::sqrt(static_cast<double>(E)) : 1.0);
  std::vector<std::string> patterns;
  if (cfg.freeze_experts) patterns.push_back(".moe.experts.");
  if (cfg.freeze_router) patterns.push_back(".moe.gate.");
  frozen_ = freeze_matching(model_->params(), patterns, &lr_scale_);
  opt_ = std::make_unique<AdamW>(model_->params(), cfg.adam);
  if (world_ > 1) make_grad_sync();

  truncated_train_ = count_truncated(train_enc_);
  truncated_dev_ = count_truncated(dev_enc_);
  const int64_t n = static_cast<int64_t>(train_enc_.size());
  const int64_t steps_per_epoch = (n + cfg.batch_size - 1) / cfg.batch_size;
  total_steps_ = steps_per_epoch * cfg.epochs;
  warmup_steps_ = static_cast<int64_t>(std::llround(cfg.warmup * static_cast<double>(total_steps_)));

  if (root()) fs::create_directories(cfg.out_dir);  // rank 0 alone writes (dist.h)
  best_path_ = (fs::path(cfg.out_dir) / "best.bin").string();
  results_path_ = (fs::path(cfg.out_dir) / "results.json").string();
  log_path_ = (fs::path(cfg.out_dir) / "finetune_log.jsonl").string();
  progress_tty_ = isatty(STDERR_FILENO) != 0;
}

bool Finetuner::stop_if_nonfinite() {
  // The global guard and gradient norm make every rank skip the same step; the minimum over ranks
  // keeps them agreeing even if one rank's flag were to differ.
  const int64_t mine = opt_->first_nonfinite_step();  // reads the device flag (a wait)
  int64_t bad = mine;
  if (world_ > 1) {
    const double none = 1e18, b = -dist_max(-(mine == 0 ? none : static_cast<double>(mine)));
    bad = b >= none ? 0 : static_cast<int64_t>(b);
  }
  if (bad == 0) return false;
  // The optimizer applied steps 1 .. bad-1 only (it skips the bad one and every later one): count
  // those, so steps_done() and the saved metadata tell what the weights really saw.
  step_ -= opt_->steps_taken() - (bad - 1);
  return true;
}

double Finetuner::train_epoch(int epoch) {
  const int64_t n = static_cast<int64_t>(train_enc_.size()), B = cfg_.batch_size;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i)  // a fresh seeded shuffle every epoch (the same on every rank)
    std::swap(order[i], order[static_cast<int64_t>(order_rng_.below(static_cast<uint64_t>(i + 1)))]);
  const int32_t pad = model_->tokenizer().eos_id();  // any valid id: padding is never read
  const Device dev = model_->device();
  const auto t0 = std::chrono::steady_clock::now();
  // Nothing is read from the device per step, so the GPU never waits for the host. Each step's
  // cross-entropy is added to `window`, a () tensor on the device; the window is read (one wait)
  // only at --log-every steps and at the end of the epoch, and the epoch's sum is kept on the
  // host in double from those reads. The optimizer decides on the device whether a step is
  // finite (the loss is its guard); its flag is read at the same moments.
  Tensor window = Tensor::zeros({}, DType::F32, dev);
  double epoch_sum = 0.0;
  int64_t batches = 0, in_window = 0;
  Tensor gnorm;  // () on the device: the last step's gradient norm
  for (int64_t begin = 0; begin < n; begin += B) {
    const int64_t end = std::min(n, begin + B), rows = end - begin;
    // This rank's rows of the batch (all of them on one rank), host tensors.
    const RowShare share = row_share(rows, rank_, world_);
    Batch b = make_share_batch(train_enc_, order, begin, end, share.begin, share.end, share.slot,
                               pad);
    const double lr = lr_at(step_, total_steps_, warmup_steps_, cfg_.lr);
    // ids go to the device inside forward_hidden; lengths stay on the host (last_token reads them
    // there); labels are needed where the logits are.
    Tensor logits = model_->forward(b.ids, b.lengths, true, dropout_rng_);  // (slot, K)
    // Mean over this rank's real rows (dummy rows have label -1: ignored; none at all gives 0).
    const Tensor ce = softmax_cross_entropy(logits, b.labels.to(dev), -1);
    // This rank's part of the batch's mean is ce * count/rows; GradSync averages over W, so the
    // loss that backward sees is W times that part. Both factors are 1 for an even split.
    const double part = static_cast<double>(share.count()) / static_cast<double>(rows);
    const double weight = part * world_;
    Tensor loss = weight == 1.0 ? ce : scale(ce, weight);
    const Tensor& aux = model_->aux_loss();
    if (aux.defined() && cfg_.aux_loss_weight > 0) loss = add(loss, scale(aux, cfg_.aux_loss_weight));
    // A non-finite loss still runs; the optimizer then skips the update. GradSync averages the
    // replicated gradients (overlapping the backward) and scales the experts'.
    if (grad_sync_) grad_sync_->backward(loss);
    else backward(loss);
    Tensor guard = loss.detach();
    if (world_ > 1) {  // the sum over ranks: a non-finite loss anywhere skips the step everywhere
      guard = guard.clone();
      transport_->all_reduce(guard, 1.0);
    }
    gnorm = opt_->step(lr, &lr_scale_, guard);
    model_->params().zero_grad();
    add_inplace(window, part == 1.0 ? ce.detach() : scale(ce.detach(), part));
    ++step_;
    ++batches;
    ++in_window;
    const bool interrupted = agreed_stop() != 0;
    const bool log_now = step_ % cfg_.log_every == 0;
    if (log_now || end == n || interrupted) {  // read back: this waits for the step to finish
      if (stop_if_nonfinite()) return NAN;  // the caller stops; the bad update was not applied
      const double w = world_ > 1 ? dist_sum(window.item()) : window.item();
      epoch_sum += w;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (log_now) {
        // the ranks' mean aux loss (each gates its own tokens)
        const double a = aux.defined() ? (world_ > 1 ? dist_sum(aux.item()) / world_ : aux.item()) : 0;
        log_line(str_cat("{\"epoch\":", epoch, ",\"step\":", step_, ",\"loss\":", w / in_window,
                         aux.defined() ? str_cat(",\"aux_loss\":", a) : std::string(),
                         ",\"lr\":", lr, ",\"grad_norm\":", gnorm.item(), ",\"examples_per_s\":",
                         static_cast<double>(end) / elapsed, "}"));
      }
      window.fill(0.0);
      in_window = 0;
    }
    // The loss shown is the epoch's mean up to the last read (not re-read for the bar).
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress(str_cat("epoch ", epoch, "/", cfg_.epochs), end, n,
             batches > in_window ? epoch_sum / static_cast<double>(batches - in_window) : NAN,
             elapsed, end == n);
    if (interrupted) break;  // run() saves and exits
  }
  return batches > 0 ? epoch_sum / static_cast<double>(batches) : 0.0;
}

double Finetuner::evaluate() {
  NoGradGuard ng;
  const int64_t n = static_cast<int64_t>(dev_enc_.size());
  // Batches of similar lengths waste less work on padding. The order cannot change any
  // prediction: without dropout, each row's logits depend on that row only (the MoE gates give
  // padding no slot). With a capacity limit an MoE model's routing depends on the other rows of
  // the batch (--eval-capacity-fraction sets that limit, SPEC §3 step 2), and on W ranks each
  // rank gates its own rows with its own capacity: results then differ from one rank only
  // through dropped assignments.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return dev_enc_[a].ids.size() < dev_enc_[b].ids.size();
  });
  const int32_t pad = model_->tokenizer().eos_id();
  CounterRng unused;  // no dropout at evaluation
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t K = data_.task.num_classes();
  dev_logits_.assign(static_cast<size_t>(n * K), 0.0f);
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += cfg_.batch_size) {
    const int64_t end = std::min(n, begin + cfg_.batch_size), rows = end - begin;
    // Every rank runs the same (slot, L) shape: its rows, then dummy rows (collect.h).
    const RowShare share = row_share(rows, rank_, world_);
    Batch b = make_share_batch(dev_enc_, order, begin, end, share.begin, share.end, share.slot, pad);
    Tensor logits = model_->forward(b.ids, b.lengths, false, unused);  // (slot, K)
    // The one read of the batch: every rank's (slot, K) in rank order, so slot q's rows sit at
    // q*slot — which is row q*slot of the batch, the first row of rank q's share.
    const std::vector<float> z = world_ > 1 ? dist_all_gather_dim0(logits).to_f32_vector()
                                            : logits.to_f32_vector();
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = z.data() + r * K;
      const int64_t ex = order[begin + r];
      std::copy(row, row + K, dev_logits_.begin() + ex * K);
      const int64_t pred = std::max_element(row, row + K) - row;  // first maximum on ties
      correct += pred == dev_enc_[ex].label;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress("dev", end, n, NAN, elapsed, end == n);
    if (agreed_stop() != 0) break;  // run() saves and exits; the accuracy is unused
  }
  return n > 0 ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
}

double Finetuner::majority_baseline() const {
  std::vector<int64_t> counts(data_.task.num_classes(), 0);
  for (const Example& e : data_.train) ++counts[e.label];
  const int top = static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  const int64_t hits = std::count_if(data_.dev.begin(), data_.dev.end(),
                                     [&](const Example& e) { return e.label == top; });
  return data_.dev.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(data_.dev.size());
}

}  // namespace moe
