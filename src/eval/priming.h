// priming.h — zero- and few-shot evaluation of one multiple-choice task (SPEC §6 "Zero-shot",
// "Few-shot").
//
// For each draw (one for zero-shot; seeds 0..draws-1 for k-shot) and each evaluated item: build
// every candidate's sequence (fewshot.h prefix, templates.h text, scoring.h span), score all the
// candidates of the item in one batched call to the model — several items share a call when the
// batch has room — pick the best candidate (ties: the first), and count it. A draw's result is the
// accuracy under each of the three scoring rules, all from the same log-probabilities (the
// --scoring rule's is the headline `acc`; ReCoRD: EM and F1 of the entity that rule chose);
// report.h turns draws into mean, std and standard errors.
//
// Few-shot prompts longer than the context lose tokens on the left (scoring.h), and with them
// whole demonstrations: the result says how many of the k demonstrations were still complete
// (mean and minimum over the items and draws), so a "32-shot" run on a short context says it was
// really, say, a 5-shot one.
//
// Per-item records (--log-samples) go to an optional callback, one per item and draw.
//
// Left out: early stopping, caching of model states across draws.
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
  std::vector<std::string> files;  // every file read: evaluated split, labels, pool
};

// One evaluated item of one draw, for --log-samples.
struct ItemRecord {
  int draw = 0;
  int64_t index = 0;                         // into TaskData::items
  std::vector<int64_t> demos;                // pool indices shown, in prompt order
  std::vector<std::vector<double>> scores;   // [scoring_index(rule)][candidate]
  int prediction = 0;                        // chosen candidate under PrimingOptions::scoring
  int demos_complete = 0;                    // demonstrations left whole after truncation
  int dropped_tokens = 0;                    // tokens cut on the left (longest candidate)
};
using ItemSink = std::function<void(const ItemRecord&)>;

struct PrimingOptions {
  int shots = 0;                    // k
  int draws = 1;                    // random draws of demonstrations (seeds 0..draws-1)
  int64_t limit = 0;                // evaluate only the first N items; 0 = all
  Scoring scoring = Scoring::Mean;  // the headline rule (acc, and ReCoRD's choice)
  int batch_size = 16;              // sequences per model call (an item is never split)
  bool progress = true;             // progress bar on stderr
  ItemSink on_item;                 // called for every item of every draw, when set
};

struct DrawMetrics {
  double acc = 0.0;  // fraction of items whose best candidate is the gold one (ReCoRD: = em)
  double em = 0.0;   // ReCoRD only: mean over items of max-over-answers exact match
  double f1 = 0.0;   // ReCoRD only: mean over items of max-over-answers token F1
  double acc_by_rule[3] = {0.0, 0.0, 0.0};  // accuracy under each rule (kAllScorings order)
};

struct PrimingResult {
  std::vector<DrawMetrics> draws;  // one per draw
  int64_t n_items = 0;             // items evaluated per draw
  double seconds = 0.0;            // wall time of all draws
  double items_per_s = 0.0;        // (n_items * draws) / seconds
  // Per item, averaged over the draws: the spread across items gives the standard errors.
  std::vector<double> item_acc[3];  // by rule (kAllScorings order); 0/1 for one draw
  std::vector<double> item_em, item_f1;  // ReCoRD, under the headline rule
  // Few-shot only: demonstrations still complete after left truncation, over items and draws.
  double demos_complete_mean = 0.0;
  int demos_complete_min = 0;
  int64_t truncated_prompts = 0;   // item-draws that lost tokens on the left
};

PrimingResult evaluate_priming(const TaskData& task, LanguageModelScorer& scorer,
                               const TextEncoder& encode, const PrimingOptions& opts);

// The pieces, for tests and the benchmark: encode one item's candidates; score a batch of
// already-built items (one scorer call) under every rule, [item][scoring_index(rule)][candidate];
// and the index of the chosen candidate of each item under one rule.
EncodedItem encode_item(const TaskItem& item, const TextEncoder& encode);
std::vector<std::vector<std::vector<double>>> score_items(const std::vector<ItemSequences>& batch,
                                                         LanguageModelScorer& scorer);
std::vector<int> choose_candidates(const std::vector<ItemSequences>& batch,
                                   LanguageModelScorer& scorer, Scoring rule);

// How many of the demonstrations (token lengths `demo_lengths`, in prompt order after the leading
// </s>, each followed by </s>) are still whole once `dropped` tokens are cut from the left.
int demonstrations_kept(const std::vector<int>& demo_lengths, int dropped);

}  // namespace moe
