// unicode.cpp — UTF-8 walking, character classes, GPT-2's byte table and pre-tokeniser (SPEC §5).
//
// The classifier answers the three questions GPT-2's pre-tokeniser regex asks: is a code point in
// \p{L} (General_Category L*), in \p{N} (N*), or White_Space (\s)? The letter and number ranges
// are generated from the Unicode Character Database by data/gen_unicode_tables.py into
// unicode_tables.inc (committed; data/README.md says how to regenerate and which Unicode version
// it holds), so every script the database knows is classified by its General_Category, and
// tests/data/test_unicode_tables.cpp checks every code point against the database. Combining
// marks (Mn/Mc, e.g. U+0301 or Devanagari vowel signs) are not letters, as in Unicode, so GPT-2
// splits decomposed text there too.
//
// Left out: code points assigned after the table's Unicode version count as "other" until the
// table is regenerated; that only moves pre-token boundaries, never whether text round-trips.
#include "data/unicode.h"

#include <algorithm>

#include "core/check.h"

namespace moe {
namespace {

struct CodeRange {
  uint32_t lo, hi;  // inclusive
};

#include "data/unicode_tables.inc"  // kUnicodeTablesVersion, kLetters, kNumbers

template <size_t N>
bool in_table(const CodeRange (&table)[N], uint32_t cp) {
  // First range whose upper end is >= cp; cp is inside it iff its lower end is <= cp.
  const CodeRange* it = std::lower_bound(
      table, table + N, cp, [](const CodeRange& r, uint32_t v) { return r.hi < v; });
  return it != table + N && it->lo <= cp;
}

// Unicode White_Space (complete: this property has only these 25 code points).
bool is_white_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// ASCII classes, computed once; most text is ASCII, so this skips the table searches.
struct AsciiClasses {
  CharClass cls[128];
  AsciiClasses() {
    for (uint32_t c = 0; c < 128; ++c) {
      if (is_white_space(c)) cls[c] = CharClass::kSpace;
      else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) cls[c] = CharClass::kLetter;
      else if (c >= '0' && c <= '9') cls[c] = CharClass::kNumber;
      else cls[c] = CharClass::kOther;
    }
  }
};
const AsciiClasses kAscii;

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

// -------------------------------------------------------------------------------------------------
// Classes and UTF-8

const char* unicode_tables_version() { return kUnicodeTablesVersion; }

CharClass char_class(uint32_t cp) {
  if (cp < 128) return kAscii.cls[cp];
  if (cp == kInvalidCodePoint) return CharClass::kOther;
  if (is_white_space(cp)) return CharClass::kSpace;
  if (in_table(kLetters, cp)) return CharClass::kLetter;
  if (in_table(kNumbers, cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

int utf8_decode(std::string_view text, size_t pos, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[pos + k]); };
  const unsigned char b0 = byte(0);
  const size_t left = text.size() - pos;
  *cp = kInvalidCodePoint;
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  // Lead bytes C0/C1 and F5..FF never start a valid sequence; E0/ED/F0/F4 restrict the second byte
  // to exclude overlong forms, UTF-16 surrogates and code points above U+10FFFF.
  int len = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3;
  else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4;
  const unsigned char lo = (b0 == 0xE0) ? 0xA0 : (b0 == 0xF0) ? 0x90 : 0x80;
  const unsigned char hi = (b0 == 0xED) ? 0x9F : (b0 == 0xF4) ? 0x8F : 0xBF;
  if (len == 0 || left < static_cast<size_t>(len)) return 1;
  if (byte(1) < lo || byte(1) > hi) return 1;
  for (int k = 2; k < len; ++k)
    if (!is_continuation(byte(k))) return 1;
  uint32_t v = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) v = (v << 6) | (byte(k) & 0x3F);
  *cp = v;
  return len;
}

void utf8_append(uint32_t cp, std::string* out) {
  ASSERT_INTERNAL(cp < 0x110000);
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// -------------------------------------------------------------------------------------------------
// GPT-2's byte <-> unicode table

namespace {

// A byte is "printable as itself" in GPT-2's table when it is visible ASCII or visible Latin-1
// (173, the soft hyphen, is invisible and so is remapped too).
bool byte_is_self(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

struct ByteTables {
  std::array<uint32_t, 256> to_unicode{};
  std::array<uint8_t, 256> order{};
  std::array<int16_t, 324> from_unicode{};  // every mapped code point is < 256 + 68
  ByteTables() {
    from_unicode.fill(-1);
    int next_shifted = 0, k = 0;
    for (int b = 0; b < 256; ++b) {
      to_unicode[b] = byte_is_self(b) ? b : 256 + next_shifted++;
      from_unicode[to_unicode[b]] = static_cast<int16_t>(b);
      if (byte_is_self(b)) order[k++] = static_cast<uint8_t>(b);
    }
    for (int b = 0; b < 256; ++b)
      if (!byte_is_self(b)) order[k++] = static_cast<uint8_t>(b);
  }
};
const ByteTables kBytes;

}  // namespace

const std::array<uint32_t, 256>& byte_to_unicode() { return kBytes.to_unicode; }
const std::array<uint8_t, 256>& gpt2_byte_order() { return kBytes.order; }

int unicode_to_byte(uint32_t cp) {
  return cp < kBytes.from_unicode.size() ? kBytes.from_unicode[cp] : -1;
}

// -------------------------------------------------------------------------------------------------
// GPT-2's pre-tokeniser

namespace {

// Length in bytes of a contraction ('s 't 'm 'd 're 've 'll) starting at text[i], or 0. Only the
// ASCII apostrophe and lower-case letters count, exactly as in GPT-2's case-sensitive regex.
size_t contraction_length(std::string_view text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const char a = text[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char b = text[i + 2];
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Fast class lookup of the code point at text[i]; *len receives its byte length.
CharClass class_at(std::string_view text, size_t i, int* len) {
  const unsigned char b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    *len = 1;
    return kAscii.cls[b];
  }
  uint32_t cp;
  *len = utf8_decode(text, i, &cp);
  return char_class(cp);
}

// End (byte offset) of the maximal run of class `cls` starting at text[i].
size_t run_end(std::string_view text, size_t i, CharClass cls) {
  int len = 0;
  while (i < text.size() && class_at(text, i, &len) == cls) i += len;
  return i;
}

}  // namespace

size_t pretoken_end(std::string_view text, size_t i) {
  const size_t n = text.size();
  // 's|'t|'re|'ve|'m|'ll|'d
  if (const size_t c = contraction_length(text, i)) return i + c;
  int len = 0;
  const CharClass cls = class_at(text, i, &len);
  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional ASCII space, then a run of one class.
  // The three are exclusive, so the class of the first character after the space picks one.
  CharClass run_cls = cls;
  size_t run_start = i;
  if (text[i] == ' ' && i + 1 < n) {
    int next_len = 0;
    const CharClass next = class_at(text, i + 1, &next_len);
    if (next != CharClass::kSpace) run_cls = next, run_start = i + 1;
  }
  if (run_cls != CharClass::kSpace) return run_end(text, run_start, run_cls);
  // '\s+(?!\S)|\s+': a whitespace run that stops before a non-space gives up its last character,
  // which then starts the next piece (as ' ?' when it is a space). A single whitespace character
  // before a non-space, or a run reaching the end of the text, is taken whole.
  size_t end = i, last = i;
  while (end < n && class_at(text, end, &len) == CharClass::kSpace) last = end, end += len;
  return (end < n && last > i) ? last : end;
}

void pretokenize_spans(std::string_view text, std::vector<TextSpan>* out) {
  for (size_t i = 0; i < text.size();) {
    const size_t end = pretoken_end(text, i);
    out->push_back({i, end - i});
    i = end;
  }
}

}  // namespace moe
