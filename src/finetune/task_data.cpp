// task_data.cpp — task table, line reader (plain or .xz), jsonl/tsv record parsers, carving
// (see task_data.h). SPEC §7; MANIFEST.md "What is missing, and what to do instead".
#include "finetune/task_data.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "core/check.h"
#include "core/rng.h"
#include "io/json.h"

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
    accepted += str_cat(k ? ", " : "", task.labels[k], " (or ", k, ")");
  CHECK(false, where, ": label '", raw, "' is not a ", task.name, " label. HINT: accepted: ",
        accepted, task.kind == TaskKind::MNLI ? ", and - for 'no gold label' (skipped)" : "");
  return kSkip;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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
    if (v->is_number() && v->as_number() == static_cast<int64_t>(v->as_number()))
      return std::to_string(static_cast<int64_t>(v->as_number()));
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

void for_each_line(const std::string& path,
                   const std::function<void(const std::string&, int64_t)>& fn) {
  CHECK(fs::is_regular_file(path), "cannot open ", path,
        ": no such file. HINT: check --train-file / --dev-file");
  const bool xz = ends_with(path, ".xz");
  FILE* f = xz ? popen(("xz -dc " + shell_quote(path)).c_str(), "r") : std::fopen(path.c_str(), "rb");
  CHECK(f != nullptr, "cannot open ", path, xz ? " through `xz -dc`" : "");
  char* buf = nullptr;
  size_t cap = 0;
  int64_t no = 0;
  try {
    for (ssize_t n; (n = getline(&buf, &cap, f)) >= 0;) {
      std::string line(buf, static_cast<size_t>(n));
      if (!line.empty() && line.back() == '\n') line.pop_back();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      fn(line, ++no);
    }
  } catch (...) {
    std::free(buf);
    if (xz) pclose(f); else std::fclose(f);
    throw;
  }
  std::free(buf);
  if (!xz) { std::fclose(f); return; }
  const int status = pclose(f);
  CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "`xz -dc ", path,
        "` failed (exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
        "). HINT: is the xz tool installed (127 = not found)? Test the file with `xz -t ", path, "`");
}

TaskFile read_task_file(const TaskInfo& task, const std::string& path) {
  TaskFile out;
  out.path = path;
  const FieldNames names = field_names(task.kind);
  // One pass (an .xz file is decompressed once): the first non-blank line decides the format.
  enum { UNKNOWN, JSONL, TSV } format = UNKNOWN;
  TsvColumns cols;
  for_each_line(path, [&](const std::string& line, int64_t no) {
    const size_t at = line.find_first_not_of(" \t");
    if (at == std::string::npos) return;  // blank lines carry no record
    if (format == UNKNOWN) {
      format = line[at] == '{' ? JSONL : TSV;
      if (format == TSV) {  // the first line of a TSV is its header
        cols = tsv_columns(names, line, str_cat(path, ":", no));
        return;
      }
    }
    const std::string where = str_cat(path, ":", no);
    if (format == JSONL) add_json_record(task, names, line, where, no, &out);
    else add_tsv_record(task, names, cols, line, where, no, &out);
  });
  CHECK(format != UNKNOWN, path, " is empty. HINT: expected JSON lines or a TSV with a header row");
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

FinetuneData prepare_task_data(const FinetuneDataConfig& cfg) {
  FinetuneData d;
  d.task = task_info(cfg.task);
  const bool has_train = !cfg.train_file.empty(), has_dev = !cfg.dev_file.empty();
  if (cfg.carve_train > 0) {
    CHECK(has_train != has_dev, "--carve-train splits ONE file into train and dev, but ",
          has_train ? "both --train-file and --dev-file were" : "neither --train-file nor --dev-file was",
          " given. HINT: ", files_hint(d.task.kind));
    TaskFile f = read_task_file(d.task, has_train ? cfg.train_file : cfg.dev_file);
    carve_split(f.examples, cfg.carve_train, cfg.carve_seed, &d.train, &d.dev);
    d.skipped_no_gold = f.skipped_no_gold;
    d.carve_from = f.path;
    d.notes.push_back(str_cat("no separate train split: carved ", d.train.size(), " train / ",
                              d.dev.size(), " dev examples out of ", f.path,
                              " by a seeded shuffle (--carve-train ", cfg.carve_train,
                              ", --carve-seed ", cfg.carve_seed, ")"));
  } else {
    CHECK(has_train && has_dev, "fine-tuning needs --train-file and --dev-file (or one file with "
          "--carve-train N). HINT: ", files_hint(d.task.kind));
    CHECK(!fs::equivalent(cfg.train_file, cfg.dev_file), "--train-file and --dev-file are the same "
          "file (", cfg.train_file, "): dev accuracy would be measured on training data. HINT: "
          "give one file with --carve-train N to split it");
    TaskFile tr = read_task_file(d.task, cfg.train_file);
    TaskFile dv = read_task_file(d.task, cfg.dev_file);
    d.train = std::move(tr.examples);
    d.dev = std::move(dv.examples);
    d.skipped_no_gold = tr.skipped_no_gold + dv.skipped_no_gold;
    const std::string trn = fs::path(cfg.train_file).filename().string();
    if (d.task.kind == TaskKind::MNLI && trn.find("mismatched") != std::string::npos)
      d.notes.push_back("MNLI has no train split here (MANIFEST.md): training on dev_mismatched (" +
                        cfg.train_file + "), evaluating on dev_matched (" + cfg.dev_file + ")");
  }
  if (d.skipped_no_gold > 0)
    d.notes.push_back(str_cat("skipped ", d.skipped_no_gold,
                              " records whose gold label is '-' (no annotator consensus)"));
  apply_limit(&d.train, cfg.limit_train, "train", &d);
  apply_limit(&d.dev, cfg.limit_dev, "dev", &d);
  return d;
}

}  // namespace moe
