// train_flags.cpp — flags -> TrainConfig. Values were range-checked by the flag table already;
// what remains are checks that involve two flags (d-model divisible by n-head, ...).
#include "train/train_flags.h"

namespace moe {

TrainConfig train_config_from_flags(const Flags& f) {
  TrainConfig c;
  c.model.n_layer = static_cast<int>(f.get_int("n-layer"));
  c.model.d_model = static_cast<int>(f.get_int("d-model"));
  c.model.n_head = static_cast<int>(f.get_int("n-head"));
  c.model.seq_len = static_cast<int>(f.get_int("seq-len"));
  c.model.dropout = f.get_float("dropout");
  c.model.moe_experts = static_cast<int>(f.get_int("moe-experts"));
  c.model.moe_freq = static_cast<int>(f.get_int("moe-freq"));
  c.model.capacity_factor = f.get_float("capacity-factor");
  c.model.top2_policy = f.get_str("moe-top2-policy");
  c.model.validate();
  c.moe_loss_weight = f.get_float("moe-loss-weight");
  c.expert_scaling = f.get_str("moe-expert-scaling");
  c.data.data = f.get_str("data");
  c.data.val_data = f.get_str("val-data");
  c.data.val_fraction = f.get_float("val-fraction");
  c.data.bpe_dir = f.get_str("bpe-dir");
  c.data.vocab_size = static_cast<int>(f.get_int("vocab-size"));
  c.data.cache_dir = f.get_str("cache-dir");
  c.adam.beta1 = f.get_float("beta1");
  c.adam.beta2 = f.get_float("beta2");
  c.adam.eps = f.get_float("adam-eps");
  c.adam.weight_decay = f.get_float("weight-decay");
  c.adam.clip_grad = f.get_float("clip-grad");
  c.batch_size = static_cast<int>(f.get_int("batch-size"));
  c.steps = f.get_int("steps");
  c.lr = f.get_float("lr");
  c.warmup = f.get_float("warmup");
  c.seed = static_cast<uint64_t>(f.get_int("seed"));
  c.out_dir = f.get_str("out-dir");
  c.log_every = static_cast<int>(f.get_int("log-every"));
  c.eval_every = static_cast<int>(f.get_int("eval-every"));
  c.eval_batches = static_cast<int>(f.get_int("eval-batches"));
  c.ckpt_every = static_cast<int>(f.get_int("ckpt-every"));
  c.resume = f.get_str("resume");
  c.overwrite = f.get_bool("overwrite");
  c.max_minutes = f.get_float("max-minutes");
  c.transport = f.get_str("transport");
  CHECK(c.data.val_fraction > 0 || !c.data.val_data.empty(),
        "--val-fraction 0 leaves no validation data. HINT: give --val-data FILE or a fraction > 0");
  return c;
}

}  // namespace moe
