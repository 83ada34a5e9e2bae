// unicode.h — the text-level pieces under the BPE tokenizer (SPEC §5 "Data"): UTF-8 decoding that
// never fails, the letter/number/whitespace classifier GPT-2's regex needs, GPT-2's byte <->
// unicode-character table, and GPT-2's pre-tokeniser written by hand over code points.
//
// The letter and number classes come from the Unicode Character Database, generated into
// src/data/unicode_tables.inc by data/gen_unicode_tables.py (data/README.md).
//
// Left out: Unicode normalisation (GPT-2 does none) and grapheme clusters.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

// The four classes GPT-2's regex distinguishes: \p{L}, \p{N}, \s, and everything else.
enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

// Class of one code point: kLetter for General_Category L*, kNumber for N*, kSpace for the
// White_Space property, kOther for everything else (marks, punctuation, symbols, unassigned code
// points, and kInvalidCodePoint).
CharClass char_class(uint32_t cp);

// The Unicode version the letter and number tables were generated from ("15.0.0").
const char* unicode_tables_version();

// Returned by utf8_decode for a byte that does not start a valid UTF-8 sequence.
constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

// Decode the code point starting at text[pos] (pos < text.size()) into *cp and return its length
// in bytes (1..4). Invalid, overlong, surrogate or truncated sequences yield length 1 and
// kInvalidCodePoint, so every byte string can be walked and re-assembled byte for byte.
int utf8_decode(std::string_view text, size_t pos, uint32_t* cp);

// Append the UTF-8 encoding of cp (< 0x110000) to *out.
void utf8_append(uint32_t cp, std::string* out);

// Value of one hexadecimal digit character ('0'-'9', 'a'-'f', 'A'-'F'), or -1 for anything else.
// Used by the JSON reader's \uXXXX escapes (io/json.cpp).
inline int hex_digit_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// GPT-2's byte -> unicode table: bytes 33..126, 161..172, 174..255 are their own code point, the
// other 68 bytes (control characters, space, DEL, NBSP, soft hyphen) become 256, 257, ... in byte
// order, so that every token string is printable and has no spaces.
const std::array<uint32_t, 256>& byte_to_unicode();
// Inverse of byte_to_unicode(): the byte for a code point, or -1 when cp is not in the table.
int unicode_to_byte(uint32_t cp);
// The 256 bytes in the order GPT-2's table lists them (33..126, 161..172, 174..255, then the rest);
// this is the order of ids 0..255 in GPT-2's encoder.json and in our trained vocabularies.
const std::array<uint8_t, 256>& gpt2_byte_order();

// A pre-token: `size` bytes starting at byte `begin` of the text it was cut from.
struct TextSpan {
  size_t begin;
  size_t size;
};

// GPT-2's pre-tokeniser, one piece at a time: the end (byte offset) of the piece that starts at
// text[begin] (begin < text.size()). Walking begin = end until the text is used up yields the same
// pieces as pretokenize_spans() without storing them, which lets encode() stream long texts.
size_t pretoken_end(std::string_view text, size_t begin);

// GPT-2's pre-tokeniser, the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// applied left to right. Appends the pieces of `text` to *out (which is not cleared); the pieces
// tile the text exactly. Invalid UTF-8 bytes count as "other" symbols, one byte each.
void pretokenize_spans(std::string_view text, std::vector<TextSpan>* out);

}  // namespace moe
