// classifier.cpp — GPT + linear head, its checkpoints, and parameter freezing (see classifier.h).
#include "finetune/classifier.h"

#include <algorithm>
#include <cmath>

#include "finetune/last_token.h"
#include "nn/gpt_io.h"
#include "ops/linear.h"

namespace moe {

namespace {

// Pretraining facts worth keeping next to a fine-tuned model: they place it on the compute axis
// of the paper's comparisons (SPEC §8).
const char* const kPretrainKeys[] = {"step", "tokens", "compute-paper-flops"};

std::string join_labels(const std::vector<std::string>& labels) {
  std::string s;
  for (size_t i = 0; i < labels.size(); ++i) s += (i ? "," : "") + labels[i];
  return s;
}

}  // namespace

SequenceClassifier::SequenceClassifier(const Checkpoint& ck, const TaskInfo& task,
                                       double dropout, uint64_t seed, Device device,
                                       const ExpertParallel& ep)
    : task_(task) {
  tok_ = tokenizer_from_checkpoint(ck);
  // The checkpoint records the pretraining dropout; fine-tuning picks its own (--dropout). A
  // shallow copy of the checkpoint (tensors are shared, not copied) carries the new value.
  Checkpoint with_dropout = ck;
  with_dropout.set_meta("dropout", str_cat(dropout));
  gpt_ = gpt_from_checkpoint(with_dropout, device, ep);
  CHECK(tok_.vocab_size() <= gpt_->config().vocab_size, "checkpoint ", ck.path, ": its tokenizer has ",
        tok_.vocab_size(), " tokens but the model only ", gpt_->config().vocab_size,
        " embeddings. HINT: the checkpoint was not written by moe-gpt's train");
  for (const auto& [name, t] : gpt_->params().all()) params_.add(name, t);
  load_or_init_head(ck, seed);  // on the CPU: from the checkpoint or drawn from the seed
  // The head joins the model on its device before it is registered, so AdamW's moments and the
  // gradients are made there too.
  head_w_ = head_w_.to(device);
  head_b_ = head_b_.to(device);
  // add() marks its argument requires-grad and returns it: keep that handle, since a tensor
  // without autograd state gets a fresh one in the registry's copy, and forward() would then use
  // a head the tape does not see (no gradient, never trained).
  head_w_ = params_.add("head.weight", head_w_);
  head_b_ = params_.add("head.bias", head_b_);
  for (const char* key : kPretrainKeys) {
    if (ck.has_meta(std::string("pretrain.") + key))  // already a fine-tuned checkpoint
      pretrain_meta_.push_back({std::string("pretrain.") + key, ck.get_meta(std::string("pretrain.") + key)});
    else if (ck.has_meta(key))
      pretrain_meta_.push_back({std::string("pretrain.") + key, ck.get_meta(key)});
  }
}

void SequenceClassifier::load_or_init_head(const Checkpoint& ck, uint64_t seed) {
  const int K = task_.num_classes(), C = gpt_->config().d_model;
  if (ck.has_tensor("head/weight")) {
    const std::string ck_task = ck.has_meta("finetune.task") ? ck.get_meta("finetune.task") : "?";
    const int ck_k = ck.has_meta("finetune.num-classes")
                         ? std::stoi(ck.get_meta("finetune.num-classes"))
                         : static_cast<int>(ck.get_tensor("head/weight").size(0));
    CHECK(ck_k == K, "checkpoint ", ck.path, " is a fine-tuned classifier with ", ck_k,
          " classes (task ", ck_task, "), but --task ", task_.name, " has ", K,
          ". HINT: start from the pretraining checkpoint; a head cannot change its classes");
    const Tensor& w = ck.get_tensor("head/weight");
    const Tensor& b = ck.get_tensor("head/bias");
    CHECK(w.shape() == Shape({K, C}) && b.shape() == Shape({K}), "checkpoint ", ck.path,
          ": the head is ", shape_str(w.shape()), " + ", shape_str(b.shape()), ", expected (", K,
          ", ", C, ") + (", K, ",) for d-model ", C);
    head_w_ = w.clone().to(DType::F32);
    head_b_ = b.clone().to(DType::F32);
    head_from_checkpoint_ = true;
    return;
  }
  // W (K, C), b (K,) ~ U(+-1/sqrt(C)): fan_in C, as every linear layer of the model (SPEC §2).
  Rng rng(seed * 0x9E3779B97F4A7C15ull + 0x5eed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(C));
  head_w_ = Tensor::empty({K, C});
  head_b_ = Tensor::empty({K});
  for (Tensor* t : {&head_w_, &head_b_}) {
    float* p = t->data<float>();
    for (int64_t i = 0; i < t->numel(); ++i)
      p[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
  }
}

Tensor SequenceClassifier::forward(const Tensor& ids, const Tensor& lengths, bool training,
                                   CounterRng& rng) {
  // lengths: the real tokens of each right-padded row; the MoE gate gives padding no slot.
  Tensor h = gpt_->forward_hidden(ids, training, rng, lengths);  // (B, L, C)
  // A dummy row (length 0) has no last token; it reads position 0, and nobody reads its logits.
  Tensor read_at = lengths;
  const std::vector<int32_t> len = lengths.to_i32_vector();
  if (std::find(len.begin(), len.end(), 0) != len.end()) {
    std::vector<int32_t> at(len);
    for (int32_t& v : at) v = std::max<int32_t>(v, 1);
    read_at = Tensor::from_i32(at, {static_cast<int64_t>(at.size())});
  }
  Tensor z = last_token(h, read_at);                    // (B, C)
  return linear(z, head_w_, head_b_);                   // (B, K)
}

int64_t SequenceClassifier::param_count_all_ranks() const {
  return gpt_->param_count_all_ranks() + head_w_.numel() + head_b_.numel();
}

void SequenceClassifier::save(const std::string& path,
                              const std::vector<std::pair<std::string, std::string>>& extra) const {
  Checkpoint ck;
  ck.set_meta("format", "moe-gpt finetune checkpoint");
  add_gpt_to_checkpoint(ck, *gpt_);  // collective: the expert slices gather on rank 0
  if (gpt_->expert_parallel().rank != 0) return;  // rank 0 alone writes
  ck.set_meta("tokenizer", tok_.fingerprint());
  add_tokenizer_to_checkpoint(ck, tok_);
  ck.set_meta("finetune.task", task_.name);
  ck.set_meta("finetune.num-classes", std::to_string(task_.num_classes()));
  ck.set_meta("finetune.labels", join_labels(task_.labels));
  for (const auto& [k, v] : pretrain_meta_) ck.set_meta(k, v);
  for (const auto& [k, v] : extra) ck.set_meta(k, v);
  ck.add_tensor("head/weight", head_w_);
  ck.add_tensor("head/bias", head_b_);
  save_checkpoint(path, ck);
}

std::vector<std::string> freeze_matching(ParamRegistry& params,
                                         const std::vector<std::string>& patterns,
                                         std::vector<double>* lr_scale) {
  const auto& all = params.all();
  ASSERT_INTERNAL(lr_scale->size() == all.size(), "lr_scale has ", lr_scale->size(),
                  " entries for ", all.size(), " parameters");
  std::vector<std::string> frozen;
  for (size_t k = 0; k < all.size(); ++k) {
    bool hit = false;
    for (const std::string& p : patterns) hit = hit || all[k].first.find(p) != std::string::npos;
    if (!hit) continue;
    Tensor t = all[k].second;
    t.set_requires_grad(false);
    t.zero_grad();
    (*lr_scale)[k] = 0.0;
    frozen.push_back(all[k].first);
  }
  return frozen;
}

}  // namespace moe
