// json_reader.h — a small JSON reader for one-object-per-line task files (BoolQ, MultiNLI jsonl),
// and the string escaping the fine-tuning results file needs on the way out.
//
// Why our own: the project uses the C++17 standard library only (DESIGN.md). The task files are
// written by Python's json.dumps (MANIFEST §6: `", "` separators, non-ASCII as \uXXXX), so the
// reader has to handle every escape, including UTF-16 surrogate pairs, and turn them into UTF-8
// bytes, which is what the BPE tokenizer reads.
//
// What it reads: RFC 8259 JSON values — objects, arrays, strings, numbers, true/false/null —
// with whitespace anywhere between tokens. Numbers are kept as doubles. Errors throw moe::Error
// with the byte column and what was expected; the caller prefixes the file and line.
// What it leaves out: writing JSON values (the results file is written by hand, see
// json_escape), streaming, duplicate-key detection (the last one wins, as in Python), and
// numbers beyond double precision.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe {

struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool b = false;                                        // Kind::Bool
  double num = 0.0;                                      // Kind::Number
  std::string str;                                       // Kind::String (UTF-8)
  std::vector<JsonValue> items;                          // Kind::Array
  std::vector<std::pair<std::string, JsonValue>> members;  // Kind::Object, in file order

  // Object lookup: the member's value, or nullptr when absent (or this is not an object).
  const JsonValue* find(const std::string& key) const;
  const char* kind_name() const;  // "string", "object", ... for error messages
};

// Parse one complete JSON text (trailing whitespace allowed, anything else after it is an error).
JsonValue parse_json(std::string_view text);

// Escape a string for a JSON string literal (without the quotes): ", \ and control bytes.
std::string json_escape(const std::string& s);

}  // namespace moe
