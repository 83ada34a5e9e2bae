// train_flags.h — turn parsed flags into a TrainConfig (the one place train's flags are read).
#pragma once
#include "io/flags.h"
#include "train/trainer.h"

namespace moe {
TrainConfig train_config_from_flags(const Flags& f);
}
