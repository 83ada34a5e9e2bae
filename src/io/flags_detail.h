// flags_detail.h — helpers the flag parser (flags.cpp) and the --help writer (flags_help.cpp)
// share. Internal to src/io/flags*: programs and tests use flags.h.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "io/flags.h"

namespace moe::flags_detail {

// 2147483648, not 2.14748e+09: integers print without a decimal point, others as %g would.
std::string format_number(double x);
// True for an Int or Float flag with at least one finite end.
bool has_range(const FlagSpec& s);
// "[0, 1)", "(0, 1]", "[1, inf)".
std::string range_text(const FlagSpec& s);
// The row named `name`, or nullptr.
const FlagSpec* find_spec(const FlagTable& table, const std::string& name);
// A preset's "key=value key=value" string as pairs.
std::vector<std::pair<std::string, std::string>> preset_settings(const Preset& p);
// `s`'s ProgramHelp entry for `prog`, or nullptr.
const ProgramHelp* program_help_row(const FlagSpec& s, Program prog);

}  // namespace moe::flags_detail
