// task_data.h — the three fine-tuning tasks of SPEC §7 and readers for their files as they are
// distributed: BoolQ (passage + question -> yes/no), MNLI (premise + hypothesis -> 3 classes),
// SST-2 (sentence -> 2 classes).
//
// Formats read (the format is sniffed per file: a first line starting with '{' means JSON lines,
// anything else a TSV with a header row):
//   BoolQ  jsonl  {"question", "passage", "answer": true|false}  (SuperGLUE's "label" also works)
//   MNLI   jsonl  MultiNLI {"sentence1", "sentence2", "gold_label"} or the data folder's
//                 {"premise", "hypothesis", "label"}; labels entailment|neutral|contradiction
//                 (or 0|1|2 in that order, as GLUE/HF number them)
//          tsv    GLUE: columns found by header name: sentence1, sentence2, gold_label (else label)
//   SST-2  tsv    GLUE: header `sentence<TAB>label`, label 0|1 (jsonl {"sentence", "label"} too)
// A record whose gold label is "-" (MultiNLI: no annotator consensus; -1 in HF) is skipped and
// counted, never trained or scored. Any other malformed record is an error that names FILE:LINE;
// so is a numeric label that is not a small whole number (1e300 is never cast to an integer). A
// UTF-8 byte-order mark at the start of a file is ignored; an empty or header-only file is an
// error naming it. Files are read whole through io/text_io.h, the one reader of the three
// programs (.xz through `xz -dc`); the largest fine-tuning file is ~4 MB decompressed.
//
// Missing splits (MANIFEST.md): BoolQ has no train file here, so a training part is carved out of
// the one file by a seeded shuffle (`--carve-train N`); MNLI has no train file, so it trains on
// dev_mismatched and evaluates on dev_matched. prepare_task_data() says which it did.
// Default files (notes/design.md "Hardening", "finetune finds its data"): with neither
// --train-file nor --dev-file, the files come from the data folder (--data-dir, laid out as its MANIFEST.md says): sst2
// train.tsv + dev.tsv; mnli dev_mismatched (train) + dev_matched (dev); boolq dev.jsonl carved
// with --carve-train, 2270 unless given (2270 train / 1000 dev of its 3270).
// What it leaves out: GLUE test files (unlabelled), ReCoRD-style multi-answer tasks, CSV.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

enum class TaskKind { BoolQ, MNLI, SST2 };

struct TaskInfo {
  TaskKind kind = TaskKind::SST2;
  std::string name;                 // "boolq", "mnli", "sst2" (the --task values)
  std::vector<std::string> labels;  // class names in class-id order: labels.size() = K classes
  int num_classes() const { return static_cast<int>(labels.size()); }
};

// CHECK-fails, listing boolq|mnli|sst2, for any other name.
TaskInfo task_info(const std::string& name);

struct Example {
  std::string text_a;  // passage / premise / sentence
  std::string text_b;  // question / hypothesis / "" for single-sentence tasks
  int label = 0;       // class id in [0, K)
  int64_t line = 0;    // 1-based line of the record in its file (for messages and tests)
};

struct TaskFile {
  std::string path;
  std::vector<Example> examples;  // in file order
  int64_t records = 0;            // data records read (header and blank lines not counted)
  int64_t skipped_no_gold = 0;    // records with gold label "-" (MNLI)
};

// Read every labelled record of `path` for `task` (see the file comment for the formats).
TaskFile read_task_file(const TaskInfo& task, const std::string& path);

// Split `all` into n_train training examples and the rest as dev, by a Fisher-Yates shuffle of
// the indices with Rng(seed); each part keeps file order. The same (size, n_train, seed) always
// gives the same split; the parts are disjoint and cover `all`.
void carve_split(const std::vector<Example>& all, int64_t n_train, uint64_t seed,
                 std::vector<Example>* train, std::vector<Example>* dev);

// --carve-train's value for BoolQ when no file is given: the data folder's 3270 dev examples
// become 2270 train / 1000 dev (MANIFEST.md's suggestion).
constexpr int64_t kBoolqDefaultCarve = 2270;

struct FinetuneDataConfig {
  std::string task = "sst2";
  std::string train_file, dev_file;
  std::string data_dir;         // where the default files are ("" = none: files must be given)
  int64_t carve_train = 0;      // > 0: split the one given file (see carve_split)
  uint64_t carve_seed = 1234;
  int64_t limit_train = 0, limit_dev = 0;  // > 0: keep only the first N (after carving)
};

struct FinetuneData {
  TaskInfo task;
  FinetuneDataConfig used;         // the config as applied: default files and carve filled in
  std::vector<Example> train, dev;
  int64_t skipped_no_gold = 0;     // over both files
  std::string carve_from;          // the carved file ("" = no carving)
  std::vector<std::string> notes;  // what was done about missing splits, limits, skips
};

// Read (and carve, limit) the files of `cfg`, taking the default files from cfg.data_dir when
// neither file is given; CHECK-fails with a HINT when a default file is missing (naming it and
// --data-dir) or the combination of files and --carve-train does not make a train and a dev set.
FinetuneData prepare_task_data(const FinetuneDataConfig& cfg);

}  // namespace moe
