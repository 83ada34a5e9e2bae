// finetune_flags.h — turn parsed flags into a FinetuneConfig (the one place finetune's flags are
// read; the flags themselves are rows of io/flag_table.cpp, section "finetune").
#pragma once
#include "finetune/finetuner.h"
#include "io/flags.h"

namespace moe {
FinetuneConfig finetune_config_from_flags(const Flags& f);
}
