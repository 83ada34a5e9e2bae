// unicode.cpp — UTF-8 walking, character classes, GPT-2's byte table and pre-tokeniser (SPEC §5).
//
// The classifier is an approximation of the Unicode database (categories L* for letters and N* for
// numbers, the White_Space property for spaces), written by hand as two sorted tables of ranges.
// It covers: Basic Latin, Latin-1 Supplement, Latin Extended-A/B/C/D/Additional, IPA and spacing
// modifier letters, Greek and Greek Extended, Cyrillic (+ supplements), Armenian, Hebrew, Arabic
// (+ supplement, extended-A, presentation forms), Syriac, Thaana, NKo, Devanagari, Bengali,
// Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam, Sinhala, Thai, Lao, Tibetan,
// Myanmar, Georgian, Hangul (Jamo, compatibility Jamo, syllables), Ethiopic, Cherokee, Canadian
// syllabics, Ogham, Runic, Khmer, Mongolian, letterlike symbols, Glagolitic, Coptic, Tifinagh,
// Hiragana, Katakana, Bopomofo, CJK Unified Ideographs (+ extension A and the supplementary-plane
// extensions), CJK compatibility ideographs, Yi, Vai, Bamum, halfwidth/fullwidth forms, Linear B,
// Gothic, Deseret and mathematical alphanumerics; digits of all those scripts plus superscripts,
// subscripts, vulgar fractions, Roman numerals, circled/parenthesised numbers and fullwidth digits.
// Combining marks (Mn/Mc, e.g. U+0301 or Devanagari vowel signs) are deliberately NOT letters,
// as in Unicode, so GPT-2 splits decomposed text there too. Scripts not listed (e.g. Balinese,
// Javanese letters, most historic scripts) are classified as "other", which only changes where
// pre-tokens split, never whether text round-trips.
//
// Left out: exact per-code-point agreement with a particular Unicode version.
#include "data/unicode.h"

#include <algorithm>

#include "core/check.h"

namespace moe {
namespace {

struct CodeRange {
  uint32_t lo, hi;  // inclusive
};

// Letters (L*), sorted and disjoint. One line per script or block group.
constexpr CodeRange kLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xAA, 0xAA}, {0xB5, 0xB5}, {0xBA, 0xBA}, {0xC0, 0xD6},
    {0xD8, 0xF6}, {0xF8, 0x2C1}, {0x2C6, 0x2D1}, {0x2E0, 0x2E4}, {0x2EC, 0x2EC}, {0x2EE, 0x2EE},
    {0x370, 0x374}, {0x376, 0x377}, {0x37A, 0x37D}, {0x37F, 0x37F}, {0x386, 0x386},
    {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x559, 0x559}, {0x560, 0x588}, {0x5D0, 0x5EA},
    {0x5EF, 0x5F2}, {0x620, 0x64A}, {0x66E, 0x66F}, {0x671, 0x6D3}, {0x6D5, 0x6D5},
    {0x6E5, 0x6E6}, {0x6EE, 0x6EF}, {0x6FA, 0x6FC}, {0x6FF, 0x6FF}, {0x710, 0x710},
    {0x712, 0x72F}, {0x74D, 0x7A5}, {0x7B1, 0x7B1}, {0x7CA, 0x7EA}, {0x7F4, 0x7F5},
    {0x7FA, 0x7FA}, {0x8A0, 0x8C9},
    // Indic: independent vowels and consonants only; vowel signs and viramas are marks.
    {0x904, 0x939}, {0x93D, 0x93D}, {0x950, 0x950}, {0x958, 0x961}, {0x971, 0x980},
    {0x985, 0x98C}, {0x98F, 0x990}, {0x993, 0x9A8}, {0x9AA, 0x9B0}, {0x9B2, 0x9B2},
    {0x9B6, 0x9B9}, {0x9BD, 0x9BD}, {0x9CE, 0x9CE}, {0x9DC, 0x9DD}, {0x9DF, 0x9E1},
    {0x9F0, 0x9F1}, {0x9FC, 0x9FC}, {0xA05, 0xA0A}, {0xA0F, 0xA10}, {0xA13, 0xA28},
    {0xA2A, 0xA30}, {0xA32, 0xA33}, {0xA35, 0xA36}, {0xA38, 0xA39}, {0xA59, 0xA5C},
    {0xA5E, 0xA5E}, {0xA72, 0xA74}, {0xA85, 0xA8D}, {0xA8F, 0xA91}, {0xA93, 0xAA8},
    {0xAAA, 0xAB0}, {0xAB2, 0xAB3}, {0xAB5, 0xAB9}, {0xABD, 0xABD}, {0xAD0, 0xAD0},
    {0xAE0, 0xAE1}, {0xAF9, 0xAF9}, {0xB05, 0xB0C}, {0xB0F, 0xB10}, {0xB13, 0xB28},
    {0xB2A, 0xB30}, {0xB32, 0xB33}, {0xB35, 0xB39}, {0xB3D, 0xB3D}, {0xB5C, 0xB5D},
    {0xB5F, 0xB61}, {0xB71, 0xB71}, {0xB83, 0xB83}, {0xB85, 0xB8A}, {0xB8E, 0xB90},
    {0xB92, 0xB95}, {0xB99, 0xB9A}, {0xB9C, 0xB9C}, {0xB9E, 0xB9F}, {0xBA3, 0xBA4},
    {0xBA8, 0xBAA}, {0xBAE, 0xBB9}, {0xBD0, 0xBD0}, {0xC05, 0xC0C}, {0xC0E, 0xC10},
    {0xC12, 0xC28}, {0xC2A, 0xC39}, {0xC3D, 0xC3D}, {0xC58, 0xC5A}, {0xC60, 0xC61},
    {0xC80, 0xC80}, {0xC85, 0xC8C}, {0xC8E, 0xC90}, {0xC92, 0xCA8}, {0xCAA, 0xCB3},
    {0xCB5, 0xCB9}, {0xCBD, 0xCBD}, {0xCDE, 0xCDE}, {0xCE0, 0xCE1}, {0xCF1, 0xCF2},
    {0xD04, 0xD0C}, {0xD0E, 0xD10}, {0xD12, 0xD3A}, {0xD3D, 0xD3D}, {0xD4E, 0xD4E},
    {0xD54, 0xD56}, {0xD5F, 0xD61}, {0xD7A, 0xD7F}, {0xD85, 0xD96}, {0xD9A, 0xDB1},
    {0xDB3, 0xDBB}, {0xDBD, 0xDBD}, {0xDC0, 0xDC6},
    // Thai, Lao, Tibetan, Myanmar, Georgian.
    {0xE01, 0xE30}, {0xE32, 0xE33}, {0xE40, 0xE46}, {0xE81, 0xE82}, {0xE84, 0xE84},
    {0xE86, 0xE8A}, {0xE8C, 0xEA3}, {0xEA5, 0xEA5}, {0xEA7, 0xEB0}, {0xEB2, 0xEB3},
    {0xEBD, 0xEBD}, {0xEC0, 0xEC4}, {0xEC6, 0xEC6}, {0xEDC, 0xEDF}, {0xF00, 0xF00},
    {0xF40, 0xF47}, {0xF49, 0xF6C}, {0xF88, 0xF8C}, {0x1000, 0x102A}, {0x103F, 0x103F},
    {0x1050, 0x1055}, {0x105A, 0x105D}, {0x1061, 0x1061}, {0x1065, 0x1066}, {0x106E, 0x1070},
    {0x1075, 0x1081}, {0x108E, 0x108E}, {0x10A0, 0x10C5}, {0x10C7, 0x10C7}, {0x10CD, 0x10CD},
    {0x10D0, 0x10FA}, {0x10FC, 0x10FF},
    // Hangul Jamo, Ethiopic, Cherokee, Canadian syllabics, Ogham, Runic, Khmer, Mongolian.
    {0x1100, 0x1248}, {0x124A, 0x124D}, {0x1250, 0x1256}, {0x1258, 0x1258}, {0x125A, 0x125D},
    {0x1260, 0x1288}, {0x128A, 0x128D}, {0x1290, 0x12B0}, {0x12B2, 0x12B5}, {0x12B8, 0x12BE},
    {0x12C0, 0x12C0}, {0x12C2, 0x12C5}, {0x12C8, 0x12D6}, {0x12D8, 0x1310}, {0x1312, 0x1315},
    {0x1318, 0x135A}, {0x1380, 0x138F}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1401, 0x166C},
    {0x166F, 0x167F}, {0x1681, 0x169A}, {0x16A0, 0x16EA}, {0x16F1, 0x16F8}, {0x1780, 0x17B3},
    {0x17D7, 0x17D7}, {0x17DC, 0x17DC}, {0x1820, 0x1878}, {0x1880, 0x1884}, {0x1887, 0x18A8},
    {0x18AA, 0x18AA},
    // Phonetic extensions, Latin Extended Additional, Greek Extended.
    {0x1D00, 0x1DBF}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D},
    {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    // Super/subscript letters, letterlike symbols, Glagolitic, Latin-C, Coptic, Tifinagh.
    {0x2071, 0x2071}, {0x207F, 0x207F}, {0x2090, 0x209C}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0x2D00, 0x2D25}, {0x2D27, 0x2D27}, {0x2D2D, 0x2D2D}, {0x2D30, 0x2D67}, {0x2D6F, 0x2D6F},
    {0x2D80, 0x2DDE}, {0x2E2F, 0x2E2F},
    // CJK: iteration marks, kana, Bopomofo, compatibility Jamo, ideographs, Yi.
    {0x3005, 0x3006}, {0x3031, 0x3035}, {0x303B, 0x303C}, {0x3041, 0x3096}, {0x309D, 0x309F},
    {0x30A1, 0x30FA}, {0x30FC, 0x30FF}, {0x3105, 0x312F}, {0x3131, 0x318E}, {0x31A0, 0x31BF},
    {0x31F0, 0x31FF}, {0x3400, 0x4DBF}, {0x4E00, 0xA48C},
    // Lisu, Vai, Cyrillic-B, Bamum, Latin-D, Hangul syllables, compatibility ideographs.
    {0xA4D0, 0xA4FD}, {0xA500, 0xA60C}, {0xA610, 0xA61F}, {0xA62A, 0xA62B}, {0xA640, 0xA66E},
    {0xA67F, 0xA69D}, {0xA6A0, 0xA6E5}, {0xA717, 0xA71F}, {0xA722, 0xA788}, {0xA78B, 0xA7CA},
    {0xA7D0, 0xA7D9}, {0xA7F2, 0xA801}, {0xAC00, 0xD7A3}, {0xD7B0, 0xD7C6}, {0xD7CB, 0xD7FB},
    {0xF900, 0xFA6D}, {0xFA70, 0xFAD9},
    // Alphabetic and Arabic presentation forms, halfwidth and fullwidth forms.
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFB1D, 0xFB1D}, {0xFB1F, 0xFB28}, {0xFB2A, 0xFB36},
    {0xFB38, 0xFB3C}, {0xFB3E, 0xFB3E}, {0xFB40, 0xFB41}, {0xFB43, 0xFB44}, {0xFB46, 0xFBB1},
    {0xFBD3, 0xFD3D}, {0xFD50, 0xFD8F}, {0xFD92, 0xFDC7}, {0xFDF0, 0xFDFB}, {0xFE70, 0xFE74},
    {0xFE76, 0xFEFC}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0xFF66, 0xFFBE}, {0xFFC2, 0xFFC7},
    {0xFFCA, 0xFFCF}, {0xFFD2, 0xFFD7}, {0xFFDA, 0xFFDC},
    // Supplementary planes: Linear B, Old Italic, Gothic, Deseret/Shavian/Osmanya,
    // mathematical alphanumerics (minus the embedded operators), CJK extensions B..H.
    {0x10000, 0x100FA}, {0x10300, 0x1031F}, {0x10330, 0x10340}, {0x10342, 0x10349},
    {0x10400, 0x1049D}, {0x1D400, 0x1D6C0}, {0x1D6C2, 0x1D6DA}, {0x1D6DC, 0x1D6FA},
    {0x1D6FC, 0x1D714}, {0x1D716, 0x1D734}, {0x1D736, 0x1D74E}, {0x1D750, 0x1D76E},
    {0x1D770, 0x1D788}, {0x1D78A, 0x1D7A8}, {0x1D7AA, 0x1D7C2}, {0x1D7C4, 0x1D7CB},
    {0x20000, 0x2A6DF}, {0x2A700, 0x2EBE0}, {0x2F800, 0x2FA1D}, {0x30000, 0x323AF},
};

// Numbers (Nd, Nl, No), sorted and disjoint.
constexpr CodeRange kNumbers[] = {
    {0x30, 0x39}, {0xB2, 0xB3}, {0xB9, 0xB9}, {0xBC, 0xBE}, {0x660, 0x669}, {0x6F0, 0x6F9},
    {0x7C0, 0x7C9}, {0x966, 0x96F}, {0x9E6, 0x9EF}, {0x9F4, 0x9F9}, {0xA66, 0xA6F},
    {0xAE6, 0xAEF}, {0xB66, 0xB6F}, {0xB72, 0xB77}, {0xBE6, 0xBF2}, {0xC66, 0xC6F},
    {0xC78, 0xC7E}, {0xCE6, 0xCEF}, {0xD58, 0xD5E}, {0xD66, 0xD78}, {0xDE6, 0xDEF},
    {0xE50, 0xE59}, {0xED0, 0xED9}, {0xF20, 0xF33}, {0x1040, 0x1049}, {0x1090, 0x1099},
    {0x1369, 0x137C}, {0x16EE, 0x16F0}, {0x17E0, 0x17E9}, {0x17F0, 0x17F9}, {0x1810, 0x1819},
    {0x1946, 0x194F}, {0x19D0, 0x19DA}, {0x1A80, 0x1A89}, {0x1A90, 0x1A99}, {0x1B50, 0x1B59},
    {0x1BB0, 0x1BB9}, {0x1C40, 0x1C49}, {0x1C50, 0x1C59},
    // Superscripts/subscripts, fractions and Roman numerals, enclosed and dingbat numbers.
    {0x2070, 0x2070}, {0x2074, 0x2079}, {0x2080, 0x2089}, {0x2150, 0x2182}, {0x2185, 0x2189},
    {0x2460, 0x249B}, {0x24EA, 0x24FF}, {0x2776, 0x2793}, {0x2CFD, 0x2CFD},
    // CJK numerals and enclosed CJK numbers.
    {0x3007, 0x3007}, {0x3021, 0x3029}, {0x3038, 0x303A}, {0x3192, 0x3195}, {0x3220, 0x3229},
    {0x3248, 0x324F}, {0x3251, 0x325F}, {0x3280, 0x3289}, {0x32B1, 0x32BF},
    {0xA620, 0xA629}, {0xA6E6, 0xA6EF}, {0xA830, 0xA835}, {0xA8D0, 0xA8D9}, {0xA900, 0xA909},
    {0xA9D0, 0xA9D9}, {0xA9F0, 0xA9F9}, {0xAA50, 0xAA59}, {0xABF0, 0xABF9}, {0xFF10, 0xFF19},
    {0x10107, 0x10133}, {0x1D360, 0x1D378}, {0x1D7CE, 0x1D7FF}, {0x1F100, 0x1F10C},
};

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
