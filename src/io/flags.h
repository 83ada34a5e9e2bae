// flags.h — command-line flags for the three programs (train, eval, finetune), driven by ONE table.
//
// Why one table: a hand-written usage() next to a hand-written parser drifts (llm.c's
// train_gpt2.cu documents -pm/-pp while its parser reads -pi/-pf). Here every flag is one row of
// a plain array in flag_table.cpp: name, type, default, help, choices, range, the programs that
// accept it, and a --help group. The parser, the range checks, --help and the effective-config
// table are all computed from that array, so they cannot disagree. notes/flags.md says how to
// add a row.
//
// Syntax accepted on the command line:
//   --key value   --key=value   --flag (a Bool flag, = true)   --flag=true|false|1|0
//   --config FILE (key=value lines, see below)   --help or -h
// A config file holds `key=value` lines (key without dashes, spaces around '=' allowed), blank
// lines and whole-line '#' comments, optionally after a UTF-8 byte-order mark (editors on Windows
// write one); values are checked like command-line values and errors name FILE:LINE.
// An Int flag also accepts a decimal number in another spelling when its value is a whole number
// (--steps 1e4); its value is range-checked as a number before it becomes an integer, so 1e300
// is "out of range", never an overflowing cast.
//
// Precedence, lowest to highest, whatever the order of the arguments:
//   table default  <  --model preset  <  --config file  <  command line
// The preset is chosen by the final value of `model` (from the command line, else the config
// file, else its default) and then sets the flags listed for it in flag_table.cpp.
//
// Errors in the user's input throw moe::Error (core/check.h) naming the flag, the accepted
// values or range, and a HINT. Asking a Flags object for a name the program does not accept, or
// with the wrong type, is a bug in our code and fails ASSERT_INTERNAL.
//
// Left out on purpose: short options other than -h, flag abbreviations (--batch for
// --batch-size), environment variables, trailing comments in config files, nested config files.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace moe {

// The three programs, as bits so that one table row can name several of them.
enum Program : unsigned {
  PROG_TRAIN = 1u << 0,
  PROG_EVAL = 1u << 1,
  PROG_FINETUNE = 1u << 2,
};
constexpr unsigned PROG_ALL = PROG_TRAIN | PROG_EVAL | PROG_FINETUNE;

// "train", "eval" or "finetune": the binary's name, used in messages and --help.
const char* program_name(Program prog);

enum class FlagType { Int, Float, Bool, String, Enum };

// Which ends of [min, max] belong to the range: Closed [a, b], LeftOpen (a, b], RightOpen [a, b),
// Open (a, b). A learning rate of exactly 0 or a beta of exactly 1 is a mistake, hence open ends.
enum class Interval { Closed, LeftOpen, RightOpen, Open };

// One program's own wording of a shared flag, for its --help. A flag shared by the programs can
// mean different things to each: --batch-size counts sequences per optimizer step in train but
// per forward pass in eval, and eval's --out-dir defaults to a folder beside the checkpoint.
struct ProgramHelp {
  unsigned program;           // exactly one PROG_* bit
  const char* help;           // replaces FlagSpec::help in that program's --help
  const char* shown_default;  // nullptr: the table default; else how that program derives it
};

// One row of the flag table. Numeric limits are ignored for Bool/String/Enum; an infinite or NaN
// limit means "unbounded on that side", which only Float flags may use: an Int flag's range lies
// inside [-2^31, 2^31), so that every program may cast its value to int.
struct FlagSpec {
  const char* name;           // "batch-size" (written --batch-size on the command line)
  FlagType type;              // how the value is parsed and which get_* reads it
  const char* default_value;  // as the user would type it: "16", "1e-3", "false", "tiny", ""
  const char* help;           // one sentence for --help
  const char* choices;        // Enum only: "tiny|small|125m"; nullptr otherwise
  double min, max;            // Int/Float only: accepted range
  Interval interval;          // which ends of [min, max] are included
  unsigned programs;          // PROG_TRAIN | PROG_EVAL | PROG_FINETUNE bits
  const char* group;          // "run", "model", "data", "optim", ...: --help groups by it
  // Per-program help, ended by a {0, nullptr, nullptr} row; nullptr: `help` serves every program.
  const ProgramHelp* program_help = nullptr;
};

// The help sentence `prog` shows for `s`: its ProgramHelp row when it has one, else s.help.
const char* flag_help(const FlagSpec& s, Program prog);
// The default `prog` shows for `s`: its ProgramHelp's shown_default, else s.default_value.
const char* flag_shown_default(const FlagSpec& s, Program prog);

// A named bundle of settings selected by the preset flag (`--model tiny`): "key=value key=value".
struct Preset {
  const char* name;      // one of the preset flag's choices
  const char* settings;  // space-separated key=value pairs; keys are table names
};

// The tables a parse runs on: the built-in one for the programs, small ones in the tests.
struct FlagTable {
  const FlagSpec* flags;
  size_t n_flags;
  const Preset* presets;
  size_t n_presets;
  const char* preset_flag;  // the Enum flag whose value names a preset ("model"); nullptr: none
};

// The program's flags and presets (flag_table.cpp).
const FlagTable& builtin_flag_table();

// Checks the table's own consistency: unique names, defaults that parse and lie in range, Enum
// defaults among the choices, Int ranges inside [-2^31, 2^31), per-program help only for
// programs that have the flag, presets that name real flags with valid values. A failure is a bug
// in the table (ASSERT_INTERNAL). parse_flags calls it; so does a test.
void check_flag_table(const FlagTable& table);

// The effective value of every flag a program accepts, with where it came from.
class Flags {
 public:
  int64_t get_int(const std::string& name) const;      // FlagType::Int
  double get_float(const std::string& name) const;     // FlagType::Float
  bool get_bool(const std::string& name) const;        // FlagType::Bool
  std::string get_str(const std::string& name) const;  // FlagType::String or FlagType::Enum
  // True when the user gave the flag (command line or config file), false for default/preset.
  bool was_set(const std::string& name) const;
  // "default", "preset tiny", "config FILE" or "command line".
  std::string source(const std::string& name) const;
  // The table row of flag `name`.
  const FlagSpec& spec(const std::string& name) const;
  // (name, value as text) for every flag of `prog`, in table order. `prog` must be the program
  // these flags were parsed for; it is repeated so that call sites read plainly.
  std::vector<std::pair<std::string, std::string>> effective(Program prog) const;
  Program program() const { return prog_; }

 private:
  friend class FlagParser;  // flags.cpp: the only writer
  struct Value {
    const FlagSpec* spec = nullptr;
    std::string text;    // the value as given (bools normalised to true/false)
    std::string source;  // see source()
    bool user_set = false;
    int64_t i = 0;   // parsed value of an Int flag
    double f = 0.0;  // parsed value of a Float flag
    bool b = false;  // parsed value of a Bool flag
  };
  const Value& find(const std::string& name, std::initializer_list<FlagType> types) const;

  Program prog_ = PROG_TRAIN;
  std::vector<Value> values_;  // one per flag of prog_, in table order
};

// Parse argv[1..argc) for `prog` against `table`. On --help/-h anywhere, returns the defaults
// with help=true and checks nothing else: the caller prints usage_text(prog) and exits 0.
Flags parse_flags(int argc, const char* const* argv, Program prog,
                  const FlagTable& table = builtin_flag_table());

// The --help text: a one-line description of the program, then the flags of `prog` by group,
// each as `--name <type>  help (default: X; one of a|b|c; range [lo, hi])`, in `prog`'s own words
// (flag_help, flag_shown_default).
std::string usage_text(Program prog, const FlagTable& table = builtin_flag_table());

// The table printed when a program starts: one row per flag with its value and its source. A
// default that the program derives itself (eval's --out-dir) shows the rule, not the table value.
std::string effective_config_text(const Flags& flags, Program prog);

}  // namespace moe
