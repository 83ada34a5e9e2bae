// report.h — what an evaluation shows and keeps: the progress bar on stderr, the results table
// on stdout, and the results JSON file that `eval --speedup` reads back (SPEC §6, §8).
//
// Results file (written atomically: FILE.tmp, then rename). It records every setting that shaped
// it, so that two files can be compared without the command lines that made them:
//   { "format": "moe-gpt eval results", "version": 2,
//     "checkpoint": "...", "training_compute": 1.2e15 (paper FLOPs, SPEC §5; null if unknown),
//     "tokens": ..., "step": ..., "scoring": "mean", "winogrande_mode": "full",
//     "eval_capacity_fraction": 0, "eval_capacity_rule": "...", "limit": 0,
//     "settings": { every eval flag: "value" as text },
//     "rows": [ { "task", "setting", "shots", "draws", "metric", "mean", "std", "stderr",
//                 "stderr_draws", "n", "limit", "scoring", "checkpoint", "training_compute",
//                 "split" (the file, for ppl rows), "files" (every data file read), "skipped",
//                 "demos_complete_mean", "demos_complete_min" (few-shot: demonstrations left
//                 whole after left truncation; null otherwise), "items_per_s", "note" }, ... ] }
// Every row repeats checkpoint, compute and scoring, so rows can be concatenated across files.
// Metrics are fractions (accuracy 0.613), perplexities plain numbers. Accuracy rows of a task:
// "acc" under --scoring (the headline; the averages use it), and "acc_mean", "acc_sum",
// "acc_norm" under each rule (scoring.h), all from the same log-probabilities; ReCoRD: "em" and
// "f1" under --scoring. Standard errors: "stderr" over items (the binomial sqrt(p(1-p)/n) for one
// draw; for several draws, of the per-item means), "stderr_draws" the standard error of the mean
// over few-shot draws (sample std / sqrt(draws); 0 for one draw).
// Summary rows, used by the speedup factor: task "ppl-in-domain" / "ppl-out-of-domain" (metric
// ppl: one file's ppl, or the geometric mean over several), "zero-shot-avg" / "few-shot-avg"
// (metric acc: the mean of each task's main metric — accuracy, ReCoRD's EM — over the tasks run
// in that setting, named in "note"; its stderr combines the tasks' as independent errors).
// Version 1 files (no settings, no standard errors) are still read.
//
#pragma once
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace moe {

// A progress bar on stderr: "piqa 0-shot [=====>    ] 812/1838  143.2 items/s  ETA 7s".
// On a terminal it redraws in place (at most 5 times a second); otherwise (a log file) it prints
// one line per 20% so logs stay short. Disabled: prints nothing.
class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled);
  void update(int64_t done);
  void finish();  // final line, newline

 private:
  void draw(int64_t done, bool final_line);
  std::string label_;
  int64_t total_;
  bool enabled_, tty_, finished_ = false;
  int last_fifth_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

struct ResultRow {
  std::string task;        // "piqa", "ppl", "zero-shot-avg", ...
  std::string setting;     // "zero-shot" | "few-shot" | "in-domain" | "out-of-domain"
  int shots = 0;
  int draws = 1;
  std::string metric;      // "acc" | "acc_mean" | "acc_sum" | "acc_norm" | "em" | "f1" | "ppl"
  double mean = 0.0;
  double std = 0.0;        // over draws (0 for a single draw)
  double std_err = 0.0;    // standard error over items (see above)
  double std_err_draws = 0.0;  // standard error over draws (0 for a single draw)
  int64_t n = 0;           // items per draw, or predicted tokens for ppl
  int64_t limit = 0;       // --limit it ran with (0 = all)
  std::string scoring;     // "mean" | "sum" | "char" | "" (ppl)
  std::string checkpoint;
  double training_compute = 0.0;  // NaN when unknown
  std::string split;       // "valid", "dev", ... or the ppl file
  std::vector<std::string> files;  // the data files read for this row
  int64_t skipped = 0;     // malformed records skipped (--skip-bad)
  double demos_mean = std::numeric_limits<double>::quiet_NaN();  // few-shot only
  int demos_min = -1;                                           // few-shot only
  double items_per_s = 0.0;
  std::string note;
};

struct ResultsFile {
  std::string checkpoint;
  double training_compute = 0.0;  // NaN when unknown
  int64_t tokens = -1, step = -1;  // -1 when unknown
  std::string scoring, winogrande_mode, eval_capacity_rule;
  double eval_capacity_fraction = 0.0;
  int64_t limit = 0;  // --limit (0 = all items / windows)
  std::vector<std::pair<std::string, std::string>> settings;  // every eval flag, as text
  int version = 2;    // of the file it was read from
  std::vector<ResultRow> rows;
};

// The metric that stands for a task in the averages: "em" for ReCoRD, "acc" otherwise.
bool is_main_metric(const ResultRow& r);
// Append the summary rows (see above) computed from the rows already present.
void add_summary_rows(ResultsFile* f);

std::string results_json(const ResultsFile& f);
void write_results(const std::string& path, const ResultsFile& f);  // atomic
ResultsFile read_results(const std::string& path);                   // CHECK-fails naming path

// The stdout table: one line per row, accuracies in percent.
std::string results_table(const std::vector<ResultRow>& rows);

}  // namespace moe
