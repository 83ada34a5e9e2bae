// finetune_flags.h — turn parsed flags into a FinetuneConfig (the one place finetune's flags are
// read; the flags themselves are rows of io/flag_table.cpp, section "finetune").
#pragma once
#include "finetune/finetuner.h"
#include "io/flags.h"

namespace moe {
// CHECK-fails when --ckpt is missing or --task is not a fine-tuning task.
FinetuneConfig finetune_config_from_flags(const Flags& f);
// `<ckpt's folder>/finetune-<task>`: the out-dir when --out-dir is not given.
std::string default_finetune_out_dir(const std::string& ckpt, const std::string& task);
}
