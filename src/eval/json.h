// json.h — a small JSON reader (and string escaper) for the evaluation data and results files.
//
// What it implements: RFC 8259 values — null, true, false, numbers, strings (all escapes,
// \uXXXX including surrogate pairs, decoded to UTF-8), arrays and objects — parsed from one
// string into a Json tree. The priming tasks are stored as JSON lines (SPEC §6: PIQA,
// WinoGrande, OpenBookQA, HellaSwag's original form, ReCoRD), and `eval --speedup` reads back the
// results files eval writes (SPEC §8), so eval needs a reader; the project links no JSON library.
//
// Why a tree and not a streaming reader: one record is a few kB, and field lookups by name read
// plainly in the task readers (`rec.at("question").at("stem")`).
//
// What it leaves out: writing arbitrary trees (results files are written field by field with
// json_quote), duplicate-key detection (the last one is not "winning": lookups return the first),
// numbers beyond double precision (kept as doubles; record ids are strings in every task format),
// and comments or trailing commas (not JSON).
#pragma once
#include <cstddef>
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
  const std::vector<std::pair<std::string, Json>>& as_object() const;

  // Object member by name: nullptr when absent (or when this is not an object).
  const Json* find(std::string_view key) const;
  // Object member by name; throws moe::Error naming the key when it is absent.
  const Json& at(std::string_view key) const;

  static const char* kind_name(Kind k);  // "null", "number", ... for messages

 private:
  friend class JsonTextParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Json> array_;
  std::vector<std::pair<std::string, Json>> object_;
};

// Parse exactly one JSON value (surrounding whitespace allowed, nothing else). On malformed input
// throws moe::Error "column C: <what>" (1-based column in bytes), which callers prefix with the
// file and line they read it from.
Json parse_json_value(std::string_view text);

// `s` as a JSON string literal, quotes included: "a\"b\n" -> "\"a\\\"b\\n\"". Bytes >= 0x80 pass
// through unchanged (the files we write are UTF-8).
std::string json_quote(std::string_view s);

// A number for a JSON file: shortest round-trip form ("%.17g" trimmed), or null when not finite.
std::string json_number(double x);

}  // namespace moe
