// test_flags.cpp — tests of the table-driven flag parser (src/io/flags.*, flag_table.cpp).
//
// Two tables are used. The built-in one (what train/eval/finetune really accept) for the help
// text, the presets and the messages a user will see; a small table defined here for the paths
// the built-in table has no flag for yet (a Bool flag, a signed range, a preset flag of its own),
// so that these tests do not break when the lead edits a default.
// Config fixtures live in tests/fixtures/flags/ (paths are relative to the repo root, where the
// test binary runs); each says in its first line what it holds.
//
// Left out: locale-dependent number parsing (the programs never call setlocale).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "io/flags.h"

namespace moe {
namespace {

const std::string kFix = "tests/fixtures/flags/";
constexpr double NA = std::numeric_limits<double>::quiet_NaN();

// ---- a small table for paths the built-in table does not exercise ------------------------

const FlagSpec kTestFlags[] = {
    {"help", FlagType::Bool, "false", "print help", nullptr, NA, NA, Interval::Closed, PROG_ALL,
     "run"},
    {"config", FlagType::String, "", "config file", nullptr, NA, NA, Interval::Closed, PROG_ALL,
     "run"},
    {"verbose", FlagType::Bool, "false", "talk more", nullptr, NA, NA, Interval::Closed, PROG_ALL,
     "run"},
    {"offset", FlagType::Int, "0", "a signed number", nullptr, -10, 10, Interval::Closed,
     PROG_ALL, "run"},
    {"size", FlagType::Enum, "a", "preset", "a|b", NA, NA, Interval::Closed, PROG_TRAIN, "model"},
    {"width", FlagType::Int, "1", "set by the preset", nullptr, 1, 100, Interval::Closed,
     PROG_TRAIN, "model"},
};
const Preset kTestPresets[] = {{"a", "width=2"}, {"b", "width=3"}};
const FlagTable kTestTable = {kTestFlags, 6, kTestPresets, 2, "size"};

// ---- helpers ------------------------------------------------------------------------------

Flags parse(const std::vector<std::string>& args, Program prog = PROG_TRAIN,
            const FlagTable& table = builtin_flag_table()) {
  std::vector<const char*> argv{"prog"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data(), prog, table);
}

// The message of the moe::Error that parsing throws, or "(no error)".
std::string error_of(const std::vector<std::string>& args, Program prog = PROG_TRAIN,
                     const FlagTable& table = builtin_flag_table()) {
  try {
    parse(args, prog, table);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Every part must occur in msg; failures print the whole message.
void expect_has(const std::string& msg, const std::vector<std::string>& parts) {
  for (const std::string& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "message lacks \"" << p << "\":\n  " << msg;
}

template <typename Fn>
std::string internal_error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Names of the flags that usage_text lists: lines that start with "  --name".
std::set<std::string> help_flag_names(const std::string& help) {
  std::set<std::string> names;
  std::stringstream ss(help);
  for (std::string line; std::getline(ss, line);) {
    if (line.rfind("  --", 0) != 0) continue;
    names.insert(line.substr(4, line.find_first_of(" ", 4) - 4));
  }
  return names;
}

// ---- parse paths --------------------------------------------------------------------------

TEST(FlagsParse, DefaultsWhenNoArguments) {
  Flags f = parse({});
  EXPECT_EQ(f.get_int("steps"), 300);
  EXPECT_EQ(f.get_str("device"), "auto");
  EXPECT_EQ(f.get_str("data"), "");
  EXPECT_DOUBLE_EQ(f.get_float("dropout"), 0.1);
  EXPECT_FALSE(f.get_bool("help"));
  EXPECT_FALSE(f.was_set("steps"));
  EXPECT_EQ(f.source("steps"), "default");
}

TEST(FlagsParse, SpaceSeparatedValue) {
  Flags f = parse({"--steps", "42", "--device", "cuda", "--data", "a b.txt"});
  EXPECT_EQ(f.get_int("steps"), 42);
  EXPECT_EQ(f.get_str("device"), "cuda");
  EXPECT_EQ(f.get_str("data"), "a b.txt");
  EXPECT_TRUE(f.was_set("steps"));
  EXPECT_EQ(f.source("steps"), "command line");
}

TEST(FlagsParse, EqualsValue) {
  Flags f = parse({"--steps=42", "--lr=2.5e-4", "--data=x=y.txt", "--out-dir="});
  EXPECT_EQ(f.get_int("steps"), 42);
  EXPECT_DOUBLE_EQ(f.get_float("lr"), 2.5e-4);
  EXPECT_EQ(f.get_str("data"), "x=y.txt");  // only the first '=' separates
  EXPECT_EQ(f.get_str("out-dir"), "");      // an explicitly empty string is a value
  EXPECT_TRUE(f.was_set("out-dir"));
}

TEST(FlagsParse, NegativeNumberIsAValueNotAFlag) {
  EXPECT_EQ(parse({"--offset", "-3"}, PROG_TRAIN, kTestTable).get_int("offset"), -3);
  EXPECT_EQ(parse({"--offset=-10"}, PROG_TRAIN, kTestTable).get_int("offset"), -10);
}

TEST(FlagsParse, BareBoolIsTrue) {
  Flags f = parse({"--verbose"}, PROG_EVAL, kTestTable);
  EXPECT_TRUE(f.get_bool("verbose"));
  EXPECT_TRUE(f.was_set("verbose"));
  EXPECT_FALSE(parse({}, PROG_EVAL, kTestTable).get_bool("verbose"));
}

TEST(FlagsParse, BoolEqualsForms) {
  for (const char* t : {"true", "1"})
    EXPECT_TRUE(parse({std::string("--verbose=") + t}, PROG_EVAL, kTestTable).get_bool("verbose"));
  for (const char* f : {"false", "0"})
    EXPECT_FALSE(
        parse({std::string("--verbose=") + f}, PROG_EVAL, kTestTable).get_bool("verbose"));
  // The value is shown normalised, whatever form was typed.
  auto eff = parse({"--verbose=1"}, PROG_EVAL, kTestTable).effective(PROG_EVAL);
  std::string shown = "(absent)";
  for (const auto& [name, value] : eff)
    if (name == "verbose") shown = value;
  EXPECT_EQ(shown, "true");
}

TEST(FlagsParse, HelpLongAndShort) {
  for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE}) {
    EXPECT_TRUE(parse({"--help"}, p).get_bool("help"));
    EXPECT_TRUE(parse({"-h"}, p).get_bool("help"));
  }
  EXPECT_TRUE(parse({"--help=true"}).get_bool("help"));
}

TEST(FlagsParse, HelpWinsOverMistakesElsewhere) {
  // A user who typed something wrong and then asks for help should get the help.
  EXPECT_TRUE(parse({"--lr", "abc", "--bogus", "-h"}).get_bool("help"));
}

TEST(FlagsParse, ValueAfterFlagMayLookOdd) {
  // Only "--" marks the next flag; "-" alone or "-x" is a value (a path or a negative number).
  EXPECT_EQ(parse({"--data", "-"}).get_str("data"), "-");
}

// ---- precedence: default < preset < config < command line ---------------------------------

TEST(FlagsPrecedence, DefaultPresetConfigCommandLine) {
  Flags f = parse({"--steps", "7", "--config", kFix + "precedence.conf", "--model", "small"});
  EXPECT_EQ(f.get_int("steps"), 7);  // config says 40, command line 7
  EXPECT_EQ(f.source("steps"), "command line");
  EXPECT_EQ(f.get_int("n-layer"), 3);  // preset small says 6, config 3
  EXPECT_EQ(f.source("n-layer"), "config " + kFix + "precedence.conf");
  EXPECT_DOUBLE_EQ(f.get_float("lr"), 7e-4);  // preset says 1e-3, config 7e-4
  EXPECT_EQ(f.get_int("seed"), 5);            // default 1, config 5
  EXPECT_EQ(f.get_int("d-model"), 256);       // only the preset sets it
  EXPECT_EQ(f.source("d-model"), "preset small");
  EXPECT_FALSE(f.was_set("d-model"));
  EXPECT_TRUE(f.was_set("n-layer"));
  EXPECT_EQ(f.get_int("eval-every"), 100);  // nobody sets it
  EXPECT_EQ(f.source("eval-every"), "default");
}

TEST(FlagsPrecedence, OrderOnCommandLineDoesNotMatter) {
  Flags a = parse({"--config", kFix + "precedence.conf", "--steps", "7", "--model", "small"});
  Flags b = parse({"--model", "small", "--steps", "7", "--config", kFix + "precedence.conf"});
  EXPECT_EQ(a.effective(PROG_TRAIN), b.effective(PROG_TRAIN));
  EXPECT_EQ(a.get_int("steps"), 7);
}

TEST(FlagsPrecedence, DefaultPresetApplies) {
  // No --model: the default preset (tiny) still sets its flags, lr included.
  Flags f = parse({});
  EXPECT_EQ(f.get_str("model"), "tiny");
  EXPECT_DOUBLE_EQ(f.get_float("lr"), 2e-3);  // the table default is 1e-3; tiny says 2e-3
  EXPECT_EQ(f.source("lr"), "preset tiny");
  EXPECT_EQ(f.source("model"), "default");
}

TEST(FlagsPrecedence, PresetOverriddenOnCommandLine) {
  Flags f = parse({"--model", "125m", "--seq-len", "256", "--lr=1e-4"});
  EXPECT_EQ(f.get_int("n-layer"), 12);
  EXPECT_EQ(f.get_int("seq-len"), 256);
  EXPECT_EQ(f.source("seq-len"), "command line");
  EXPECT_DOUBLE_EQ(f.get_float("lr"), 1e-4);
  // The flag given before --model wins as well.
  EXPECT_EQ(parse({"--n-layer", "2", "--model", "13b"}).get_int("n-layer"), 2);
}

TEST(FlagsPrecedence, ConfigChoosesPreset) {
  Flags f = parse({"--config", kFix + "model_small.conf"});
  EXPECT_EQ(f.get_str("model"), "small");
  EXPECT_EQ(f.get_int("d-model"), 256);
  EXPECT_EQ(f.source("d-model"), "preset small");
}

TEST(FlagsPrecedence, CommandLineModelBeatsConfigModel) {
  Flags f = parse({"--config", kFix + "model_small.conf", "--model", "355m"});
  EXPECT_EQ(f.get_str("model"), "355m");
  EXPECT_EQ(f.get_int("d-model"), 1024);
}

TEST(FlagsPrecedence, ProgramWithoutPresetFlagGetsTableDefaults) {
  // eval has no --model, so no preset touches its batch-size.
  Flags f = parse({}, PROG_EVAL);
  EXPECT_EQ(f.get_int("batch-size"), 16);
  EXPECT_EQ(f.source("batch-size"), "default");
}

TEST(FlagsPrecedence, OwnTableHonoursPresetFlag) {
  EXPECT_EQ(parse({}, PROG_TRAIN, kTestTable).get_int("width"), 2);
  EXPECT_EQ(parse({"--size=b"}, PROG_TRAIN, kTestTable).get_int("width"), 3);
  EXPECT_EQ(parse({"--size=b", "--width=9"}, PROG_TRAIN, kTestTable).get_int("width"), 9);
}

// ---- command-line errors ------------------------------------------------------------------

TEST(FlagsErrors, UnknownFlagSuggestsClosest) {
  expect_has(error_of({"--bacth-size", "4"}),
             {"unknown flag --bacth-size", "did you mean --batch-size?", "HINT:", "train --help"});
  expect_has(error_of({"--seq_len=5"}), {"unknown flag --seq_len", "did you mean --seq-len?"});
  expect_has(error_of({"--step", "5"}), {"did you mean --steps?"});
}

TEST(FlagsErrors, UnknownFlagFarFromAnyGetsNoSuggestion) {
  std::string msg = error_of({"--zzzzzzzzzz", "1"});
  expect_has(msg, {"unknown flag --zzzzzzzzzz", "HINT:"});
  EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
}

TEST(FlagsErrors, SuggestionsOnlyNameThisProgramsFlags) {
  // "--step" is one letter from train's --steps, but eval has no --steps.
  std::string msg = error_of({"--step", "5"}, PROG_EVAL);
  EXPECT_EQ(msg.find("--steps"), std::string::npos) << msg;
}

TEST(FlagsErrors, SingleDashSuggestsTwo) {
  expect_has(error_of({"-lr", "1e-3"}), {"'-lr'", "two dashes", "did you mean --lr?", "HINT:"});
}

TEST(FlagsErrors, FlagOfAnotherProgram) {
  expect_has(error_of({"--ckpt", "m.bin"}, PROG_TRAIN),
             {"--ckpt is not a flag of train", "only of eval, finetune", "HINT:", "train --help"});
  expect_has(error_of({"--steps", "5"}, PROG_EVAL),
             {"--steps is not a flag of eval", "only of train", "eval --help"});
}

TEST(FlagsErrors, MissingValue) {
  expect_has(error_of({"--lr"}), {"--lr needs a value", "a number in (0, 1]", "HINT:", "--lr 1e-3"});
  expect_has(error_of({"--steps", "--lr", "1e-3"}),
             {"--steps needs a value", "an integer in [1, 2147483647]"});
  expect_has(error_of({"--model"}), {"--model needs a value", "one of tiny|small|125m"});
}

TEST(FlagsErrors, MalformedNumber) {
  expect_has(error_of({"--lr", "abc"}), {"--lr expects a number, got 'abc'", "HINT:"});
  expect_has(error_of({"--lr=1e-3x"}), {"--lr expects a number, got '1e-3x'"});
  expect_has(error_of({"--lr="}), {"--lr expects a number, got ''"});
  expect_has(error_of({"--lr", " 1e-3"}), {"--lr expects a number, got ' 1e-3'"});
  expect_has(error_of({"--lr=inf"}), {"--lr expects a finite number, got 'inf'"});
  expect_has(error_of({"--clip-grad=nan"}), {"--clip-grad expects a finite number, got 'nan'"});
}

TEST(FlagsErrors, MalformedInteger) {
  expect_has(error_of({"--steps", "1.5"}), {"--steps expects an integer, got '1.5'", "HINT:"});
  expect_has(error_of({"--steps=2.5e0"}), {"--steps expects an integer, got '2.5e0'"});
  expect_has(error_of({"--steps=0x10"}), {"--steps expects an integer, got '0x10'"});
  expect_has(error_of({"--steps=inf"}), {"--steps expects an integer, got 'inf'"});
  expect_has(error_of({"--steps=ten"}), {"--steps expects an integer, got 'ten'"});
}

TEST(FlagsErrors, OutOfRangeEachKindOfInterval) {
  // (0, 1]: 0 is out, 1 is in.
  expect_has(error_of({"--lr=0"}), {"--lr must be in (0, 1], got 0", "HINT:"});
  EXPECT_EQ(error_of({"--lr=1"}), "(no error)");
  // [0, 1): 0 is in, 1 is out.
  EXPECT_EQ(error_of({"--dropout=0"}), "(no error)");
  expect_has(error_of({"--dropout=1"}), {"--dropout must be in [0, 1), got 1"});
  // (0, 1): both ends out.
  expect_has(error_of({"--adam-eps=0"}), {"--adam-eps must be in (0, 1), got 0"});
  expect_has(error_of({"--adam-eps=1"}), {"--adam-eps must be in (0, 1), got 1"});
  // [1, 256] closed, and a one-sided range.
  EXPECT_EQ(error_of({"--n-layer=256"}), "(no error)");
  expect_has(error_of({"--n-layer=257"}), {"--n-layer must be in [1, 256], got 257"});
  expect_has(error_of({"--steps=0"}), {"--steps must be in [1, 2147483647], got 0"});
  expect_has(error_of({"--clip-grad=-1"}), {"--clip-grad must be in [0, inf), got -1"});
  // [0, 2^31) on an Int, and an integer too large for 64 bits.
  EXPECT_EQ(error_of({"--seed=2147483647"}), "(no error)");
  expect_has(error_of({"--seed=2147483648"}), {"--seed must be in [0, 2147483648)"});
  expect_has(error_of({"--seed=99999999999999999999999"}), {"--seed must be in [0, 2147483648)"});
}

TEST(FlagsErrors, BadEnumListsChoices) {
  expect_has(error_of({"--model", "huge"}),
             {"--model expects one of tiny|small|125m|355m|1.3b|2.7b|6.7b|13b, got 'huge'",
              "HINT:"});
  expect_has(error_of({"--model=smal"}), {"did you mean 'small'?"});
  expect_has(error_of({"--device=gpu"}), {"--device expects one of auto|cpu|cuda, got 'gpu'"});
}

TEST(FlagsErrors, BadBool) {
  expect_has(error_of({"--verbose=yes"}, PROG_TRAIN, kTestTable),
             {"--verbose expects true, false, 1 or 0, got 'yes'", "HINT:"});
}

TEST(FlagsErrors, RepeatedFlag) {
  expect_has(error_of({"--lr", "1e-3", "--steps", "3", "--lr=2e-3"}),
             {"--lr is given twice", "'1e-3' and '2e-3'", "HINT:"});
  expect_has(error_of({"--config", "a", "--config", "b"}), {"--config is given twice"});
}

TEST(FlagsErrors, PositionalArgument) {
  expect_has(error_of({"data.txt"}),
             {"unexpected argument 'data.txt'", "train takes only flags", "HINT:"});
  expect_has(error_of({"--steps", "5", "6"}), {"unexpected argument '6'"});
  expect_has(error_of({"--"}), {"unexpected argument '--'"});
}

TEST(FlagsErrors, PositionalAfterBareBoolExplainsEquals) {
  expect_has(error_of({"--verbose", "false"}, PROG_TRAIN, kTestTable),
             {"unexpected argument 'false'", "HINT: a boolean flag takes its value after '='",
              "--verbose=false"});
}

// ---- config-file errors name FILE:LINE ----------------------------------------------------

TEST(FlagsConfig, GoodFileIsApplied) {
  Flags f = parse({"--config", kFix + "good.conf"});
  EXPECT_EQ(f.get_int("steps"), 50);
  EXPECT_DOUBLE_EQ(f.get_float("lr"), 5e-4);
  EXPECT_EQ(f.get_int("batch-size"), 8);
  EXPECT_EQ(f.get_str("data"), "corpora/my text#1.txt");
  EXPECT_TRUE(f.was_set("steps"));
  EXPECT_EQ(f.source("steps"), "config " + kFix + "good.conf");
  EXPECT_EQ(f.get_str("config"), kFix + "good.conf");
  EXPECT_EQ(f.source("config"), "command line");
}

TEST(FlagsConfig, MissingFile) {
  expect_has(error_of({"--config", kFix + "no_such.conf"}),
             {"cannot open config file '" + kFix + "no_such.conf'", "HINT:"});
}

TEST(FlagsConfig, EmptyPathMeansNoFile) {
  EXPECT_EQ(parse({"--config="}).get_int("steps"), 300);
}

TEST(FlagsConfig, ErrorsNameFileAndLine) {
  struct Case {
    const char* file;
    int line;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {"bad_number.conf", 3, {"lr expects a number, got 'fast'", "HINT:"}},
      {"out_of_range.conf", 2, {"dropout must be in [0, 1), got 1"}},
      {"unknown_key.conf", 3, {"unknown flag bacth-size; did you mean batch-size?"}},
      {"dashes.conf", 2, {"write the key without dashes: 'lr=1e-3'"}},
      {"no_equals.conf", 4, {"expected key=value, got 'steps 50'", "HINT:"}},
      {"repeated.conf", 4, {"lr is set twice in this file (lines 2 and 4)"}},
      {"other_program.conf", 2, {"ckpt is not a flag of train"}},
      {"nested.conf", 2, {"config cannot be set in a config file"}},
      {"trailing_comment.conf", 2, {"lr expects a number", "comments must be on their own line"}},
      {"bad_enum.conf", 2, {"model expects one of tiny|small"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    std::string path = kFix + c.file;
    std::string msg = error_of({"--config", path});
    expect_has(msg, {path + ":" + std::to_string(c.line) + ": "});
    expect_has(msg, c.parts);
  }
}

TEST(FlagsConfig, CrLfLinesAreAccepted) {
  std::string path = testing::TempDir() + "flags_crlf.conf";
  {
    std::ofstream out(path, std::ios::binary);
    out << "# written on Windows\r\nsteps=12\r\n\r\nmodel=small\r\n";
  }
  Flags f = parse({"--config", path});
  EXPECT_EQ(f.get_int("steps"), 12);
  EXPECT_EQ(f.get_str("model"), "small");
  std::remove(path.c_str());
}

// ---- accessors: misuse is a bug in our code ------------------------------------------------

TEST(FlagsAccess, UnknownNameIsInternalError) {
  Flags f = parse({});
  expect_has(internal_error_of([&] { f.get_int("no-such-flag"); }),
             {"internal error", "--no-such-flag"});
}

TEST(FlagsAccess, WrongTypeIsInternalError) {
  Flags f = parse({});
  expect_has(internal_error_of([&] { f.get_float("steps"); }), {"internal error", "--steps"});
  expect_has(internal_error_of([&] { f.get_int("lr"); }), {"internal error"});
  expect_has(internal_error_of([&] { f.get_bool("data"); }), {"internal error"});
  expect_has(internal_error_of([&] { f.get_str("steps"); }), {"internal error"});
  EXPECT_EQ(f.get_str("model"), "tiny");  // Enum flags read as strings
}

TEST(FlagsAccess, FlagOfOtherProgramIsInternalError) {
  Flags f = parse({}, PROG_EVAL);
  expect_has(internal_error_of([&] { f.get_int("steps"); }), {"internal error", "eval"});
  expect_has(internal_error_of([&] { f.effective(PROG_TRAIN); }), {"internal error"});
}

TEST(FlagsAccess, EffectiveListsProgramFlagsInTableOrder) {
  for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE}) {
    auto eff = parse({}, p).effective(p);
    const FlagTable& t = builtin_flag_table();
    std::vector<std::string> expected;
    for (size_t i = 0; i < t.n_flags; ++i)
      if ((t.flags[i].programs & p) && std::string(t.flags[i].name) != "help")
        expected.push_back(t.flags[i].name);
    std::vector<std::string> got;
    for (const auto& kv : eff) got.push_back(kv.first);
    EXPECT_EQ(got, expected) << program_name(p);
  }
}

// ---- --help: generated from the table, so it cannot drift ---------------------------------

TEST(FlagsHelp, ListsExactlyTheProgramsFlags) {
  const FlagTable& t = builtin_flag_table();
  for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE}) {
    SCOPED_TRACE(program_name(p));
    std::set<std::string> expected;
    for (size_t i = 0; i < t.n_flags; ++i)
      if (t.flags[i].programs & p) expected.insert(t.flags[i].name);
    EXPECT_EQ(help_flag_names(usage_text(p)), expected);
  }
}

TEST(FlagsHelp, EveryFlagShowsItsDefaultAndHelp) {
  const FlagTable& t = builtin_flag_table();
  std::string help = usage_text(PROG_TRAIN);
  for (size_t i = 0; i < t.n_flags; ++i) {
    const FlagSpec& s = t.flags[i];
    if (!(s.programs & PROG_TRAIN)) continue;
    size_t at = help.find(std::string("  --") + s.name + (s.type == FlagType::Bool ? "" : " <"));
    ASSERT_NE(at, std::string::npos) << s.name;
    size_t end = help.find("\n  --", at + 1);
    std::string block = help.substr(at, end - at);
    // The help sentence's first word and the default survive word wrapping.
    std::string first_word = std::string(s.help).substr(0, std::string(s.help).find(' '));
    expect_has(block, {first_word});
    std::string dflt = s.default_value[0] ? s.default_value : "\"\"";
    expect_has(block, {"(default: " + dflt});
  }
}

TEST(FlagsHelp, ShowsTypesChoicesRangesAndPresets) {
  std::string help = usage_text(PROG_TRAIN);
  expect_has(help, {"train - ", "usage: train", "precedence: default < --model preset < --config "
                    "file < command line", "\nrun:\n", "\nmodel:\n", "\ndata:\n", "\noptim:\n",
                    "--lr <float>", "range (0, 1]", "--steps <int>", "range [1, 2147483647]",
                    "--device <choice>", "one of auto|cpu|cuda", "--data <string>", "set by --model",
                    "range [0, 2147483648)"});
  // eval has no --model, so its help does not speak of presets.
  std::string eval_help = usage_text(PROG_EVAL);
  expect_has(eval_help, {"precedence: default < --config file < command line"});
  EXPECT_EQ(eval_help.find("--model"), std::string::npos);
  // Groups come in table order.
  EXPECT_LT(help.find("\nrun:\n"), help.find("\nmodel:\n"));
  EXPECT_LT(help.find("\ndata:\n"), help.find("\noptim:\n"));
}

TEST(FlagsHelp, LinesStayWithinWidth) {
  for (Program p : {PROG_TRAIN, PROG_EVAL, PROG_FINETUNE}) {
    std::stringstream ss(usage_text(p));
    for (std::string line; std::getline(ss, line);) EXPECT_LE(line.size(), 100u) << line;
  }
}

// ---- the table itself ---------------------------------------------------------------------

TEST(FlagTableCheck, BuiltinAndTestTablesAreConsistent) {
  EXPECT_NO_THROW(check_flag_table(builtin_flag_table()));
  EXPECT_NO_THROW(check_flag_table(kTestTable));
}

TEST(FlagTableCheck, CatchesBadRows) {
  auto with_row = [](const FlagSpec& extra) {
    std::vector<FlagSpec> rows(kTestFlags, kTestFlags + 6);
    rows.push_back(extra);
    FlagTable t = {rows.data(), rows.size(), kTestPresets, 2, "size"};
    return internal_error_of([&] { check_flag_table(t); });
  };
  auto I = Interval::Closed;
  expect_has(with_row({"offset", FlagType::Int, "0", "twice", nullptr, 0, 1, I, PROG_ALL, "run"}),
             {"internal error", "appears twice"});
  expect_has(with_row({"big", FlagType::Int, "50", "out", nullptr, 0, 10, I, PROG_ALL, "run"}),
             {"internal error", "default of --big must be in [0, 10]"});
  expect_has(with_row({"e", FlagType::Enum, "z", "enum", "x|y", NA, NA, I, PROG_ALL, "run"}),
             {"internal error", "default of --e expects one of x|y"});
  expect_has(with_row({"s", FlagType::String, "", "str", "x|y", NA, NA, I, PROG_ALL, "run"}),
             {"internal error", "choices are for Enum flags only"});
}

TEST(FlagTableCheck, CatchesBadPresets) {
  auto with_presets = [](std::vector<Preset> presets) {
    FlagTable t = {kTestFlags, 6, presets.data(), presets.size(), "size"};
    return internal_error_of([&] { check_flag_table(t); });
  };
  expect_has(with_presets({{"a", "width=2"}}), {"internal error", "no preset for --size b"});
  expect_has(with_presets({{"a", "depth=2"}, {"b", "width=3"}}),
             {"internal error", "preset a sets --depth"});
  expect_has(with_presets({{"a", "width=0"}, {"b", "width=3"}}),
             {"internal error", "preset a: width must be in [1, 100]"});
  expect_has(with_presets({{"a", "offset=1"}, {"b", "width=3"}}), {"(no error)"});
}

TEST(FlagTableCheck, PresetsFollowThePaperLadder) {
  // SPEC §2: L, C, NH and the dense learning rate of each paper model; context 2048.
  struct Row {
    const char* name;
    int64_t L, C, NH;
    double lr;
  };
  const Row ladder[] = {{"125m", 12, 768, 12, 6e-4},    {"355m", 24, 1024, 16, 3e-4},
                        {"1.3b", 24, 2048, 32, 2e-4},   {"2.7b", 32, 2560, 32, 1.6e-4},
                        {"6.7b", 32, 4096, 32, 1.2e-4}, {"13b", 40, 5120, 40, 1e-4}};
  for (const Row& r : ladder) {
    SCOPED_TRACE(r.name);
    Flags f = parse({"--model", r.name});
    EXPECT_EQ(f.get_int("n-layer"), r.L);
    EXPECT_EQ(f.get_int("d-model"), r.C);
    EXPECT_EQ(f.get_int("n-head"), r.NH);
    EXPECT_EQ(f.get_int("seq-len"), 2048);
    EXPECT_DOUBLE_EQ(f.get_float("lr"), r.lr);
    EXPECT_EQ(f.get_int("d-model") % f.get_int("n-head"), 0);
  }
  Flags tiny = parse({"--model=tiny"}), small = parse({"--model=small"});
  EXPECT_EQ(tiny.get_int("d-model"), 128);
  EXPECT_EQ(small.get_int("n-layer"), 6);
  EXPECT_DOUBLE_EQ(small.get_float("lr"), 1e-3);
}

// ---- the effective-config table ------------------------------------------------------------

TEST(FlagsEffective, TextListsValuesAndSources) {
  Flags f = parse({"--steps", "9", "--config", kFix + "precedence.conf", "--model", "small"});
  std::string text = effective_config_text(f, PROG_TRAIN);
  expect_has(text, {"effective configuration of train", "name", "value", "source"});
  // One line per flag: name, value, source, in that order.
  auto line_of = [&](const std::string& name) {
    size_t at = text.find("\n  " + name + " ");
    EXPECT_NE(at, std::string::npos) << name;
    return text.substr(at + 1, text.find('\n', at + 1) - at - 1);
  };
  expect_has(line_of("steps"), {"9", "command line"});
  expect_has(line_of("n-layer"), {"3", "config " + kFix + "precedence.conf"});
  expect_has(line_of("d-model"), {"256", "preset small"});
  expect_has(line_of("eval-every"), {"100", "default"});
  expect_has(line_of("data"), {"\"\"", "default"});
  EXPECT_EQ(text.find("\n  help "), std::string::npos);
}

}  // namespace
}  // namespace moe
