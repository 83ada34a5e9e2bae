// priming.h — zero- and few-shot evaluation of one multiple-choice task (SPEC §6 "Zero-shot",
// "Few-shot").
//
// For each draw (one for zero-shot; seeds 0..draws-1 for k-shot) and each evaluated item: build
// every candidate's sequence (fewshot.h prefix, templates.h text, scoring.h span), score all the
// candidates of the item in one batched call to the model — several items share a call when the
// batch has room — pick the best candidate (ties: the first), and count it. A draw's result is the
// accuracy (ReCoRD: EM and F1 of the chosen entity); report.h turns draws into mean and std.
//
// Left out: any per-item output file (only aggregates are reported), early stopping, caching of
// model states across draws.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/readers.h"
#include "eval/scoring.h"
#include "eval/templates.h"

namespace moe {

class BpeTokenizer;

// Text -> tokens for prompts: the tokenizer's plain encoding, with any '\n' in the text encoded
// as </s> (SPEC §5: newlines are </s>), so a multi-line field cannot smuggle in a newline byte the
// model never saw in training.
using TextEncoder = std::function<std::vector<int32_t>(const std::string&)>;
TextEncoder make_text_encoder(const BpeTokenizer& tok);

// One task, ready to evaluate (tasks.h builds these from the data folder).
struct TaskData {
  std::string name;             // "piqa"
  std::string split;            // what is evaluated: "valid", "dev", ...
  std::vector<TaskItem> items;  // the evaluated split (all of it; --limit is applied later)
  std::vector<TaskItem> pool;   // demonstrations; empty when pool_is_eval
  bool pool_is_eval = false;    // demonstrations come from `items`, the item itself excluded
  std::string pool_name;        // "train", "val (item excluded)", ... for the output
  bool is_record = false;       // ReCoRD: report EM and F1 instead of accuracy
  ReadStats stats;              // reading the evaluated split (skipped records)
  int64_t pool_skipped = 0;     // skipped records of the pool's file
  std::string note;             // a remark for the output (e.g. a missing split)
};

struct PrimingOptions {
  int shots = 0;                    // k
  int draws = 1;                    // random draws of demonstrations (seeds 0..draws-1)
  int64_t limit = 0;                // evaluate only the first N items; 0 = all
  Scoring scoring = Scoring::Mean;
  int batch_size = 16;              // sequences per model call (an item is never split)
  bool progress = true;             // progress bar on stderr
};

struct DrawMetrics {
  double acc = 0.0;  // fraction of items whose best candidate is the gold one (ReCoRD: = em)
  double em = 0.0;   // ReCoRD only: mean over items of max-over-answers exact match
  double f1 = 0.0;   // ReCoRD only: mean over items of max-over-answers token F1
};

struct PrimingResult {
  std::vector<DrawMetrics> draws;  // one per draw
  int64_t n_items = 0;             // items evaluated per draw
  double seconds = 0.0;            // wall time of all draws
  double items_per_s = 0.0;        // (n_items * draws) / seconds
};

PrimingResult evaluate_priming(const TaskData& task, LanguageModelScorer& scorer,
                               const TextEncoder& encode, const PrimingOptions& opts);

// The pieces, for tests and the benchmark: encode one item's candidates, and score a batch of
// already-built items (one scorer call) into the index of the chosen candidate of each.
EncodedItem encode_item(const TaskItem& item, const TextEncoder& encode);
std::vector<int> choose_candidates(const std::vector<ItemSequences>& batch,
                                   LanguageModelScorer& scorer, Scoring rule);

}  // namespace moe
