// run_log.cpp — log.jsonl: start, trim on resume, read back (see run_log.h).
#include "train/run_log.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "io/json.h"
#include "io/text_io.h"

namespace fs = std::filesystem;

namespace moe {

std::string json_fixed(const char* fmt, double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void start_log(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  const int err = errno;
  CHECK(f != nullptr && std::fclose(f) == 0, "cannot write the training log ", path, ": ",
        std::strerror(err), ". HINT: check that --out-dir is writable and the disk not full");
}

namespace {

// The "step" of one log line, or -1 (with *why set) when the line is not a JSON object with a
// non-negative integer "step".
int64_t step_of(const std::string& line, std::string* why) {
  try {
    const Json j = parse_json(line);
    const Json* step = j.find("step");
    if (step == nullptr || !step->is_number()) {
      *why = "no numeric \"step\" field";
      return -1;
    }
    const double s = step->as_number();
    if (!(s >= 0 && s <= 9e15 && s == std::floor(s))) {
      *why = str_cat("\"step\" is ", s, ", not a step number");
      return -1;
    }
    return static_cast<int64_t>(s);
  } catch (const Error& e) {
    *why = str_cat("not valid JSON (", e.what(), ")");
    return -1;
  }
}

}  // namespace

LogTrim trim_log_for_resume(const std::string& path, int64_t last_step) {
  LogTrim r;
  std::error_code ec;
  if (!fs::exists(path, ec)) return r;
  const std::string text = read_text_file(path);
  const bool ends_in_newline = !text.empty() && text.back() == '\n';
  const std::vector<std::string> lines = split_lines(text);
  std::string kept;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::string why;
    const int64_t step = step_of(lines[i], &why);
    if (step < 0) {
      // Only the last line can be half-written: appends go to the end, one line at a time.
      if (i + 1 == lines.size()) {
        r.dropped_partial = true;
        continue;
      }
      CHECK(false, where_str(path, static_cast<int64_t>(i) + 1), ": damaged log line: ", why,
            ". HINT: delete that line (or the whole log.jsonl; the checkpoint does not need it) "
            "and resume again");
    }
    if (step > last_step) {
      ++r.dropped;
      continue;
    }
    kept += lines[i] + '\n';
    ++r.kept;
  }
  // Rewrite only when something changed, so a clean log is never touched.
  if (r.dropped > 0 || r.dropped_partial || (!text.empty() && !ends_in_newline) ||
      kept.size() != text.size())
    write_file_atomic(path, kept);
  return r;
}

std::vector<LogPoint> read_log_points(const std::string& path) {
  std::vector<LogPoint> points;
  std::error_code ec;
  if (!fs::exists(path, ec)) return points;
  const std::string text = read_text_file(path);
  for (const std::string& line : split_lines(text)) {
    try {
      const Json j = parse_json(line);
      auto num = [&j](const char* key) {
        const Json* v = j.find(key);
        return v != nullptr && v->is_number() ? v->as_number() : NAN;
      };
      const double step = num("step");
      if (!(step >= 0 && step <= 9e15)) continue;
      LogPoint p;
      p.step = static_cast<int64_t>(step);
      p.tokens = num("tokens");
      p.compute = num("compute_paper_flops");
      p.loss = num("loss");
      p.val_loss = num("val_loss");
      points.push_back(p);
    } catch (const Error&) {
      continue;  // see the header: skipped, not fatal
    }
  }
  return points;
}

}  // namespace moe
