// program.h — what the three programs (train, eval, finetune) share around their work: flag
// parsing, --help, the runtime set-up (threads, devices, --device check) and the one place that
// turns an error into "error: <message>" on stderr and exit code 1 (DESIGN.md "Errors").
#pragma once
#include <functional>

#include "core/tensor.h"
#include "io/flags.h"

namespace moe {

// The device --device names (auto: the GPU when one is visible); CHECK-fails with the reason.
Device program_device(const Flags& flags);

// Parse the flags of `prog`, answer --help, set up threads and devices, then run `body`;
// returns the exit code for main(). `body` returns its own code (0, 3, 130, ...).
int run_program(int argc, char** argv, Program prog, const std::function<int(const Flags&)>& body);

}  // namespace moe
