// finetune_flags.cpp — flags -> FinetuneConfig. Ranges were checked by the flag table already;
// what is left are checks that involve files or several flags (task_data.cpp makes those, with
// a HINT naming the data folder's files), and two defaults that depend on other flags
// (notes/design.md "Hardening"): the out-dir follows --ckpt and --task, and the data folder is
// --data-dir's.
#include "finetune/finetune_flags.h"

#include <cstring>
#include <filesystem>

namespace moe {

namespace {

// Whether the flag table gives `name` to the program these flags were parsed for. A Flags object
// answers only for its own program's flags (anything else is a bug), and --data-dir and
// --moe-expert-scaling were rows of other programs (read here once their rows name finetune).
bool program_accepts(const Flags& f, const char* name) {
  const FlagTable& t = builtin_flag_table();
  for (size_t i = 0; i < t.n_flags; ++i)
    if (std::strcmp(t.flags[i].name, name) == 0) return (t.flags[i].programs & f.program()) != 0;
  return false;
}

}  // namespace

std::string default_finetune_out_dir(const std::string& ckpt, const std::string& task) {
  return (std::filesystem::path(ckpt).parent_path() / ("finetune-" + task)).string();
}

FinetuneConfig finetune_config_from_flags(const Flags& f) {
  FinetuneConfig c;
  c.ckpt = f.get_str("ckpt");
  CHECK(!c.ckpt.empty(), "--ckpt is required: the pretrained checkpoint to fine-tune. HINT: "
        "./train --out-dir runs/tiny writes runs/tiny/checkpoint.bin");
  c.data.task = f.get_str("task").empty() ? "sst2" : f.get_str("task");  // shared row: "" = sst2
  CHECK(c.data.task == "boolq" || c.data.task == "mnli" || c.data.task == "sst2",
        "--task must be one of boolq|mnli|sst2 for finetune, got '", c.data.task, "'");
  c.data.train_file = f.get_str("train-file");
  c.data.dev_file = f.get_str("dev-file");
  c.data.carve_train = f.get_int("carve-train");
  c.data.carve_seed = static_cast<uint64_t>(f.get_int("carve-seed"));
  c.data.limit_train = f.get_int("limit-train");
  c.data.limit_dev = f.get_int("limit-dev");
  // The data folder eval uses; "" (an empty --data-dir=) means: no default files.
  c.data.data_dir = program_accepts(f, "data-dir") ? f.get_str("data-dir") : "../shared/data";
  c.adam.beta1 = f.get_float("beta1");
  c.adam.beta2 = f.get_float("beta2");
  c.adam.eps = f.get_float("adam-eps");
  c.adam.weight_decay = f.get_float("weight-decay");
  c.adam.clip_grad = f.get_float("clip-grad");
  c.epochs = static_cast<int>(f.get_int("epochs"));
  c.batch_size = static_cast<int>(f.get_int("batch-size"));
  c.lr = f.get_float("lr");
  c.warmup = f.get_float("warmup");
  c.dropout = f.get_float("dropout");
  c.seed = static_cast<uint64_t>(f.get_int("seed"));
  // Beside the checkpoint, per task: fine-tunes of two checkpoints (dense and MoE) or of two
  // tasks never share a folder. The flag table's default (runs/default) is train's.
  c.out_dir = f.was_set("out-dir") ? f.get_str("out-dir") : default_finetune_out_dir(c.ckpt,
                                                                                     c.data.task);
  c.overwrite = f.get_bool("overwrite");
  c.log_every = static_cast<int>(f.get_int("log-every"));
  c.freeze_experts = f.get_bool("freeze-experts");
  c.freeze_router = f.get_bool("freeze-router");
  c.aux_loss_weight = f.get_float("aux-loss-weight");
  c.eval_capacity_fraction = f.get_float("eval-capacity-fraction");
  c.transport = f.get_str("transport");
  // SPEC §4's expert scaling is a train flag today; finetune follows it once its row names
  // finetune too, and uses fairseq's "gradient" scaling until then (notes/finetune.md).
  if (program_accepts(f, "moe-expert-scaling")) c.expert_scaling = f.get_str("moe-expert-scaling");
  return c;
}

}  // namespace moe
