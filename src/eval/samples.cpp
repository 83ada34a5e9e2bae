// samples.cpp — see samples.h.
#include "eval/samples.h"

#include <filesystem>
#include <sstream>

#include "core/check.h"
#include "eval/metrics.h"
#include "io/json.h"

namespace moe {

namespace {

std::string strings_json(const std::vector<std::string>& xs) {
  std::string o = "[";
  for (size_t i = 0; i < xs.size(); ++i) o += (i ? ", " : "") + json_quote(xs[i]);
  return o + "]";
}

template <typename T>
std::string numbers_json(const std::vector<T>& xs) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < xs.size(); ++i) o << (i ? ", " : "") << json_number(double(xs[i]));
  o << "]";
  return o.str();
}

}  // namespace

std::string sample_json(const TaskData& task, const ItemRecord& r) {
  const TaskItem& item = task.items.at(static_cast<size_t>(r.index));
  const std::vector<TaskItem>& pool = task.pool_is_eval ? task.items : task.pool;
  std::string prompt;
  for (const int64_t d : r.demos) prompt += pool.at(static_cast<size_t>(d)).demo + "\n";
  bool shared = true;
  for (const Candidate& c : item.candidates) shared = shared && c.context == item.candidates[0].context;
  if (shared) prompt += item.candidates[0].context;
  std::vector<std::string> choices;
  for (const Candidate& c : item.candidates)
    choices.push_back(shared ? c.continuation : c.context + c.continuation);
  std::ostringstream o;
  o << "{\"task\": " << json_quote(task.name) << ", \"draw\": " << r.draw
    << ", \"index\": " << r.index << ", \"where\": " << json_quote(item.where)
    << ", \"prompt\": " << json_quote(prompt) << ", \"choices\": " << strings_json(choices)
    << ", \"demos\": " << numbers_json(r.demos) << ", \"scores\": {";
  for (size_t k = 0; k < r.scores.size(); ++k)
    o << (k ? ", " : "") << json_quote(scoring_name(kAllScorings[k])) << ": "
      << numbers_json(r.scores[k]);
  const bool correct = task.is_record
      ? max_exact_match(item.labels.at(static_cast<size_t>(r.prediction)), item.answers) > 0.0
      : r.prediction == item.gold;
  o << "}, \"prediction\": " << r.prediction << ", \"gold\": " << item.gold
    << ", \"correct\": " << (correct ? "true" : "false")
    << ", \"demos_complete\": " << r.demos_complete
    << ", \"truncated_tokens\": " << r.dropped_tokens;
  if (task.is_record)
    o << ", \"answers\": " << strings_json(item.answers)
      << ", \"entities\": " << strings_json(item.labels);
  o << "}";
  return o.str();
}

SamplesWriter::SamplesWriter(const TaskData& task, const std::string& path)
    : task_(task), path_(path), tmp_(path + ".tmp") {
  std::error_code ec;
  if (std::filesystem::path(path).has_parent_path())
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  CHECK(out_.good(), "--log-samples: cannot write '", tmp_, "'. HINT: check that --out-dir is "
        "writable");
}

SamplesWriter::~SamplesWriter() {
  if (done_) return;
  out_.close();
  std::error_code ec;
  std::filesystem::remove(tmp_, ec);
}

void SamplesWriter::write(const ItemRecord& r) {
  out_ << sample_json(task_, r) << '\n';
  CHECK(out_.good(), "--log-samples: error while writing '", tmp_, "' (disk full?)");
}

void SamplesWriter::finish() {
  out_.flush();
  CHECK(out_.good(), "--log-samples: error while writing '", tmp_, "' (disk full?)");
  out_.close();
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  CHECK(!ec, "--log-samples: cannot rename '", tmp_, "' to '", path_, "': ", ec.message());
  done_ = true;
}

}  // namespace moe
