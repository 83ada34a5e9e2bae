// flags_help.cpp — the text the flag table produces for people: each program's --help (in that
// program's own words for a shared flag, flags.h ProgramHelp) and the effective-configuration
// table printed at start. Split from flags.cpp, the parser, which shares its helpers through
// flags_detail.h. Generated from the table, so neither can drift from what the parser accepts
// (notes/flags.md "Why one table").
#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/flags.h"
#include "io/flags_detail.h"

namespace moe {

using flags_detail::find_spec;
using flags_detail::has_range;
using flags_detail::preset_settings;
using flags_detail::program_help_row;
using flags_detail::range_text;

// ---- one program's wording of a flag ----------------------------------------------------------

const char* flag_help(const FlagSpec& s, Program prog) {
  const ProgramHelp* h = program_help_row(s, prog);
  return h ? h->help : s.help;
}

const char* flag_shown_default(const FlagSpec& s, Program prog) {
  const ProgramHelp* h = program_help_row(s, prog);
  return h && h->shown_default ? h->shown_default : s.default_value;
}


// ---- --help and the effective-config table -------------------------------------------------

namespace {

const char* program_summary(Program prog) {
  switch (prog) {
    case PROG_TRAIN: return "pretrain a dense or mixture-of-experts GPT language model";
    case PROG_EVAL: return "perplexity and zero-/few-shot priming evaluation of a checkpoint";
    case PROG_FINETUNE: return "fine-tune a checkpoint on a downstream task and score it";
  }
  return "";
}

std::string type_label(const FlagSpec& s) {
  switch (s.type) {
    case FlagType::Int: return " <int>";
    case FlagType::Float: return " <float>";
    case FlagType::Bool: return "";  // a bare --flag means true
    case FlagType::String: return " <string>";
    case FlagType::Enum: return " <choice>";
  }
  return "";
}

// The facts in parentheses after a flag's help: "(default: X; one of a|b; range [lo, hi];
// set by --model)", the last only when the program has the preset flag.
std::string facts(const FlagTable& table, const FlagSpec& s, Program prog, bool has_preset) {
  const char* dflt = flag_shown_default(s, prog);
  std::string d = str_cat("(default: ", dflt[0] ? dflt : "\"\"");
  if (s.type == FlagType::Enum) d += str_cat("; one of ", s.choices);
  if (has_range(s)) d += "; range " + range_text(s);
  bool from_preset = false;
  for (size_t i = 0; has_preset && i < table.n_presets; ++i)
    for (const auto& kv : preset_settings(table.presets[i])) from_preset |= kv.first == s.name;
  if (from_preset) d += str_cat("; set by --", table.preset_flag);
  return d + ")";
}

// Appends the help sentence and its facts, word-wrapped to `width` columns with continuation
// lines indented by `indent`. The facts are kept whole when they fit on a line, so that
// "(default: 0.1; range [0, 1))" is never split across lines.
void append_wrapped(std::string& out, const std::string& help, const std::string& facts,
                    size_t indent, size_t width) {
  std::vector<std::string> units;
  std::stringstream words(help);
  for (std::string w; words >> w;) units.push_back(w);
  if (indent + facts.size() <= width) {
    units.push_back(facts);
  } else {
    std::stringstream fw(facts);
    for (std::string w; fw >> w;) units.push_back(w);
  }
  size_t col = indent;
  for (size_t i = 0; i < units.size(); ++i) {
    if (i > 0 && col + 1 + units[i].size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (i > 0) {
      out += ' ', ++col;
    }
    out += units[i], col += units[i].size();
  }
  out += '\n';
}

}  // namespace

std::string usage_text(Program prog, const FlagTable& table) {
  const size_t kWidth = 100, kMaxLabel = 30;
  bool has_preset = table.preset_flag && (find_spec(table, table.preset_flag)->programs & prog);
  std::string out = str_cat(
      program_name(prog), " - ", program_summary(prog), "\n\nusage: ", program_name(prog),
      " [--flag value | --flag=value]... [--config FILE]\nprecedence: default < ",
      has_preset ? str_cat("--", table.preset_flag, " preset < ") : "",
      "--config file < command line, in any argument order\n");
  size_t label_w = 0;
  for (size_t i = 0; i < table.n_flags; ++i)
    if (table.flags[i].programs & prog)
      label_w = std::max(label_w, 4 + std::strlen(table.flags[i].name) +
                                      type_label(table.flags[i]).size());
  label_w = std::min(label_w, kMaxLabel) + 2;
  std::vector<std::string> groups;  // in order of first appearance in the table
  for (size_t i = 0; i < table.n_flags; ++i)
    if ((table.flags[i].programs & prog) &&
        std::find(groups.begin(), groups.end(), table.flags[i].group) == groups.end())
      groups.push_back(table.flags[i].group);
  for (const std::string& g : groups) {
    out += "\n" + g + ":\n";
    for (size_t i = 0; i < table.n_flags; ++i) {
      const FlagSpec& s = table.flags[i];
      if (!(s.programs & prog) || g != s.group) continue;
      std::string label = str_cat("  --", s.name, type_label(s));
      out += label;
      if (label.size() + 2 > label_w) out += "\n" + std::string(label_w, ' ');
      else out += std::string(label_w - label.size(), ' ');
      append_wrapped(out, flag_help(s, prog), facts(table, s, prog, has_preset), label_w, kWidth);
    }
  }
  return out;
}

std::string effective_config_text(const Flags& flags, Program prog) {
  std::vector<std::pair<std::string, std::string>> rows = flags.effective(prog);
  size_t name_w = 4, value_w = 5;  // at least as wide as the headers "name", "value"
  for (auto& [name, value] : rows) {
    if (flags.source(name) == "default") value = flag_shown_default(flags.spec(name), prog);
    if (value.empty()) value = "\"\"";
    name_w = std::max(name_w, name.size());
    value_w = std::max(value_w, value.size());
  }
  auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
    return "  " + a + std::string(name_w - a.size() + 2, ' ') + b +
           std::string(value_w - b.size() + 2, ' ') + c + "\n";
  };
  std::string out = str_cat("effective configuration of ", program_name(prog), ":\n");
  out += row("name", "value", "source");
  for (const auto& [name, value] : rows) out += row(name, value, flags.source(name));
  return out;
}

}  // namespace moe
