// report.cpp — see report.h.
#include "eval/report.h"

#include <algorithm>
#include <cstdint>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "dist/dist.h"
#include "io/text_io.h"
#include "io/json.h"

namespace moe {

// -------------------------------------------------------------------------------------------------
// progress bar

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && total > 0 && is_root()),
      tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

static std::string format_seconds(double s) {
  if (!std::isfinite(s)) return "?";
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) / 60) % 60);
  return buf;
}

void Progress::draw(int64_t done, bool final_line) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = done / std::max(elapsed, 1e-9);
  const double eta = (total_ - done) / std::max(rate, 1e-9);
  const int width = 24, filled = static_cast<int>(width * done / std::max<int64_t>(total_, 1));
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), ' ');
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s [%s] %lld/%lld  %.1f items/s  %s %s", label_.c_str(),
                bar.c_str(), static_cast<long long>(done), static_cast<long long>(total_), rate,
                final_line ? "took" : "ETA",
                format_seconds(final_line ? elapsed : eta).c_str());
  std::cerr << (tty_ ? "\r" : "") << buf << (tty_ && !final_line ? "" : "\n") << std::flush;
}

void Progress::update(int64_t done) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    draw(done, false);
  } else {
    const int fifth = static_cast<int>(5 * done / total_);
    if (fifth > last_fifth_ && done < total_) { last_fifth_ = fifth; draw(done, false); }
  }
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(total_, true);
}

// -------------------------------------------------------------------------------------------------
// summary rows

bool is_main_metric(const ResultRow& r) {
  if (r.task == "record") return r.metric == "em";
  return r.metric == "acc";
}

static void add_ppl_summary(ResultsFile* f, const std::string& setting) {
  double log_sum = 0.0;
  int64_t n = 0, tokens = 0;
  std::string files;
  for (const ResultRow& r : f->rows)
    if (r.task == "ppl" && r.setting == setting) {
      log_sum += std::log(r.mean);
      tokens += r.n;
      ++n;
      files += (files.empty() ? "" : ", ") + r.split;
    }
  if (n == 0) return;
  ResultRow s = f->rows.front();
  s.task = "ppl-" + setting;
  s.setting = setting;
  s.metric = "ppl";
  s.mean = std::exp(log_sum / n);  // geometric mean: each corpus counts once, whatever its size
  s.std = 0.0;
  s.std_err = 0.0;
  s.std_err_draws = 0.0;
  s.files.clear();
  for (const ResultRow& r : f->rows)
    if (r.task == "ppl" && r.setting == setting) s.files.insert(s.files.end(), r.files.begin(),
                                                                r.files.end());
  s.n = tokens;
  s.shots = 0;
  s.draws = 1;
  s.split = "";
  s.scoring = "";
  s.note = n > 1 ? "geometric mean over " + files : files;
  f->rows.push_back(s);
}

static void add_priming_summary(ResultsFile* f, const std::string& setting) {
  double sum = 0.0, var = 0.0, var_draws = 0.0;
  int n = 0;
  std::string tasks;
  for (const ResultRow& r : f->rows)
    if (r.setting == setting && is_main_metric(r) && r.task.find("-avg") == std::string::npos) {
      sum += r.mean;
      var += r.std_err * r.std_err;
      var_draws += r.std_err_draws * r.std_err_draws;
      ++n;
      tasks += (tasks.empty() ? "" : ",") + r.task;
    }
  if (n == 0) return;
  ResultRow s = f->rows.front();
  s.task = setting + "-avg";
  s.setting = setting;
  s.metric = "acc";
  s.mean = sum / n;
  s.std = 0.0;
  s.std_err = std::sqrt(var) / n;  // the tasks' errors as independent
  s.std_err_draws = std::sqrt(var_draws) / n;
  s.files.clear();
  s.demos_mean = std::numeric_limits<double>::quiet_NaN();
  s.demos_min = -1;
  s.n = n;
  s.shots = 0;
  s.draws = 1;
  s.split = "";
  s.scoring = f->scoring;
  s.note = "tasks: " + tasks;
  f->rows.push_back(s);
}

void add_summary_rows(ResultsFile* f) {
  if (f->rows.empty()) return;
  add_ppl_summary(f, "in-domain");
  add_ppl_summary(f, "out-of-domain");
  add_priming_summary(f, "zero-shot");
  add_priming_summary(f, "few-shot");
}

// -------------------------------------------------------------------------------------------------
// JSON out

static std::string string_array(const std::vector<std::string>& xs) {
  std::string o = "[";
  for (size_t i = 0; i < xs.size(); ++i) o += (i ? ", " : "") + json_quote(xs[i]);
  return o + "]";
}

static std::string row_json(const ResultRow& r) {
  std::ostringstream o;
  o << "{\"task\": " << json_quote(r.task) << ", \"setting\": " << json_quote(r.setting)
    << ", \"shots\": " << r.shots << ", \"draws\": " << r.draws
    << ", \"metric\": " << json_quote(r.metric) << ", \"mean\": " << json_number(r.mean)
    << ", \"std\": " << json_number(r.std) << ", \"stderr\": " << json_number(r.std_err)
    << ", \"stderr_draws\": " << json_number(r.std_err_draws) << ", \"n\": " << r.n
    << ", \"limit\": " << r.limit << ", \"scoring\": " << json_quote(r.scoring)
    << ", \"checkpoint\": " << json_quote(r.checkpoint)
    << ", \"training_compute\": " << json_number(r.training_compute)
    << ", \"split\": " << json_quote(r.split) << ", \"files\": " << string_array(r.files)
    << ", \"skipped\": " << r.skipped
    << ", \"demos_complete_mean\": " << json_number(r.demos_mean)
    << ", \"demos_complete_min\": " << (r.demos_min >= 0 ? std::to_string(r.demos_min) : "null")
    << ", \"items_per_s\": " << json_number(r.items_per_s) << ", \"note\": " << json_quote(r.note)
    << "}";
  return o.str();
}

std::string results_json(const ResultsFile& f) {
  std::ostringstream o;
  o << "{\n  \"format\": \"moe-gpt eval results\",\n  \"version\": 2,\n"
    << "  \"checkpoint\": " << json_quote(f.checkpoint) << ",\n"
    << "  \"training_compute\": " << json_number(f.training_compute) << ",\n"
    << "  \"tokens\": " << f.tokens << ",\n  \"step\": " << f.step << ",\n"
    << "  \"scoring\": " << json_quote(f.scoring) << ",\n"
    << "  \"winogrande_mode\": " << json_quote(f.winogrande_mode) << ",\n"
    << "  \"eval_capacity_fraction\": " << json_number(f.eval_capacity_fraction) << ",\n"
    << "  \"eval_capacity_rule\": " << json_quote(f.eval_capacity_rule) << ",\n"
    << "  \"limit\": " << f.limit << ",\n  \"settings\": {";
  for (size_t i = 0; i < f.settings.size(); ++i)
    o << (i ? ", " : "") << json_quote(f.settings[i].first) << ": "
      << json_quote(f.settings[i].second);
  o << "},\n  \"rows\": [";
  for (size_t i = 0; i < f.rows.size(); ++i)
    o << (i ? ",\n    " : "\n    ") << row_json(f.rows[i]);
  o << "\n  ]\n}\n";
  return o.str();
}

void write_results(const std::string& path, const ResultsFile& f) {
  write_file_atomic(path, results_json(f));
}

// -------------------------------------------------------------------------------------------------
// JSON in (for --speedup)

static double number_or_nan(const Json* v) {
  return (v && v->is_number()) ? v->as_number() : std::numeric_limits<double>::quiet_NaN();
}
static int64_t int_or_zero(const Json* v) {
  const double x = number_or_nan(v);
  return std::isfinite(x) ? static_cast<int64_t>(x) : 0;
}
static std::string string_or_empty(const Json* v) {
  return (v && v->is_string()) ? v->as_string() : std::string();
}

ResultsFile read_results(const std::string& path) {
  Json j;
  try {
    j = parse_json(read_text_file(path));
  } catch (const Error& e) {
    CHECK(false, path, ": not a JSON results file (", e.what(), ")");
  }
  CHECK(j.is_object() && string_or_empty(j.find("format")) == "moe-gpt eval results", path,
        ": not a moe-gpt eval results file. HINT: pass the JSON files `eval` wrote");
  ResultsFile f;
  f.version = static_cast<int>(int_or_zero(j.find("version")));
  f.checkpoint = string_or_empty(j.find("checkpoint"));
  f.training_compute = number_or_nan(j.find("training_compute"));
  f.tokens = j.find("tokens") ? int_or_zero(j.find("tokens")) : -1;
  f.step = j.find("step") ? int_or_zero(j.find("step")) : -1;
  f.scoring = string_or_empty(j.find("scoring"));
  f.winogrande_mode = string_or_empty(j.find("winogrande_mode"));
  f.eval_capacity_rule = string_or_empty(j.find("eval_capacity_rule"));
  f.limit = int_or_zero(j.find("limit"));
  if (const Json* st = j.find("settings"); st && st->is_object())
    for (const auto& [k, v] : st->as_object()) f.settings.emplace_back(k, string_or_empty(&v));
  const Json* rows = j.find("rows");
  CHECK(rows && rows->is_array(), path, ": no \"rows\" array");
  for (const Json& r : rows->as_array()) {
    ResultRow row;
    row.task = string_or_empty(r.find("task"));
    row.setting = string_or_empty(r.find("setting"));
    row.metric = string_or_empty(r.find("metric"));
    row.mean = number_or_nan(r.find("mean"));
    row.std = number_or_nan(r.find("std"));
    row.std_err = number_or_nan(r.find("stderr"));
    row.std_err_draws = number_or_nan(r.find("stderr_draws"));
    row.limit = r.find("limit") ? int_or_zero(r.find("limit")) : f.limit;
    if (const Json* fs = r.find("files"); fs && fs->is_array())
      for (const Json& x : fs->as_array()) row.files.push_back(string_or_empty(&x));
    row.demos_mean = number_or_nan(r.find("demos_complete_mean"));
    const Json* dm = r.find("demos_complete_min");
    row.demos_min = (dm && dm->is_number()) ? static_cast<int>(int_or_zero(dm)) : -1;
    row.n = int_or_zero(r.find("n"));
    row.shots = static_cast<int>(int_or_zero(r.find("shots")));
    row.draws = static_cast<int>(int_or_zero(r.find("draws")));
    row.skipped = int_or_zero(r.find("skipped"));
    row.items_per_s = number_or_nan(r.find("items_per_s"));
    row.split = string_or_empty(r.find("split"));
    row.scoring = string_or_empty(r.find("scoring"));
    row.checkpoint = f.checkpoint;
    row.training_compute = f.training_compute;
    row.note = string_or_empty(r.find("note"));
    f.rows.push_back(row);
  }
  return f;
}

// -------------------------------------------------------------------------------------------------
// table

std::string results_table(const std::vector<ResultRow>& rows) {
  std::ostringstream o;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-18s %-13s %5s %5s %-8s %10s %8s %8s %9s  %s\n", "task",
                "setting", "shots", "draws", "metric", "mean", "stderr", "std", "n", "note");
  o << buf << std::string(110, '-') << "\n";
  for (const ResultRow& r : rows) {
    const bool pct = r.metric != "ppl";
    const double scale = pct ? 100.0 : 1.0;
    // A few-shot row's uncertainty has two parts (items, draws): the table shows both combined.
    const double se = std::sqrt(r.std_err * r.std_err + r.std_err_draws * r.std_err_draws);
    std::snprintf(buf, sizeof buf, "%-18s %-13s %5d %5d %-8s %9.2f%s %8.2f %8.2f %9lld  %s\n",
                  r.task.c_str(), r.setting.c_str(), r.shots, r.draws, r.metric.c_str(),
                  r.mean * scale, pct ? "%" : " ", se * scale, r.std * scale,
                  static_cast<long long>(r.n), r.note.c_str());
    o << buf;
  }
  return o.str();
}

}  // namespace moe
