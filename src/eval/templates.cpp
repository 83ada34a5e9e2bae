// templates.cpp — see templates.h (and notes/eval.md for the templates with examples).
#include "eval/templates.h"

#include <cctype>

#include "core/check.h"
#include "eval/metrics.h"
#include "io/text_io.h"

namespace moe {

WinoGrandeMode parse_winogrande_mode(const std::string& s) {
  if (s == "full") return WinoGrandeMode::Full;
  if (s == "partial") return WinoGrandeMode::Partial;
  CHECK(false, "unknown WinoGrande mode '", s, "'. HINT: --winogrande-mode full|partial");
}

const char* winogrande_mode_name(WinoGrandeMode m) {
  return m == WinoGrandeMode::Full ? "full" : "partial";
}

// -------------------------------------------------------------------------------------------------
// text helpers

std::string hellaswag_clean(const std::string& s) {
  std::string no_tags;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      const size_t close = s.find(']', i);
      if (close != std::string::npos) { i = close; continue; }
    }
    no_tags.push_back(s[i]);
  }
  std::string out;  // collapse runs of spaces left where the markers were
  for (const char c : no_tags)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out.push_back(c);
  return trim_ascii(out);
}

std::string capitalize_first(const std::string& s) {
  std::string out = s;
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string record_passage(const std::string& raw) {
  std::string out;
  bool next_is_highlight = false;
  for (const std::string& line0 : split_lines(raw)) {
    const std::string line = trim_ascii(line0);
    if (line.empty()) continue;
    if (line == "@highlight") { next_is_highlight = true; continue; }
    std::string piece = line;
    const char last = piece.back();
    if (next_is_highlight && last != '.' && last != '!' && last != '?') piece += '.';
    next_is_highlight = false;
    out += (out.empty() ? "" : " ") + piece;
  }
  return out;
}

// Items whose candidates share one context and differ in " " + choice.
static TaskItem shared_context_item(const std::string& context,
                                    const std::vector<std::string>& choices, int gold,
                                    const std::string& where) {
  TaskItem item;
  for (const std::string& c : choices) item.candidates.push_back({context, " " + c});
  item.gold = gold;
  item.demo = context + " " + choices.at(static_cast<size_t>(gold));
  item.where = where;
  return item;
}

// -------------------------------------------------------------------------------------------------
// one function per task

TaskItem hellaswag_item(const HellaSwagRecord& r) {
  std::string context = r.ctx_line;
  std::vector<std::string> endings = r.endings;
  if (r.from_jsonl) {
    // activity_label: ctx_a Ctx_b — ctx_b starts a new sentence in the data but is lower-cased.
    const std::string a = hellaswag_clean(r.ctx_a), b = capitalize_first(hellaswag_clean(r.ctx_b));
    context = hellaswag_clean(r.activity_label) + ": " + a + (b.empty() ? "" : " " + b);
    for (std::string& e : endings) e = hellaswag_clean(e);
  }
  return shared_context_item(context, endings, r.label, r.where);
}

TaskItem piqa_item(const PiqaRecord& r) {
  return shared_context_item(r.goal, {r.sol1, r.sol2}, r.label, r.where);
}

TaskItem storycloze_item(const StoryClozeRecord& r) {
  const std::string story =
      r.sentences[0] + " " + r.sentences[1] + " " + r.sentences[2] + " " + r.sentences[3];
  return shared_context_item(story, {r.endings[0], r.endings[1]}, r.answer - 1, r.where);
}

TaskItem openbookqa_item(const OpenBookQARecord& r) {
  return shared_context_item(r.stem, r.choices, r.gold, r.where);
}

TaskItem winogrande_item(const WinoGrandeRecord& r, WinoGrandeMode mode) {
  const size_t blank = r.sentence.find('_');
  CHECK(blank != std::string::npos, r.where, ": the WinoGrande sentence has no '_'");
  const std::string before = r.sentence.substr(0, blank), after = r.sentence.substr(blank + 1);
  TaskItem item;
  item.where = r.where;
  item.gold = r.answer - 1;
  for (const std::string& option : {r.option1, r.option2}) {
    if (mode == WinoGrandeMode::Partial) {
      CHECK(!trim_ascii(after).empty(), r.where, ": partial scoring needs text after the blank. "
            "HINT: use --winogrande-mode full");
      item.candidates.push_back({before + option, after});
    } else {
      // The context stops before the space that precedes the blank, so that the option's first
      // token keeps its leading space (" Sarah"), as it would in the whole sentence.
      const std::string context =
          trim_ascii(before).empty() ? "" : before.substr(0, before.find_last_not_of(' ') + 1);
      item.candidates.push_back({context, before.substr(context.size()) + option + after});
    }
  }
  item.continuation_only = (mode == WinoGrandeMode::Partial);
  const Candidate& g = item.candidates[static_cast<size_t>(item.gold)];
  item.demo = g.context + g.continuation;
  return item;
}

TaskItem record_item(const ReCoRDRecord& r) {
  const std::string passage = record_passage(r.passage);
  const size_t at = r.query.find("@placeholder");
  CHECK(at != std::string::npos, r.where, ": the ReCoRD query has no @placeholder");
  const auto fill = [&](const std::string& entity) {
    std::string q = r.query;
    return q.replace(at, std::string("@placeholder").size(), entity);
  };
  TaskItem item;
  item.where = r.where;
  item.answers = r.answers;
  for (const std::string& e : r.entities) {
    item.candidates.push_back({passage, " " + fill(e)});
    item.labels.push_back(e);
    if (item.gold < 0 && max_exact_match(e, r.answers) > 0.0)
      item.gold = static_cast<int>(item.candidates.size()) - 1;
  }
  item.demo = passage + " " + fill(r.answers.at(0));
  return item;
}

}  // namespace moe
