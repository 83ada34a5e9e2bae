// json.h — the project's one JSON reader, plus the two helpers that write JSON scalars.
//
// What it implements: RFC 8259 values — null, true, false, numbers, strings (all escapes,
// \uXXXX including surrogate pairs, decoded to UTF-8), arrays and objects — parsed from one
// string into a Json tree; json_quote and json_number for the results files written by hand.
// Who needs it: eval reads the priming tasks (JSON lines, SPEC §6) and its own results files back
// (`eval --speedup`, SPEC §8); finetune reads BoolQ / MultiNLI jsonl (SPEC §7) and writes its
// results file; the tokenizer reads and writes GPT-2's encoder.json (SPEC §5). The project links
// no JSON library (notes/design.md: C++17 standard library only), and one reader means one set of
// escape and error rules for every file.
//
// The surrogate rule (the same for every file): \uD800-\uDBFF followed by \uDC00-\uDFFF is one
// code point (a UTF-16 pair). Any other surrogate escape — a high one alone or before a
// non-surrogate, a low one alone, a reversed pair "\uDC00\uD800" — has no UTF-8 form and
// becomes U+FFFD (the replacement character), one per escape, so a stray escape does not fail a
// whole record. A caller that cannot use U+FFFD refuses it with its own message (the tokenizer
// does: no GPT-2 token contains it).
//
// Why a tree and not a streaming reader: one record is a few kB, and field lookups by name read
// plainly in the task readers (`rec.at("question").at("stem")`).
//
// What it leaves out: writing arbitrary trees (files are written field by field), duplicate-key
// errors (the last one wins, as in Python's json.loads, which wrote the task files), numbers beyond
// double precision (kept as doubles; record ids are strings in every task format), and comments
// or trailing commas (not JSON).
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  // Typed reads; each throws moe::Error naming the expected and the actual kind.
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const std::vector<Json>& as_array() const;
  const std::vector<std::pair<std::string, Json>>& as_object() const;  // in file order

  // Object member by name (the last one when the key repeats): nullptr when absent (or when this
  // is not an object).
  const Json* find(std::string_view key) const;
  // Object member by name; throws moe::Error naming the key when it is absent.
  const Json& at(std::string_view key) const;

  static const char* kind_name(Kind k);  // "null", "number", ... for messages
  const char* kind_name() const { return kind_name(kind_); }

 private:
  friend class JsonTextParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Json> array_;
  std::vector<std::pair<std::string, Json>> object_;
};

// Parse exactly one JSON value (surrounding whitespace allowed, and a UTF-8 byte-order mark at the
// very start, which is skipped; nothing else). On malformed input
// throws moe::Error "column C: <what>" (1-based column in bytes): the reader sees one line of a
// JSON-lines file, so the callers prefix the file and line they read it from.
Json parse_json(std::string_view text);

// The same for a whole file's text: errors read "NAME:LINE:COLUMN: <what>" (1-based), so that a
// multi-line file points at the line an editor shows.
Json parse_json_file(std::string_view text, const std::string& name);

// `s` as a JSON string literal, quotes included: "a\"b\n" -> "\"a\\\"b\\n\"". Bytes >= 0x80 pass
// through unchanged (the files we write are UTF-8).
std::string json_quote(std::string_view s);

// `s` (valid UTF-8) as a JSON string literal in ASCII only, the way Python's json.dumps writes by
// default: every code point outside printable ASCII as \uXXXX, above U+FFFF as a surrogate pair.
// GPT-2's encoder.json is written so; writing its tokens back this way reproduces its bytes.
std::string json_quote_ascii(std::string_view s);

// A number for a JSON file: shortest round-trip form ("%.17g" trimmed), or null when not finite.
std::string json_number(double x);

}  // namespace moe
