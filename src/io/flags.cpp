// flags.cpp — the table-driven flag parser and the table's own checks (flags.h); the --help text
// and the effective-config table are in flags_help.cpp.
//
// A parse runs in four passes, so that precedence does not depend on argument order:
//   1. every flag of the program gets its table default;
//   2. the --config file (if any) is read and applied;
//   3. the command line is applied (it was read and checked first, to find --config);
//   4. the final value of the preset flag (`model`) picks a preset, which fills in every flag that
//      neither the config file nor the command line set.
// Each value is parsed and range-checked where it is applied, with the place it came from
// ("--lr" or "run.conf:3: lr") in the message.
#include "io/flags.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/check.h"
#include "core/strings.h"
#include "io/flags_detail.h"

namespace moe {

const char* program_name(Program prog) {
  switch (prog) {
    case PROG_TRAIN: return "train";
    case PROG_EVAL: return "eval";
    case PROG_FINETUNE: return "finetune";
  }
  ASSERT_INTERNAL(false, "unknown program ", static_cast<unsigned>(prog));
  return "";
}

// ---- helpers shared with flags_help.cpp (flags_detail.h) ----------------------------------

namespace flags_detail {

// Integers print without a decimal point (2147483648, not 2.14748e+09); others as %g would.
std::string format_number(double x) {
  if (x == std::floor(x) && std::fabs(x) < 1e15) return std::to_string(static_cast<int64_t>(x));
  std::ostringstream os;
  os << x;
  return os.str();
}

bool has_range(const FlagSpec& s) {
  bool numeric = s.type == FlagType::Int || s.type == FlagType::Float;
  return numeric && (std::isfinite(s.min) || std::isfinite(s.max));
}

// "[0, 1)", "(0, 1]", "[1, inf)". An unbounded side always gets an open bracket.
std::string range_text(const FlagSpec& s) {
  bool lo_open = s.interval == Interval::LeftOpen || s.interval == Interval::Open;
  bool hi_open = s.interval == Interval::RightOpen || s.interval == Interval::Open;
  std::string lo = std::isfinite(s.min) ? format_number(s.min) : "-inf";
  std::string hi = std::isfinite(s.max) ? format_number(s.max) : "inf";
  return std::string(lo_open || !std::isfinite(s.min) ? "(" : "[") + lo + ", " + hi +
         (hi_open || !std::isfinite(s.max) ? ")" : "]");
}

const FlagSpec* find_spec(const FlagTable& table, const std::string& name) {
  for (size_t i = 0; i < table.n_flags; ++i)
    if (name == table.flags[i].name) return &table.flags[i];
  return nullptr;
}

// "n-layer=4 d-model=128" -> {("n-layer", "4"), ("d-model", "128")}.
std::vector<std::pair<std::string, std::string>> preset_settings(const Preset& p) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(p.settings);
  for (std::string kv; ss >> kv;) {
    size_t eq = kv.find('=');
    ASSERT_INTERNAL(eq != std::string::npos, "preset ", p.name, ": '", kv, "' is not key=value");
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

const ProgramHelp* program_help_row(const FlagSpec& s, Program prog) {
  for (const ProgramHelp* h = s.program_help; h && h->program; ++h)
    if (h->program == prog) return h;
  return nullptr;
}

}  // namespace flags_detail

using namespace flags_detail;

namespace {

// ---- small text helpers -------------------------------------------------------------------

// Levenshtein distance (insert, delete, substitute = 1), two rows of the usual DP table. Used to
// suggest the nearest flag for a typo: "--bacth-size" -> "--batch-size".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest of `candidates` to `word`, or "" when nothing is close enough to be a typo.
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;  // farther than this: no suggestion
  for (const std::string& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

std::vector<std::string> split_choices(const char* choices) {
  std::vector<std::string> out;
  std::stringstream ss(choices);
  for (std::string c; std::getline(ss, c, '|');) out.push_back(c);
  return out;
}

bool in_range(const FlagSpec& s, double v) {
  bool lo_open = s.interval == Interval::LeftOpen || s.interval == Interval::Open;
  bool hi_open = s.interval == Interval::RightOpen || s.interval == Interval::Open;
  bool lo_ok = !std::isfinite(s.min) || (lo_open ? v > s.min : v >= s.min);
  bool hi_ok = !std::isfinite(s.max) || (hi_open ? v < s.max : v <= s.max);
  return lo_ok && hi_ok;
}

std::string help_hint(Program prog) {
  return str_cat(" HINT: run '", program_name(prog),
                 " --help' to see every flag with its default and accepted values.");
}

// ---- value parsing: `who` is how the user wrote the flag ("--lr" or "run.conf:3: lr") -----

std::string what_is_accepted(const FlagSpec& s) {
  switch (s.type) {
    case FlagType::Int: return has_range(s) ? "an integer in " + range_text(s) : "an integer";
    case FlagType::Float: return has_range(s) ? "a number in " + range_text(s) : "a number";
    case FlagType::Bool: return "true, false, 1 or 0";
    case FlagType::String: return "a string";
    case FlagType::Enum: return str_cat("one of ", s.choices);
  }
  return "";
}

// An integer as typed ("300"), or a decimal number whose value is whole ("1e4", "2.5e3"). The
// second kind, and integers too long for 64 bits, are range-checked as doubles BEFORE the cast:
// converting 1e300 to an integer would be undefined behaviour.
int64_t parse_int(const FlagSpec& s, const std::string& text, const std::string& who,
                  Program prog) {
  const char* p = text.c_str();
  const bool starts_well = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0]));
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(p, &end, 10);
  if (starts_well && *end == 0 && errno != ERANGE) {
    CHECK(in_range(s, static_cast<double>(v)), who, " must be in ", range_text(s), ", got ", text,
          ".", help_hint(prog));
    return v;
  }
  const double d = std::strtod(p, &end);
  const bool decimal = starts_well && *end == 0 &&
                       text.find_first_not_of("0123456789+-.eE") == std::string::npos;
  CHECK(decimal, who, " expects an integer, got '", text, "'.", help_hint(prog));
  CHECK(std::isfinite(d) && in_range(s, d), who, " must be in ", range_text(s), ", got ", text,
        ".", help_hint(prog));
  CHECK(d == std::floor(d), who, " expects an integer, got '", text, "'.", help_hint(prog));
  return static_cast<int64_t>(d);  // safe: in_range above keeps d inside the flag's Int range
}

double parse_float(const FlagSpec& s, const std::string& text, const std::string& who,
                   Program prog) {
  const char* p = text.c_str();
  char* end = nullptr;
  double v = std::strtod(p, &end);
  bool whole = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) && *end == 0;
  std::string comment_hint =
      text.find('#') != std::string::npos ? " HINT: '#' comments must be on their own line." : "";
  CHECK(whole, who, " expects a number, got '", text, "'.",
        comment_hint.empty() ? help_hint(prog) : comment_hint);
  CHECK(std::isfinite(v), who, " expects a finite number, got '", text, "'.", help_hint(prog));
  CHECK(in_range(s, v), who, " must be in ", range_text(s), ", got ", text, ".", help_hint(prog));
  return v;
}

bool parse_bool(const std::string& text, const std::string& who, Program prog) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  CHECK(false, who, " expects true, false, 1 or 0, got '", text, "'.", help_hint(prog));
  return false;
}

void check_choice(const FlagSpec& s, const std::string& text, const std::string& who,
                  Program prog) {
  std::vector<std::string> choices = split_choices(s.choices);
  if (std::find(choices.begin(), choices.end(), text) != choices.end()) return;
  std::string near = closest(text, choices);
  CHECK(false, who, " expects one of ", s.choices, ", got '", text, "'",
        near.empty() ? "." : "; did you mean '" + near + "'?", help_hint(prog));
}

const Preset* find_preset(const FlagTable& table, const std::string& name) {
  for (size_t i = 0; i < table.n_presets; ++i)
    if (name == table.presets[i].name) return &table.presets[i];
  return nullptr;
}

// A value parsed for its flag's type; only the field of that type is meaningful.
struct Parsed {
  std::string text;  // as given, except bools: "true"/"false"
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
};

// Parses `text` for `s`; throws moe::Error (naming `who`) when it is not acceptable.
Parsed parse_value(const FlagSpec& s, const std::string& text, const std::string& who,
                   Program prog) {
  Parsed p;
  p.text = text;
  switch (s.type) {
    case FlagType::Int: p.i = parse_int(s, text, who, prog); break;
    case FlagType::Float: p.f = parse_float(s, text, who, prog); break;
    case FlagType::Bool:
      p.b = parse_bool(text, who, prog);
      p.text = p.b ? "true" : "false";
      break;
    case FlagType::Enum: check_choice(s, text, who, prog); break;
    case FlagType::String: break;
  }
  return p;
}

// A default or preset value of the table itself: failing to parse it is our bug, not the user's.
void check_table_value(const FlagSpec& s, const std::string& text, const std::string& who) {
  try {
    parse_value(s, text, who, PROG_TRAIN);
  } catch (const Error& e) {
    ASSERT_INTERNAL(false, e.what());
  }
}

}  // namespace

// ---- checks of per-program help and Int ranges ---------------------------------------------

namespace {

// An Int flag's accepted values must all fit an int32 (the programs cast them to int): its range
// is finite and inside [-2^31, 2^31), where 2^31 itself may only be an open upper end.
bool int_range_fits_int32(const FlagSpec& s) {
  const double lo = -2147483648.0, hi = 2147483648.0;
  bool hi_open = s.interval == Interval::RightOpen || s.interval == Interval::Open;
  return std::isfinite(s.min) && std::isfinite(s.max) && s.min >= lo &&
         (s.max < hi || (s.max == hi && hi_open));
}

void check_program_help(const FlagSpec& s) {
  for (const ProgramHelp* h = s.program_help; h && h->program; ++h) {
    bool one_bit = (h->program & (h->program - 1)) == 0 && (h->program & PROG_ALL) != 0;
    ASSERT_INTERNAL(one_bit && (s.programs & h->program), "flag --", s.name,
                    ": per-program help for a program that does not have the flag");
    ASSERT_INTERNAL(h->help && h->help[0], "flag --", s.name, ": empty per-program help");
    ASSERT_INTERNAL(program_help_row(s, static_cast<Program>(h->program)) == h, "flag --",
                    s.name, ": two help rows for ", program_name(static_cast<Program>(h->program)));
  }
}

}  // namespace

// ---- the table's own checks ---------------------------------------------------------------

void check_flag_table(const FlagTable& table) {
  for (size_t i = 0; i < table.n_flags; ++i) {
    const FlagSpec& s = table.flags[i];
    ASSERT_INTERNAL(s.name && s.name[0] && s.name[0] != '-' && !std::strchr(s.name, '='),
                    "bad flag name in row ", i);
    ASSERT_INTERNAL(find_spec(table, s.name) == &s, "flag --", s.name, " appears twice");
    ASSERT_INTERNAL(s.default_value && s.help && s.group, "flag --", s.name, " lacks a field");
    ASSERT_INTERNAL((s.type == FlagType::Enum) == (s.choices != nullptr), "flag --", s.name,
                    ": choices are for Enum flags only, and Enum flags need them");
    ASSERT_INTERNAL((s.programs & ~PROG_ALL) == 0 && s.programs != 0, "flag --", s.name,
                    ": bad program mask");
    ASSERT_INTERNAL(s.type != FlagType::Int || int_range_fits_int32(s), "flag --", s.name,
                    ": an Int range must be finite and inside [-2^31, 2^31), got ",
                    range_text(s));
    check_program_help(s);
    check_table_value(s, s.default_value, str_cat("default of --", s.name));
  }
  // --help and --config are read by the parser itself, for every program.
  const FlagSpec *help = find_spec(table, "help"), *config = find_spec(table, "config");
  ASSERT_INTERNAL(help && help->type == FlagType::Bool && help->programs == PROG_ALL && config &&
                      config->type == FlagType::String && config->programs == PROG_ALL,
                  "the table needs --help (Bool) and --config (String) for every program");
  if (!table.preset_flag) return;
  const FlagSpec* pf = find_spec(table, table.preset_flag);
  ASSERT_INTERNAL(pf && pf->type == FlagType::Enum, "preset flag must be an Enum flag");
  for (const std::string& choice : split_choices(pf->choices))
    ASSERT_INTERNAL(find_preset(table, choice), "no preset for --", pf->name, " ", choice);
  for (size_t i = 0; i < table.n_presets; ++i) {
    const Preset& p = table.presets[i];
    for (const auto& [key, value] : preset_settings(p)) {
      const FlagSpec* s = find_spec(table, key);
      ASSERT_INTERNAL(s && (s->programs & pf->programs) == pf->programs, "preset ", p.name,
                      " sets --", key, ", which is not a flag of every program that has --",
                      pf->name);
      check_table_value(*s, value, str_cat("preset ", p.name, ": ", key));
    }
  }
}

// ---- the parser ---------------------------------------------------------------------------

class FlagParser {
 public:
  FlagParser(const FlagTable& table, Program prog) : table_(table), prog_(prog) {}
  Flags run(int argc, const char* const* argv);

 private:
  // One `name value` the user wrote, not yet parsed; `who` names it in messages.
  struct Assignment {
    const FlagSpec* spec;
    std::string text;
    std::string who;
  };
  std::string nearest_flag(const std::string& name) const;
  const FlagSpec* lookup(const std::string& name, const std::string& dashes,
                         const std::string& where) const;
  std::vector<Assignment> read_command_line(int argc, const char* const* argv) const;
  std::vector<Assignment> read_config(const std::string& path) const;
  void set(Flags& flags, const FlagSpec& spec, const std::string& text, const std::string& who,
           const std::string& source, bool user_set) const;

  const FlagTable& table_;
  Program prog_;
};

// The flag of this program closest to `name` (for "did you mean"), or "" if none is close.
std::string FlagParser::nearest_flag(const std::string& name) const {
  std::vector<std::string> names;
  for (size_t i = 0; i < table_.n_flags; ++i)
    if (table_.flags[i].programs & prog_) names.push_back(table_.flags[i].name);
  return closest(name, names);
}

// The spec of a flag the user named, or an error: unknown (with the nearest name), or a flag of
// another program. `dashes` is "--" on the command line and "" in a config file.
const FlagSpec* FlagParser::lookup(const std::string& name, const std::string& dashes,
                                   const std::string& where) const {
  const FlagSpec* s = find_spec(table_, name);
  if (s && (s->programs & prog_)) return s;
  if (s) {
    std::string owners;
    for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE})
      if (s->programs & p) owners += std::string(owners.empty() ? "" : ", ") + program_name(p);
    CHECK(false, where, dashes, name, " is not a flag of ", program_name(prog_), " (only of ",
          owners, ").", help_hint(prog_));
  }
  std::string near = nearest_flag(name);
  CHECK(false, where, "unknown flag ", dashes, name,
        near.empty() ? "." : "; did you mean " + dashes + near + "?", help_hint(prog_));
  return nullptr;
}

std::vector<FlagParser::Assignment> FlagParser::read_command_line(int argc,
                                                                  const char* const* argv) const {
  std::vector<Assignment> out;
  std::map<std::string, std::string> seen;  // name -> first value, to reject repeats
  std::string bare_bool;                    // a Bool flag given without '=' just before
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!str_starts_with(arg, "--") || arg == "--") {
      if (str_starts_with(arg, "-") && arg.size() > 1 && arg != "--") {  // "-lr": one dash short
        std::string near = nearest_flag(arg.substr(1));
        CHECK(false, "unknown option '", arg, "': flags start with two dashes",
              near.empty() ? "." : "; did you mean --" + near + "?", help_hint(prog_));
      }
      CHECK(false, "unexpected argument '", arg, "': ", program_name(prog_),
            " takes only flags (--name value or --name=value).",
            bare_bool.empty() ? help_hint(prog_)
                              : " HINT: a boolean flag takes its value after '=': --" +
                                    bare_bool + "=" + arg + ".");
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    const FlagSpec* s = lookup(name, "--", "");
    bare_bool.clear();
    std::string value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (s->type == FlagType::Bool) {
      value = "true", bare_bool = name;
    } else {
      CHECK(i + 1 < argc && !str_starts_with(argv[i + 1], "--"), "--", name, " needs a value: ",
            what_is_accepted(*s), ". HINT: e.g. --", name, " ", s->default_value, " or --", name,
            "=", s->default_value, ".");
      value = argv[++i];
    }
    auto [it, fresh] = seen.emplace(name, value);
    CHECK(fresh, "--", name, " is given twice on the command line ('", it->second, "' and '",
          value, "'). HINT: give each flag once; the command line already overrides --config.");
    out.push_back({s, value, "--" + name});
  }
  return out;
}

std::vector<FlagParser::Assignment> FlagParser::read_config(const std::string& path) const {
  // A directory opens as a stream that reads nothing, so without this check --config DIR would
  // silently set nothing.
  std::error_code ec;
  CHECK(!std::filesystem::is_directory(path, ec), "--config '", path, "' is a directory; --config "
        "needs a file of key=value lines. HINT: name the file inside it, e.g. --config ",
        (std::filesystem::path(path) / "run.conf").string(), ".");
  std::ifstream in(path, std::ios::binary);
  CHECK(in, "cannot open config file '", path, "' (given with --config). HINT: the path is "
        "relative to the current directory.");
  std::vector<Assignment> out;
  std::map<std::string, int> seen;  // key -> line where it was first set
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line_no == 1 && str_starts_with(line, "\xEF\xBB\xBF")) line.erase(0, 3);  // UTF-8 BOM
    std::string t = trim_ascii(line);
    if (t.empty() || t[0] == '#') continue;
    std::string where = str_cat(path, ":", line_no, ": ");
    size_t eq = t.find('=');
    CHECK(eq != std::string::npos, where, "expected key=value, got '", t,
          "'. HINT: one setting per line, e.g. lr=1e-3; comments start with '#'.");
    std::string key = trim_ascii(t.substr(0, eq)), value = trim_ascii(t.substr(eq + 1));
    std::string bare = key.substr(std::min(key.find_first_not_of('-'), key.size()));
    CHECK(!str_starts_with(key, "-"), where, "write the key without dashes: '", bare, "=", value,
          "', not '", key, "=", value, "'.");
    CHECK(!key.empty(), where, "missing key before '='.");
    const FlagSpec* s = lookup(key, "", where);
    CHECK(key != "config" && key != "help", where, key, " cannot be set in a config file. HINT: "
          "give --", key, " on the command line.");
    auto [it, fresh] = seen.emplace(key, line_no);
    CHECK(fresh, where, key, " is set twice in this file (lines ", it->second, " and ", line_no,
          "). HINT: keep one of the two lines.");
    out.push_back({s, value, where + key});
  }
  CHECK(!in.bad(), "error while reading config file '", path, "' (given with --config).");
  return out;
}

// Parse `text` for `spec` and store it as the flag's value.
void FlagParser::set(Flags& flags, const FlagSpec& spec, const std::string& text,
                     const std::string& who, const std::string& source, bool user_set) const {
  auto it = std::find_if(flags.values_.begin(), flags.values_.end(),
                         [&](const Flags::Value& v) { return v.spec == &spec; });
  ASSERT_INTERNAL(it != flags.values_.end(), "--", spec.name, " is not a ", program_name(prog_),
                  " flag");
  Parsed p = parse_value(spec, text, who, prog_);
  Flags::Value& v = *it;
  v.text = p.text, v.i = p.i, v.f = p.f, v.b = p.b;
  v.source = source;
  v.user_set = user_set;
}

Flags FlagParser::run(int argc, const char* const* argv) {
  check_flag_table(table_);
  Flags flags;
  flags.prog_ = prog_;
  for (size_t i = 0; i < table_.n_flags; ++i) {
    if (!(table_.flags[i].programs & prog_)) continue;
    flags.values_.emplace_back();
    flags.values_.back().spec = &table_.flags[i];
    set(flags, table_.flags[i], table_.flags[i].default_value, "default", "default", false);
  }
  // --help wins over everything else on the line, even over mistakes in other flags.
  auto is_help = [](const char* a) { return std::string(a) == "--help" || std::string(a) == "-h"; };
  if (std::any_of(argv + std::min(argc, 1), argv + argc, is_help)) {
    set(flags, *find_spec(table_, "help"), "true", "--help", "command line", true);
    return flags;
  }
  std::vector<Assignment> cli = read_command_line(argc, argv);
  for (const Assignment& a : cli) {
    if (std::string(a.spec->name) != "config" || a.text.empty()) continue;
    for (const Assignment& c : read_config(a.text))
      set(flags, *c.spec, c.text, c.who, "config " + a.text, true);
  }
  for (const Assignment& a : cli) set(flags, *a.spec, a.text, a.who, "command line", true);
  if (table_.preset_flag && (find_spec(table_, table_.preset_flag)->programs & prog_)) {
    std::string name = flags.get_str(table_.preset_flag);
    const Preset* p = find_preset(table_, name);
    ASSERT_INTERNAL(p, "no preset named ", name);
    for (const auto& [key, value] : preset_settings(*p))
      if (!flags.was_set(key))
        set(flags, *find_spec(table_, key), value, "preset " + name, "preset " + name, false);
  }
  return flags;
}

Flags parse_flags(int argc, const char* const* argv, Program prog, const FlagTable& table) {
  return FlagParser(table, prog).run(argc, argv);
}

// ---- accessors ----------------------------------------------------------------------------

// The value of flag `name`, which must be a flag of this program and (unless `types` is empty)
// of one of `types`. Anything else is a typo or a type confusion in the calling code.
const Flags::Value& Flags::find(const std::string& name,
                                std::initializer_list<FlagType> types) const {
  auto it = std::find_if(values_.begin(), values_.end(),
                         [&](const Value& v) { return name == v.spec->name; });
  ASSERT_INTERNAL(it != values_.end(), "asked for --", name, ", which is not a flag of ",
                  program_name(prog_));
  bool type_ok = types.size() == 0 ||
                 std::find(types.begin(), types.end(), it->spec->type) != types.end();
  ASSERT_INTERNAL(type_ok, "--", name, " is read with the getter of another type");
  return *it;
}

int64_t Flags::get_int(const std::string& name) const { return find(name, {FlagType::Int}).i; }

double Flags::get_float(const std::string& name) const {
  return find(name, {FlagType::Float}).f;
}

bool Flags::get_bool(const std::string& name) const { return find(name, {FlagType::Bool}).b; }

std::string Flags::get_str(const std::string& name) const {
  return find(name, {FlagType::String, FlagType::Enum}).text;
}

bool Flags::was_set(const std::string& name) const { return find(name, {}).user_set; }

std::string Flags::source(const std::string& name) const { return find(name, {}).source; }

const FlagSpec& Flags::spec(const std::string& name) const { return *find(name, {}).spec; }

std::vector<std::pair<std::string, std::string>> Flags::effective(Program prog) const {
  ASSERT_INTERNAL(prog == prog_, "flags were parsed for ", program_name(prog_), ", not for ",
                  program_name(prog));
  std::vector<std::pair<std::string, std::string>> out;
  for (const Value& v : values_)
    if (std::string(v.spec->name) != "help") out.emplace_back(v.spec->name, v.text);
  return out;
}

}  // namespace moe
