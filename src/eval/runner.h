// runner.h — what `eval` does with its flags: one entry point per mode, so eval.cpp stays a thin
// main (SPEC §6, §8).
//
//   run_evaluation   --ckpt FILE --task all|ppl|<task>[,<task>...]: check --out-dir, load the
//                    model and tokenizer from the checkpoint onto the chosen device (refusing
//                    non-finite weights), run each task in its paper setting (or --shots k),
//                    perplexity (indomain.h: the checkpoint's held-out training text, or
//                    --ppl-data), print the table, write the results JSON (and, with
//                    --log-samples, samples_<task>.jsonl);
//                    --task generate: continue --prompt (src/nn/generate.h) and print the text
//   run_speedup_mode --speedup --dense a.json,... --moe b.json,...: the speedup factor (speedup.h);
//                    results files only: no model, no device work
//   run_check_data   --check-data DIR: every evaluation file parses with its official count
// Each returns the process exit code (0 = success) and throws moe::Error on bad input.
//
// Left out: evaluating several checkpoints in one call (run eval once per checkpoint, then
// --speedup over the results files).
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe {

class Flags;

// `device`: where the model is built and every forward runs (eval.cpp passes the program's
// --device). The default, the CPU, keeps in-process callers (tests) on the CPU whatever GPU the
// machine has.
int run_evaluation(const Flags& flags, Device device = cpu());
int run_speedup_mode(const Flags& flags);
int run_check_data(const Flags& flags);

// "all" -> the six priming tasks then "ppl"; otherwise the comma-separated names, checked.
std::vector<std::string> expand_task_list(const std::string& task_flag);

// --shots -1 means the paper's setting: 0 for the zero-shot tasks, `fewshot_k` for the others.
int shots_for(const std::string& task, int shots_flag, int fewshot_k);
// --draws 0 means 25 draws for k > 0 (SPEC §6), 1 for zero-shot.
int draws_for(int shots, int draws_flag);

// The capacity rule of an MoE model's evaluation, in words, for the output and the results file.
std::string eval_capacity_rule_text(double eval_capacity_fraction);

struct Checkpoint;
// CHECK-fails, naming the file and the first parameter ("param/<name>" tensors) that holds a NaN
// or an infinity: such a model scores NaN everywhere, and eval must not report that as a result.
void check_finite_parameters(const Checkpoint& ck);

}  // namespace moe
