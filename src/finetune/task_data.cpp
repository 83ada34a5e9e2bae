// task_data.cpp — task table, jsonl/tsv record parsers, carving, the data folder's default
// files (see task_data.h). SPEC §7; MANIFEST.md "What is missing, and what to do instead".
#include "finetune/task_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/check.h"
#include "core/rng.h"
#include "io/json.h"
#include "io/text_io.h"

namespace fs = std::filesystem;

namespace moe {

namespace {

// Field names accepted for each part of a record, first match wins. The data folder's MNLI
// files say premise/hypothesis/label; MultiNLI and GLUE say sentence1/sentence2/gold_label.
struct FieldNames {
  std::vector<std::string> a, b, label;
};

FieldNames field_names(TaskKind k) {
  switch (k) {
    case TaskKind::BoolQ: return {{"passage"}, {"question"}, {"answer", "label"}};
    case TaskKind::MNLI:
      return {{"premise", "sentence1"}, {"hypothesis", "sentence2"}, {"gold_label", "label"}};
    case TaskKind::SST2: return {{"sentence"}, {}, {"label"}};
  }
  return {};
}

constexpr int kSkip = -1;  // parse_label's answer for "no gold label" records

// Label text -> class id, or kSkip. `where` is "FILE:LINE" for the message.
int parse_label(const TaskInfo& task, const std::string& raw, const std::string& where) {
  if (task.kind == TaskKind::MNLI && (raw == "-" || raw == "-1")) return kSkip;
  for (int k = 0; k < task.num_classes(); ++k)
    if (raw == task.labels[k] || raw == std::to_string(k)) return k;
  if (task.kind == TaskKind::BoolQ) {  // JSON true/false arrive as "true"/"false"; Python's too
    if (raw == "True") return 1;
    if (raw == "False") return 0;
  }
  std::string accepted;
  for (int k = 0; k < task.num_classes(); ++k)
    accepted += str_cat(k ? ", " : "", task.labels[k],  // SST-2's labels are their numbers
                        task.labels[k] == std::to_string(k) ? "" : str_cat(" (or ", k, ")"));
  CHECK(false, where, ": label '", raw, "' is not a ", task.name, " label. HINT: accepted: ",
        accepted, task.kind == TaskKind::MNLI ? ", and - for 'no gold label' (skipped)" : "");
  return kSkip;
}

// ---- JSON lines ---------------------------------------------------------------------------

std::string json_text_field(const Json& obj, const std::vector<std::string>& names,
                            const std::string& where) {
  for (const std::string& n : names) {
    const Json* v = obj.find(n);
    if (!v) continue;
    CHECK(v->is_string(), where, ": field \"", n, "\" must be a string, got ",
          v->kind_name());
    return v->as_string();
  }
  CHECK(false, where, ": record has no field \"", names[0], "\"",
        names.size() > 1 ? str_cat(" (or \"", names[1], "\")") : std::string(),
        ". HINT: is this the right --task for this file?");
  return {};
}

// A JSON label (string, boolean or integer) as the text parse_label reads.
std::string json_label_text(const Json& obj, const std::vector<std::string>& names,
                            const std::string& where) {
  for (const std::string& n : names) {
    const Json* v = obj.find(n);
    if (!v) continue;
    if (v->is_string()) return v->as_string();
    if (v->is_bool()) return v->as_bool() ? "true" : "false";
    if (v->is_number()) {
      // Cast only a whole number far inside int64's range: converting 1e300 (or 2^63) to an
      // integer is undefined behaviour. Any other number keeps its JSON spelling, which matches
      // no label, so parse_label rejects it naming the value and the accepted labels.
      const double x = v->as_number();
      if (std::fabs(x) < 1e15 && x == std::floor(x))
        return std::to_string(static_cast<int64_t>(x));
      return json_number(x);
    }
    CHECK(false, where, ": label field \"", n, "\" must be a string, boolean or integer, got ",
          v->kind_name());
  }
  CHECK(false, where, ": record has no label field \"", names[0], "\"",
        names.size() > 1 ? str_cat(" (or \"", names[1], "\")") : std::string());
  return {};
}

// One JSON-lines record into `out` (blank lines were skipped by the caller).
void add_json_record(const TaskInfo& task, const FieldNames& names, const std::string& line,
                     const std::string& where, int64_t no, TaskFile* out) {
  Json obj;
  try {
    obj = parse_json(line);
  } catch (const Error& e) {
    // e.what() is "column C: <what>": the reader saw one line, so the file and line come from here.
    CHECK(false, where, ": invalid JSON at ", e.what(),
          ". HINT: each line must be one JSON object");
  }
  CHECK(obj.is_object(), where, ": expected a JSON object, got ", obj.kind_name());
  ++out->records;
  Example ex;
  ex.line = no;
  ex.label = parse_label(task, json_label_text(obj, names.label, where), where);
  if (ex.label == kSkip) { ++out->skipped_no_gold; return; }
  ex.text_a = json_text_field(obj, names.a, where);
  if (!names.b.empty()) ex.text_b = json_text_field(obj, names.b, where);
  out->examples.push_back(std::move(ex));
}

// ---- TSV with a header row ------------------------------------------------------------------

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> cols;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return cols;
    start = tab + 1;
  }
}

// Index of the first of `names` in the header, or CHECK-fail naming what the header holds.
size_t column_of(const std::vector<std::string>& header, const std::vector<std::string>& names,
                 const std::string& where) {
  for (const std::string& n : names)
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == n) return i;
  std::string have;
  for (size_t i = 0; i < header.size() && i < 12; ++i) have += (i ? ", " : "") + header[i];
  CHECK(false, where, ": the header has no column \"", names[0], "\"",
        names.size() > 1 ? str_cat(" (or \"", names[1], "\")") : std::string(), "; it has: ",
        have, ". HINT: a TSV needs a header row naming its columns, as GLUE's files have");
  return 0;
}

// Columns of a TSV file, found by name in its header row.
struct TsvColumns {
  size_t n = 0, a = 0, b = 0, label = 0;
};

TsvColumns tsv_columns(const FieldNames& names, const std::string& header_line,
                       const std::string& where) {
  const std::vector<std::string> header = split_tabs(header_line);
  TsvColumns c;
  c.n = header.size();
  c.a = column_of(header, names.a, where);
  if (!names.b.empty()) c.b = column_of(header, names.b, where);
  c.label = column_of(header, names.label, where);
  return c;
}

void add_tsv_record(const TaskInfo& task, const FieldNames& names, const TsvColumns& c,
                    const std::string& line, const std::string& where, int64_t no, TaskFile* out) {
  const std::vector<std::string> cols = split_tabs(line);
  CHECK(cols.size() == c.n, where, ": ", cols.size(), " tab-separated fields, but the header has ",
        c.n, ". HINT: a tab inside a text field breaks the row");
  ++out->records;
  Example ex;
  ex.line = no;
  ex.label = parse_label(task, cols[c.label], where);
  if (ex.label == kSkip) { ++out->skipped_no_gold; return; }
  ex.text_a = cols[c.a];
  if (!names.b.empty()) ex.text_b = cols[c.b];
  out->examples.push_back(std::move(ex));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TaskInfo task_info(const std::string& name) {
  if (name == "boolq") return {TaskKind::BoolQ, name, {"false", "true"}};
  if (name == "mnli") return {TaskKind::MNLI, name, {"entailment", "neutral", "contradiction"}};
  if (name == "sst2") return {TaskKind::SST2, name, {"0", "1"}};
  CHECK(false, "unknown fine-tuning task '", name, "'. HINT: one of boolq|mnli|sst2");
  return {};
}

TaskFile read_task_file(const TaskInfo& task, const std::string& path) {
  TaskFile out;
  out.path = path;
  const FieldNames names = field_names(task.kind);
  // read_text_file drops a UTF-8 byte-order mark (Windows editors write one): the first header
  // or record reads as if it were not there.
  const std::vector<std::string> lines = split_lines(read_text_file(path));
  // The first non-blank line decides the format: '{' is JSON lines, anything else a TSV header.
  enum { UNKNOWN, JSONL, TSV } format = UNKNOWN;
  TsvColumns cols;
  int64_t header_line = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const int64_t no = static_cast<int64_t>(i) + 1;
    const size_t at = line.find_first_not_of(" \t");
    if (at == std::string::npos) continue;  // blank lines carry no record
    const std::string where = where_str(path, no);
    if (format == UNKNOWN) {
      format = line[at] == '{' ? JSONL : TSV;
      if (format == TSV) {  // the first line of a TSV is its header
        cols = tsv_columns(names, line, where);
        header_line = no;
        continue;
      }
    }
    if (format == JSONL) add_json_record(task, names, line, where, no, &out);
    else add_tsv_record(task, names, cols, line, where, no, &out);
  }
  CHECK(format != UNKNOWN, path, " is empty (no record). HINT: expected JSON lines or a TSV with "
        "a header row; check that the file was copied whole");
  CHECK(out.records > 0, path, " has a header row (line ", header_line, ") but no records. HINT: "
        "a TSV needs one example per line after its header; check that the file was copied whole");
  CHECK(!out.examples.empty(), path, " holds no labelled ", task.name, " example (", out.records,
        " records, ", out.skipped_no_gold, " without a gold label)");
  return out;
}

void carve_split(const std::vector<Example>& all, int64_t n_train, uint64_t seed,
                 std::vector<Example>* train, std::vector<Example>* dev) {
  const int64_t n = static_cast<int64_t>(all.size());
  CHECK(n_train >= 1 && n_train < n, "--carve-train ", n_train, " must be between 1 and ",
        n - 1, " (the file has ", n, " examples), so that both parts are non-empty");
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  Rng rng(seed);
  for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates with our own generator: same on every machine
    std::swap(idx[i], idx[static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  std::vector<int64_t> tr(idx.begin(), idx.begin() + n_train), dv(idx.begin() + n_train, idx.end());
  std::sort(tr.begin(), tr.end());  // file order inside each part: easy to inspect and diff
  std::sort(dv.begin(), dv.end());
  train->clear();
  dev->clear();
  for (int64_t i : tr) train->push_back(all[i]);
  for (int64_t i : dv) dev->push_back(all[i]);
}

// The HINT for a task whose files are missing: what the data folder holds for it (MANIFEST.md).
static std::string files_hint(TaskKind k) {
  switch (k) {
    case TaskKind::BoolQ:
      return "BoolQ has only a dev file here: --dev-file DATA/boolq/dev.jsonl.xz --carve-train 2270";
    case TaskKind::MNLI:
      return "MNLI has no train file here: --train-file DATA/mnli/dev_mismatched.jsonl.xz "
             "--dev-file DATA/mnli/dev_matched.jsonl.xz";
    case TaskKind::SST2:
      return "--train-file DATA/sst2/train.tsv.xz --dev-file DATA/sst2/dev.tsv";
  }
  return "";
}

static void apply_limit(std::vector<Example>* v, int64_t limit, const char* what, FinetuneData* d) {
  if (limit <= 0 || limit >= static_cast<int64_t>(v->size())) return;
  d->notes.push_back(str_cat("--limit-", what, " ", limit, ": using the first ", limit, " of ",
                             v->size(), " ", what, " examples"));
  v->resize(static_cast<size_t>(limit));
}

// `rel` under the data folder (or its .xz), or a CHECK failure naming the file, --data-dir and
// the file flags that replace it.
static std::string data_folder_file(const FinetuneDataConfig& c, const TaskInfo& task,
                                    const std::string& rel, const char* what) {
  const std::string path = (fs::path(c.data_dir) / rel).string();
  std::error_code ec;
  CHECK(fs::is_regular_file(path, ec) || fs::is_regular_file(path + ".xz", ec), task.name, " ",
        what, " file: neither ", path, " nor ", path, ".xz exists (no --train-file or --dev-file "
        "was given, so finetune reads the data folder, --data-dir ", c.data_dir, "). HINT: point "
        "--data-dir at the folder that ../shared/data/MANIFEST.md describes, or give the files: ",
        files_hint(task.kind));
  return resolve_data_file(path, str_cat(task.name, " ", what, " file"));
}

// With neither file given, the task's files in the data folder (see task_data.h); a note says
// which, and for BoolQ that the train part is carved by default. A carve of SST-2 or MNLI needs
// the one file named, so it gets no defaults (the check in prepare_task_data explains).
static void use_default_files(const TaskInfo& task, FinetuneDataConfig* c,
                              std::vector<std::string>* notes) {
  if (!c->train_file.empty() || !c->dev_file.empty() || c->data_dir.empty()) return;
  if (c->carve_train > 0 && task.kind != TaskKind::BoolQ) return;
  switch (task.kind) {
    case TaskKind::SST2:
      c->train_file = data_folder_file(*c, task, "sst2/train.tsv", "train");
      c->dev_file = data_folder_file(*c, task, "sst2/dev.tsv", "dev");
      break;
    case TaskKind::MNLI:
      c->train_file = data_folder_file(*c, task, "mnli/dev_mismatched.jsonl", "train");
      c->dev_file = data_folder_file(*c, task, "mnli/dev_matched.jsonl", "dev");
      break;
    case TaskKind::BoolQ:
      c->dev_file = data_folder_file(*c, task, "boolq/dev.jsonl", "dev");
      break;
  }
  const std::string train = c->train_file.empty() ? "" : "train " + c->train_file + ", ";
  notes->push_back(str_cat("no --train-file or --dev-file: reading the data folder (--data-dir ",
                           c->data_dir, "): ", train, "dev ", c->dev_file));
  if (task.kind == TaskKind::BoolQ && c->carve_train == 0) {
    c->carve_train = kBoolqDefaultCarve;
    notes->push_back(str_cat("BoolQ has no train split in the data folder: --carve-train ",
                             kBoolqDefaultCarve, " (the default when no file is given)"));
  }
}

FinetuneData prepare_task_data(const FinetuneDataConfig& cfg) {
  FinetuneData d;
  d.task = task_info(cfg.task);
  FinetuneDataConfig c = cfg;
  use_default_files(d.task, &c, &d.notes);
  const bool has_train = !c.train_file.empty(), has_dev = !c.dev_file.empty();
  if (c.carve_train > 0) {
    CHECK(has_train != has_dev, "--carve-train splits ONE file into train and dev, but ",
          has_train ? "both --train-file and --dev-file were" : "neither --train-file nor --dev-file was",
          " given. HINT: ", files_hint(d.task.kind));
    TaskFile f = read_task_file(d.task, has_train ? c.train_file : c.dev_file);
    carve_split(f.examples, c.carve_train, c.carve_seed, &d.train, &d.dev);
    d.skipped_no_gold = f.skipped_no_gold;
    d.carve_from = f.path;
    d.notes.push_back(str_cat("no separate train split: carved ", d.train.size(), " train / ",
                              d.dev.size(), " dev examples out of ", f.path,
                              " by a seeded shuffle (--carve-train ", c.carve_train,
                              ", --carve-seed ", c.carve_seed, ")"));
  } else {
    CHECK(has_train && has_dev, "fine-tuning needs --train-file and --dev-file (or one file with "
          "--carve-train N). HINT: ", files_hint(d.task.kind));
    std::error_code ec;  // a missing file is reported by the reader, naming it
    CHECK(!fs::equivalent(c.train_file, c.dev_file, ec), "--train-file and --dev-file are the "
          "same file (", c.train_file, "): dev accuracy would be measured on training data. "
          "HINT: give one file with --carve-train N to split it");
    TaskFile tr = read_task_file(d.task, c.train_file);
    TaskFile dv = read_task_file(d.task, c.dev_file);
    d.train = std::move(tr.examples);
    d.dev = std::move(dv.examples);
    d.skipped_no_gold = tr.skipped_no_gold + dv.skipped_no_gold;
    const std::string trn = fs::path(c.train_file).filename().string();
    if (d.task.kind == TaskKind::MNLI && trn.find("mismatched") != std::string::npos)
      d.notes.push_back("MNLI has no train split here (MANIFEST.md): training on dev_mismatched (" +
                        c.train_file + "), evaluating on dev_matched (" + c.dev_file + ")");
  }
  if (d.skipped_no_gold > 0)
    d.notes.push_back(str_cat("skipped ", d.skipped_no_gold,
                              " records whose gold label is '-' (no annotator consensus)"));
  apply_limit(&d.train, c.limit_train, "train", &d);
  apply_limit(&d.dev, c.limit_dev, "dev", &d);
  d.used = c;
  return d;
}

}  // namespace moe
