// program.h — what the three programs (train, eval, finetune) share around their work: flag
// parsing, --help, the runtime set-up (threads, devices, --device check) and the one place that
// turns an error into "error: <message>" on stderr and exit code 1 (notes/design.md "Errors").
#pragma once
#include <functional>
#include <string>

#include "core/tensor.h"
#include "io/flags.h"

namespace moe {

// The device --device names (auto: the GPU when one is visible); CHECK-fails with the reason.
Device program_device(const Flags& flags);

// Checks, before any work starts, that `dir` (the value of flag `--flag`) can hold the program's
// outputs: not empty, not a file, not under a file, writable (creating it if missing). The
// message names the flag and the path. Called by the three programs for --out-dir.
void check_out_dir(const std::string& dir, const char* flag = "out-dir");

// Parse the flags of `prog`, answer --help, set up threads and devices, then run `body`;
// returns the exit code for main(). `body` returns its own code (0, 3, 130, ...). Under mpirun
// it starts MPI (dist_init), silences the standard output of ranks other than 0, picks each
// rank's GPU, and turns an error on any rank into the end of every rank (dist_abort).
int run_program(int argc, char** argv, Program prog, const std::function<int(const Flags&)>& body);

}  // namespace moe
