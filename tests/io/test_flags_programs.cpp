// test_flags_programs.cpp — the flag parser's answers to hostile or unusual input and each
// program's own --help (src/io/flags.*, flag_table.cpp; notes/flags.md).
//
// test_flags.cpp covers the parser's ordinary paths; this file covers what a tester found:
// --config naming a directory, a config file that starts with a UTF-8 byte-order mark, integer
// values that overflow an int (3000000000, 1e300), and --help texts that described training's
// meaning of a flag in eval and finetune.
#include <gtest/gtest.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/flags.h"

namespace moe {
namespace {

namespace fs = std::filesystem;
constexpr double NA = std::numeric_limits<double>::quiet_NaN();

Flags parse(const std::vector<std::string>& args, Program prog = PROG_TRAIN) {
  std::vector<const char*> argv{"prog"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data(), prog);
}

std::string error_of(const std::vector<std::string>& args, Program prog = PROG_TRAIN) {
  try {
    parse(args, prog);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_has(const std::string& msg, const std::vector<std::string>& parts) {
  for (const std::string& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\":\n  " << msg;
}

// The lines of `help` that describe --name: its label line and the indented lines after it.
std::string help_block(const std::string& help, const std::string& name) {
  const size_t at = help.find("\n  --" + name + " ");
  const size_t at_bool = help.find("\n  --" + name + "\n");
  const size_t begin = std::min(at, at_bool);
  if (begin == std::string::npos) return "";
  size_t end = help.find("\n  --", begin + 1);
  const size_t group_end = help.find("\n\n", begin + 1);
  end = std::min(end, group_end);
  return help.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// `text` with every run of whitespace made one space, so that word wrapping does not matter.
std::string squeeze(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : c);
  }
  return out;
}

const FlagSpec& builtin(const char* name) {
  const FlagTable& t = builtin_flag_table();
  for (size_t i = 0; i < t.n_flags; ++i)
    if (std::string(t.flags[i].name) == name) return t.flags[i];
  ADD_FAILURE() << "no flag --" << name;
  return t.flags[0];
}

// ---- --config: a directory, a byte-order mark -------------------------------------------------

TEST(FlagsConfigInput, DirectoryIsAnErrorNamingIt) {
  const std::string dir = testing::TempDir() + "flags_config_dir";
  fs::create_directories(dir);
  expect_has(error_of({"--config", dir}), {"--config '" + dir + "' is a directory", "HINT:"});
  expect_has(error_of({"--config=" + dir}, PROG_EVAL), {"is a directory"});
  fs::remove_all(dir);
}

TEST(FlagsConfigInput, Utf8ByteOrderMarkIsAccepted) {
  const std::string path = testing::TempDir() + "flags_bom.conf";
  {
    std::ofstream out(path, std::ios::binary);
    out << "\xEF\xBB\xBFsteps=12\r\nmodel=small\n";
  }
  Flags f = parse({"--config", path});
  EXPECT_EQ(f.get_int("steps"), 12);
  EXPECT_EQ(f.get_str("model"), "small");
  std::remove(path.c_str());
}

TEST(FlagsConfigInput, ByteOrderMarkOnlyCountsAtTheStart) {
  // The same three bytes later in the file are part of a key, and the key is unknown.
  const std::string path = testing::TempDir() + "flags_bom_late.conf";
  {
    std::ofstream out(path, std::ios::binary);
    out << "steps=12\n\xEF\xBB\xBFlr=1e-3\n";
  }
  expect_has(error_of({"--config", path}), {path + ":2: ", "unknown flag"});
  std::remove(path.c_str());
}

// ---- integer values: range-checked before any cast -----------------------------------------

TEST(FlagsIntegerRange, ValuesBeyondAnIntAreRefused) {
  // These used to parse and then wrap around in the programs' static_cast<int>.
  expect_has(error_of({"--log-every", "3000000000"}),
             {"--log-every must be in [1, 2147483647], got 3000000000", "HINT:"});
  expect_has(error_of({"--ckpt-every=4294967297"}), {"--ckpt-every must be in [0, 2147483647]"});
  expect_has(error_of({"--limit=9223372036854775807"}, PROG_EVAL),
             {"--limit must be in [0, 2147483647]"});
  EXPECT_EQ(parse({"--steps=2147483647"}).get_int("steps"), 2147483647);
}

TEST(FlagsIntegerRange, HugeNumbersInAnySpellingAreOutOfRange) {
  expect_has(error_of({"--steps", "1e300"}), {"--steps must be in [1, 2147483647], got 1e300"});
  expect_has(error_of({"--seed=-1e300"}), {"--seed must be in [0, 2147483648), got -1e300"});
  expect_has(error_of({"--epochs=1e10"}, PROG_FINETUNE), {"--epochs must be in [0, 10000]"});
  expect_has(error_of({"--steps=1e309"}), {"--steps must be in"});  // beyond double: inf
}

TEST(FlagsIntegerRange, WholeNumbersInExponentFormAreIntegers) {
  EXPECT_EQ(parse({"--steps=1e4"}).get_int("steps"), 10000);
  EXPECT_EQ(parse({"--steps", "2.5e3"}).get_int("steps"), 2500);
  EXPECT_EQ(parse({"--limit=1E2"}, PROG_EVAL).get_int("limit"), 100);
  expect_has(error_of({"--steps=2.5"}), {"--steps expects an integer, got '2.5'"});
  expect_has(error_of({"--steps=1e3x"}), {"--steps expects an integer, got '1e3x'"});
}

TEST(FlagsIntegerRange, EveryBuiltinIntFlagFitsAnInt) {
  const FlagTable& t = builtin_flag_table();
  for (size_t i = 0; i < t.n_flags; ++i) {
    const FlagSpec& s = t.flags[i];
    if (s.type != FlagType::Int) continue;
    SCOPED_TRACE(s.name);
    EXPECT_GE(s.min, -2147483648.0);
    EXPECT_LE(s.max, 2147483648.0);
    if (s.max == 2147483648.0) {
      EXPECT_TRUE(s.interval == Interval::RightOpen || s.interval == Interval::Open);
    }
  }
}

TEST(FlagsIntegerRange, TableCheckRefusesAnUnboundedIntRow) {
  const double inf = std::numeric_limits<double>::infinity();
  const FlagSpec rows[] = {
      {"help", FlagType::Bool, "false", "h", nullptr, NA, NA, Interval::Closed, PROG_ALL, "run"},
      {"config", FlagType::String, "", "c", nullptr, NA, NA, Interval::Closed, PROG_ALL, "run"},
      {"n", FlagType::Int, "1", "n", nullptr, 0, inf, Interval::Closed, PROG_ALL, "run"},
  };
  const FlagTable t = {rows, 3, nullptr, 0, nullptr};
  std::string msg = "(no error)";
  try {
    check_flag_table(t);
  } catch (const Error& e) {
    msg = e.what();
  }
  expect_has(msg, {"internal error", "--n", "Int range must be finite"});
}

// ---- each program's own --help --------------------------------------------------------------

TEST(FlagsProgramHelp, EvalDoesNotDescribeTrainingSemantics) {
  const std::string eval = usage_text(PROG_EVAL);
  const std::string seed = squeeze(help_block(eval, "seed"));
  EXPECT_EQ(seed.find("initialisation"), std::string::npos) << seed;
  expect_has(seed, {"--task generate"});
  const std::string batch = squeeze(help_block(eval, "batch-size"));
  EXPECT_EQ(batch.find("optimizer step"), std::string::npos) << batch;
  expect_has(batch, {"per forward pass"});
  const std::string out = squeeze(help_block(eval, "out-dir"));
  EXPECT_EQ(out.find("checkpoints"), std::string::npos) << out;
  expect_has(out, {"results JSON", "(default: <ckpt folder>/eval"});
}

TEST(FlagsProgramHelp, FinetuneHasItsOwnWords) {
  const std::string ft = usage_text(PROG_FINETUNE);
  expect_has(squeeze(help_block(ft, "batch-size")), {"training examples per optimizer step"});
  expect_has(squeeze(help_block(ft, "out-dir")), {"best.bin", "<ckpt folder>/finetune-<task>"});
  expect_has(squeeze(help_block(ft, "task")), {"boolq, mnli or sst2", "(default: sst2)"});
  expect_has(squeeze(help_block(ft, "data-dir")), {"default task files"});
  // eval's task list is not in finetune's help, and finetune's tasks are not in eval's.
  EXPECT_EQ(ft.find("hellaswag,piqa"), std::string::npos);
  EXPECT_EQ(squeeze(help_block(usage_text(PROG_EVAL), "task")).find("sst2"), std::string::npos);
}

TEST(FlagsProgramHelp, EveryProgramHelpRowIsShownByItsProgramOnly) {
  const FlagTable& t = builtin_flag_table();
  for (size_t i = 0; i < t.n_flags; ++i) {
    const FlagSpec& s = t.flags[i];
    for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE}) {
      if (!(s.programs & p)) continue;
      SCOPED_TRACE(std::string(s.name) + " in " + program_name(p));
      const std::string block = squeeze(help_block(usage_text(p), s.name));
      expect_has(block, {squeeze(flag_help(s, p)), "(default: "});
      for (Program q : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE})
        if (q != p && (s.programs & q) && std::string(flag_help(s, q)) != flag_help(s, p)) {
          EXPECT_EQ(block.find(squeeze(flag_help(s, q))), std::string::npos);
        }
    }
  }
}

TEST(FlagsProgramHelp, SharedFlagsWhoseMeaningDiffersHaveTheirOwnText) {
  for (const char* name : {"seed", "out-dir", "batch-size"}) {
    SCOPED_TRACE(name);
    const FlagSpec& s = builtin(name);
    EXPECT_STRNE(flag_help(s, PROG_EVAL), flag_help(s, PROG_TRAIN));
    EXPECT_STRNE(flag_help(s, PROG_FINETUNE), flag_help(s, PROG_TRAIN));
  }
  EXPECT_STRNE(flag_help(builtin("task"), PROG_EVAL), flag_help(builtin("task"), PROG_FINETUNE));
  EXPECT_STRNE(flag_help(builtin("overwrite"), PROG_FINETUNE),
               flag_help(builtin("overwrite"), PROG_TRAIN));
}

TEST(FlagsProgramHelp, FinetuneAcceptsDataDir) {
  Flags f = parse({"--data-dir", "/data/glue"}, PROG_FINETUNE);
  EXPECT_EQ(f.get_str("data-dir"), "/data/glue");
  EXPECT_EQ(parse({}, PROG_FINETUNE).get_str("data-dir"), builtin("data-dir").default_value);
}

TEST(FlagsProgramHelp, EffectiveConfigShowsTheDerivedDefault) {
  const std::string text = effective_config_text(parse({}, PROG_EVAL), PROG_EVAL);
  expect_has(text, {"<ckpt folder>/eval"});
  EXPECT_EQ(text.find("runs/default"), std::string::npos) << text;
  // A value the user gave is shown as given.
  const std::string given =
      effective_config_text(parse({"--out-dir", "x/y"}, PROG_EVAL), PROG_EVAL);
  expect_has(given, {"x/y"});
  EXPECT_EQ(given.find("<ckpt folder>"), std::string::npos);
}

TEST(FlagsProgramHelp, TableCheckRefusesHelpForAProgramWithoutTheFlag) {
  const ProgramHelp wrong[] = {{PROG_EVAL, "eval words", nullptr}, {0, nullptr, nullptr}};
  const FlagSpec rows[] = {
      {"help", FlagType::Bool, "false", "h", nullptr, NA, NA, Interval::Closed, PROG_ALL, "run"},
      {"config", FlagType::String, "", "c", nullptr, NA, NA, Interval::Closed, PROG_ALL, "run"},
      {"x", FlagType::String, "", "x", nullptr, NA, NA, Interval::Closed, PROG_TRAIN, "run", wrong},
  };
  const FlagTable t = {rows, 3, nullptr, 0, nullptr};
  std::string msg = "(no error)";
  try {
    check_flag_table(t);
  } catch (const Error& e) {
    msg = e.what();
  }
  expect_has(msg, {"internal error", "--x", "per-program help"});
}

}  // namespace
}  // namespace moe
