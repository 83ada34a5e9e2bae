// json.cpp — the JSON reader and scalar writers declared in json.h: a recursive-descent parser
// over a string_view, one function per grammar rule. Nesting depth is capped so that a hostile
// line like "[[[[..." cannot overflow the C++ stack (task records nest three levels at most).
#include "io/json.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/check.h"
#include "data/unicode.h"  // utf8_append, utf8_decode, hex_digit_value

namespace moe {

// -------------------------------------------------------------------------------------------------
// typed access

const char* Json::kind_name(Kind k) {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "boolean";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

static void expect_kind(Json::Kind want, Json::Kind got) {
  CHECK(want == got, "expected a JSON ", Json::kind_name(want), ", found a ",
        Json::kind_name(got));
}

bool Json::as_bool() const { expect_kind(Kind::Bool, kind_); return bool_; }
double Json::as_number() const { expect_kind(Kind::Number, kind_); return number_; }
const std::string& Json::as_string() const {
  expect_kind(Kind::String, kind_);
  return string_;
}
const std::vector<Json>& Json::as_array() const {
  expect_kind(Kind::Array, kind_);
  return array_;
}
const std::vector<std::pair<std::string, Json>>& Json::as_object() const {
  expect_kind(Kind::Object, kind_);
  return object_;
}

const Json* Json::find(std::string_view key) const {
  if (kind_ != Kind::Object) return nullptr;
  const Json* found = nullptr;
  for (const auto& [k, v] : object_)
    if (k == key) found = &v;  // keep looking: the last duplicate wins, as in Python's json
  return found;
}

const Json& Json::at(std::string_view key) const {
  expect_kind(Kind::Object, kind_);
  const Json* v = find(key);
  CHECK(v != nullptr, "missing field \"", std::string(key), "\"");
  return *v;
}

// -------------------------------------------------------------------------------------------------
// parser

class JsonTextParser {
 public:
  // `name` empty: errors say "column C"; else "NAME:LINE:COLUMN".
  JsonTextParser(std::string_view s, std::string name) : s_(s), name_(std::move(name)) {}

  Json parse_document() {
    // A UTF-8 byte-order mark before the value is ignored (RFC 8259 allows it): Windows editors
    // put one at the start of a file, so the first line of a JSON-lines file may carry it.
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    skip_space();
    Json v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;
  std::string_view s_;
  std::string name_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    if (name_.empty()) throw Error(str_cat("column ", pos_ + 1, ": ", what));
    size_t line = 1, line_start = 0;
    for (size_t k = 0; k < pos_ && k < s_.size(); ++k)
      if (s_[k] == '\n') ++line, line_start = k + 1;
    throw Error(str_cat(name_, ":", line, ":", pos_ - line_start + 1, ": ", what));
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  void skip_space() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' ||
                         s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(str_cat("expected '", c, "'", at_end() ? " but the input ended" : ""));
    ++pos_;
  }
  void expect_word(const char* w) {
    for (const char* p = w; *p; ++p) {
      if (peek() != *p) fail(str_cat("expected '", w, "'"));
      ++pos_;
    }
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 256 levels");
    Json v;
    switch (peek()) {
      case '{': v.kind_ = Json::Kind::Object; parse_object(v, depth); break;
      case '[': v.kind_ = Json::Kind::Array; parse_array(v, depth); break;
      case '"': v.kind_ = Json::Kind::String; v.string_ = parse_string(); break;
      case 't': expect_word("true"); v.kind_ = Json::Kind::Bool; v.bool_ = true; break;
      case 'f': expect_word("false"); v.kind_ = Json::Kind::Bool; break;
      case 'n': expect_word("null"); break;
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          v.kind_ = Json::Kind::Number;
          v.number_ = parse_number();
        } else {
          fail(at_end() ? "the input ended where a value was expected"
                        : str_cat("unexpected character '", peek(), "'"));
        }
    }
    return v;
  }

  void parse_object(Json& v, int depth) {
    expect('{');
    skip_space();
    if (peek() == '}') { ++pos_; return; }
    while (true) {
      skip_space();
      if (peek() != '"') fail("expected a \"key\" in an object");
      std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      v.object_.emplace_back(std::move(key), parse_value(depth + 1));
      skip_space();
      if (peek() == ',') { ++pos_; continue; }
      expect('}');
      return;
    }
  }

  void parse_array(Json& v, int depth) {
    expect('[');
    skip_space();
    if (peek() == ']') { ++pos_; return; }
    while (true) {
      skip_space();
      v.array_.push_back(parse_value(depth + 1));
      skip_space();
      if (peek() == ',') { ++pos_; continue; }
      expect(']');
      return;
    }
  }

  // The strict JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  double parse_number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t d0 = pos_;
      while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == d0) fail("malformed number: a digit is missing");
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') ++pos_; else digits();
    if (peek() == '.') { ++pos_; digits(); }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      digits();
    }
    // strtod needs a NUL-terminated copy; numbers are short.
    const std::string text(s_.substr(start, pos_ - start));
    return std::strtod(text.c_str(), nullptr);
  }

  uint32_t parse_hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int d = hex_digit_value(peek());
      if (d < 0) fail("malformed \\u escape: four hex digits expected");
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    return v;
  }

  // The surrogate rule of json.h: \uD83D\uDE00 is one code point (a UTF-16 pair); any other
  // surrogate escape has no UTF-8 form and becomes U+FFFD. A high surrogate followed by an escape
  // that is not a low one keeps that escape for the next character ("\uD800\u0041" -> U+FFFD A).
  uint32_t parse_unicode_escape() {
    uint32_t cp = parse_hex4();
    if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
      const size_t save = pos_;
      pos_ += 2;
      const uint32_t lo = parse_hex4();
      if (lo >= 0xDC00 && lo <= 0xDFFF) return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      pos_ = save;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0xFFFD;
    return cp;
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (at_end()) fail("the input ended inside a string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character inside a string");
      if (c != '\\') { out.push_back(c); continue; }
      if (at_end()) fail("the input ended inside a string");  // a backslash was the last byte
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': utf8_append(parse_unicode_escape(), &out); break;
        default: --pos_; fail(str_cat("unknown escape '\\", e, "'"));
      }
    }
  }
};

Json parse_json(std::string_view text) { return JsonTextParser(text, "").parse_document(); }

Json parse_json_file(std::string_view text, const std::string& name) {
  return JsonTextParser(text, name.empty() ? "(json)" : name).parse_document();
}

// -------------------------------------------------------------------------------------------------
// writing

namespace {

void append_u_escape(uint32_t u, std::string* out) {
  char buf[16];  // "\\u" and 4 hex digits for u <= 0xFFFF; room to spare for the compiler's check
  std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(u));
  *out += buf;
}

// The escapes both writers share: the two that must be escaped, the five short control escapes,
// \u00XX for the other control characters. False for anything else (the caller writes it).
bool append_escape(uint32_t c, std::string* out) {
  switch (c) {
    case '"': *out += "\\\""; return true;
    case '\\': *out += "\\\\"; return true;
    case '\n': *out += "\\n"; return true;
    case '\r': *out += "\\r"; return true;
    case '\t': *out += "\\t"; return true;
    case '\b': *out += "\\b"; return true;
    case '\f': *out += "\\f"; return true;
    default:
      if (c >= 0x20) return false;
      append_u_escape(c, out);
      return true;
  }
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s)
    if (!append_escape(static_cast<unsigned char>(c), &out)) out.push_back(c);
  return out + "\"";
}

std::string json_quote_ascii(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    i += utf8_decode(s, i, &cp);
    ASSERT_INTERNAL(cp != kInvalidCodePoint, "json_quote_ascii needs valid UTF-8");
    if (append_escape(cp, &out)) continue;
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      append_u_escape(cp, &out);
    } else {
      append_u_escape(0xD800 + ((cp - 0x10000) >> 10), &out);
      append_u_escape(0xDC00 + ((cp - 0x10000) & 0x3FF), &out);
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  // The shortest of %.15g..%.17g that reads back as the same double: 0.1 stays "0.1".
  char buf[40];
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

}  // namespace moe
