// train.cpp — pretrain a dense GPT (SPEC §2, §5) on the embedded corpus or any text.
//
//   ./train                      tiny preset, embedded synthetic corpus, the GPU if there is one
//   ./train --model small --data ../shared/data/gutenberg/gutenberg.train.txt
//           --bpe-dir ../shared/data/gpt2_bpe
//   ./train --help               every flag with its default and accepted values
//
// A thin main: parse flags -> print the effective configuration -> build -> train -> exit code.
// Exit codes: 0 done, 1 bad input or a failed write (message on stderr), 3 non-finite loss or
// state (nothing saved), 130 Ctrl-C and 143 SIGTERM (the run saved a checkpoint first).
#include <csignal>
#include <iostream>

#include "core/device.h"
#include "core/parallel.h"
#include "io/flags.h"
#include "io/program.h"
#include "train/train_flags.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  using namespace moe;
  // Past a file-size limit (ulimit -f) a write would raise SIGXFSZ, which kills the process
  // without a word; ignored, the write fails instead and the message names the file.
  std::signal(SIGXFSZ, SIG_IGN);
  return run_program(argc, argv, PROG_TRAIN, [](const Flags& flags) {
    TrainConfig cfg = train_config_from_flags(flags);
    cfg.device = program_device(flags);
    std::cout << "moe-gpt train — Artetxe et al. (2021): dense GPT or its MoE counterpart\n"
              << effective_config_text(flags, PROG_TRAIN) << "threads: " << num_threads()
              << ", running on: " << describe_device(cfg.device) << std::endl;
    Trainer trainer(cfg);
    return trainer.run();
  });
}
