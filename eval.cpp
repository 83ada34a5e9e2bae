// eval.cpp — priming evaluation, perplexity and the speedup factor (SPEC §6, §8).
//
//   ./eval --ckpt runs/tiny/checkpoint.bin                 the six tasks in the paper's settings
//                                                          (few-shot: k=32, 25 draws) + perplexity
//   ./eval --ckpt C --task hellaswag --shots 5 --limit 200   one task, another setting, quickly
//   ./eval --ckpt C --task ppl --ppl-data a.txt,b.txt.xz     perplexity (first file = in-domain)
//   ./eval --speedup --dense d1.json,d2.json --moe m1.json,m2.json   speedup factor + plots
//   ./eval --check-data ../shared/data                     every evaluation file parses, counts
//   ./eval --ckpt C --task piqa --log-samples                + samples_piqa.jsonl, one line per item
//   ./eval --ckpt C --task generate --prompt "Once" --max-new-tokens 64 --temperature 0.8
//                                                          continue a prompt (src/nn/generate.h)
//   ./eval --help
//
// A thin main: parse flags -> print the effective configuration -> one mode of src/eval/runner.h
// -> exit code. Exit codes: 0 done, 1 bad input (message on stderr; a malformed record names its
// FILE:LINE; a bad --out-dir is refused before any work; a checkpoint with non-finite weights or
// a non-finite perplexity is an error, never a -nan result) or a failed data check.
#include <iostream>

#include "core/check.h"
#include "core/device.h"
#include "core/parallel.h"
#include "eval/runner.h"
#include "io/flags.h"
#include "io/program.h"

int main(int argc, char** argv) {
  using namespace moe;
  return run_program(argc, argv, PROG_EVAL, [](const Flags& flags) {
    if (!flags.get_str("check-data").empty()) return run_check_data(flags);
    std::cout << "moe-gpt eval — Artetxe et al. (2021), priming evaluation (SPEC §6, §8)\n"
              << effective_config_text(flags, PROG_EVAL) << "threads: " << num_threads()
              << std::endl;
    if (flags.get_bool("speedup")) return run_speedup_mode(flags);
    return run_evaluation(flags, program_device(flags));  // the model runs on --device
  });
}
