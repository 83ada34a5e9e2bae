// test_bpe.cpp — tests of the byte-level BPE tokenizer (src/data/bpe.*, unicode.*; SPEC §5).
//
// Three tokenizers are exercised: GPT-2's real files (looked up in $MOE_GPT2_BPE_DIR, else
// ../shared/data/gpt2_bpe relative to the repo root; those tests skip when the files are absent),
// the hand-written fixture tests/fixtures/bpe_tiny (see its README for the worked encodings), and
// vocabularies trained here on a small generated corpus. Expected GPT-2 ids were looked up in
// encoder.json by hand and cross-checked against an independent encoder built on Python's `regex`
// module; expected pre-tokens were checked against that module running GPT-2's pattern.
//
// Left out: speed (measured by hand, not in unit tests); the Unicode tables get spot checks only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/check.h"
#include "data/bpe.h"
#include "data/unicode.h"
#include "io/json.h"
#include "test_util.h"

namespace moe {
using moe::testing::error_of;
using moe::testing::has;
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
using Strings = std::vector<std::string>;

const char* kTinyDir = "tests/fixtures/bpe_tiny";

std::string gpt2_dir() {
  const char* env = std::getenv("MOE_GPT2_BPE_DIR");
  return env && *env ? env : "../shared/data/gpt2_bpe";
}

bool gpt2_present() { return fs::exists(gpt2_dir() + "/encoder.json"); }

// Loaded once: parsing 50k tokens is the slowest part of this file.
const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      BpeTokenizer::load(gpt2_dir() + "/encoder.json", gpt2_dir() + "/vocab.bpe");
  return tok;
}

#define REQUIRE_GPT2()                                                                    \
  do {                                                                                    \
    if (!gpt2_present())                                                                  \
      GTEST_SKIP() << "GPT-2 BPE files not found in " << gpt2_dir()                      \
                   << " (set MOE_GPT2_BPE_DIR to the folder with encoder.json, vocab.bpe)"; \
  } while (0)

BpeTokenizer tiny() {
  return BpeTokenizer::load(std::string(kTinyDir) + "/encoder.json",
                            std::string(kTinyDir) + "/vocab.bpe");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A fresh, empty directory for one test.
std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("moe_bpe_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Random bytes with the troublemakers over-represented: NUL, 0xFF, lone continuation bytes,
// truncated multi-byte leads, spaces and newlines.
std::string random_bytes(std::mt19937& rng, int max_len) {
  static const unsigned char kSpecial[] = {0x00, 0xFF, 0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xED,
                                           ' ',  '\n', '\'', 's',  '\t', 0xC0, 0xA0, '7'};
  std::uniform_int_distribution<int> len_dist(0, max_len), byte(0, 255), coin(0, 2);
  std::string s(static_cast<size_t>(len_dist(rng)), '\0');
  for (char& c : s)
    c = static_cast<char>(coin(rng) == 0 ? kSpecial[byte(rng) % sizeof kSpecial] : byte(rng));
  return s;
}

// English-like training text with a fixed seed: words of 1-3 syllables, the common syllables more
// common (the minimum of two uniform draws), so pair counts are skewed as in real text and there
// are far more distinct words than a small vocabulary can hold.
std::string make_corpus(int sentences) {
  static const char* kSyllables[] = {"the", "an", "ri", "to", "mel", "os", "ve", "ka", "lun",
                                     "i",   "dra", "pe", "su", "gor", "ith", "qua", "'s", "42"};
  const int n_syl = sizeof kSyllables / sizeof *kSyllables;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> syl(0, n_syl - 1), n_syls(1, 3), n_words(3, 12);
  std::string text;
  for (int s = 0; s < sentences; ++s) {
    const int n = n_words(rng);
    for (int w = 0; w < n; ++w) {
      if (w) text += ' ';
      for (int k = n_syls(rng); k > 0; --k) text += kSyllables[std::min(syl(rng), syl(rng))];
    }
    text += (s % 7 == 6) ? ".\n\n" : ",\n";
  }
  return text;
}

// Runs f, expecting moe::Error; returns its message ("" when nothing was thrown).
// -------------------------------------------------------------------------------------------------
// Pre-tokeniser: hand-worked cases of GPT-2's regex

TEST(Pretokenize, Contractions) {
  EXPECT_EQ(gpt2_pretokenize("I'm"), (Strings{"I", "'m"}));
  EXPECT_EQ(gpt2_pretokenize("don't you'll they're we've he'd it's"),
            (Strings{"don", "'t", " you", "'ll", " they", "'re", " we", "'ve", " he", "'d", " it",
                     "'s"}));
  EXPECT_EQ(gpt2_pretokenize("IT'S"), (Strings{"IT", "'", "S"}));  // case-sensitive, as GPT-2
  EXPECT_EQ(gpt2_pretokenize("''s"), (Strings{"''", "s"}));        // apostrophe in an other-run
  EXPECT_EQ(gpt2_pretokenize("x'y"), (Strings{"x", "'", "y"}));
}

TEST(Pretokenize, LettersDigitsPunctuation) {
  EXPECT_EQ(gpt2_pretokenize("Hello world"), (Strings{"Hello", " world"}));
  EXPECT_EQ(gpt2_pretokenize("abc123def"), (Strings{"abc", "123", "def"}));
  EXPECT_EQ(gpt2_pretokenize("x = 3.14!!"), (Strings{"x", " =", " 3", ".", "14", "!!"}));
  EXPECT_EQ(gpt2_pretokenize("$100"), (Strings{"$", "100"}));
  EXPECT_EQ(gpt2_pretokenize(" ?!"), (Strings{" ?!"}));
  EXPECT_EQ(gpt2_pretokenize("one, two;  three..."),
            (Strings{"one", ",", " two", ";", " ", " three", "..."}));
}

TEST(Pretokenize, WhitespaceRuns) {
  // \s+(?!\S): the last space of a run before a word joins the word.
  EXPECT_EQ(gpt2_pretokenize("  hello"), (Strings{" ", " hello"}));
  EXPECT_EQ(gpt2_pretokenize("a  b"), (Strings{"a", " ", " b"}));
  EXPECT_EQ(gpt2_pretokenize("hello   "), (Strings{"hello", "   "}));
  EXPECT_EQ(gpt2_pretokenize("a\n\nb"), (Strings{"a", "\n", "\n", "b"}));
  EXPECT_EQ(gpt2_pretokenize("\t\tfoo"), (Strings{"\t", "\t", "foo"}));
  EXPECT_EQ(gpt2_pretokenize("a \tb"), (Strings{"a", " ", "\t", "b"}));
  EXPECT_EQ(gpt2_pretokenize("a \n b"), (Strings{"a", " \n", " b"}));
  EXPECT_EQ(gpt2_pretokenize("line one\nline two\n"),
            (Strings{"line", " one", "\n", "line", " two", "\n"}));
  // Unicode White_Space other than ' ' never joins the following word.
  EXPECT_EQ(gpt2_pretokenize("a\u00A0b"), (Strings{"a", "\u00A0", "b"}));
  EXPECT_EQ(gpt2_pretokenize("a\u3000\u3000b"), (Strings{"a", "\u3000", "\u3000", "b"}));
}

TEST(Pretokenize, NonAsciiScripts) {
  EXPECT_EQ(gpt2_pretokenize("café naïve"), (Strings{"café", " naïve"}));
  EXPECT_EQ(gpt2_pretokenize("cafe\u0301"), (Strings{"cafe", "\u0301"}));  // a mark, not a letter
  EXPECT_EQ(gpt2_pretokenize("Привет мир"), (Strings{"Привет", " мир"}));
  EXPECT_EQ(gpt2_pretokenize("日本語のテキスト"), (Strings{"日本語のテキスト"}));
  EXPECT_EQ(gpt2_pretokenize("２０２４年"), (Strings{"２０２４", "年"}));
  EXPECT_EQ(gpt2_pretokenize("½ ² Ⅻ"), (Strings{"½", " ²", " Ⅻ"}));
  EXPECT_EQ(gpt2_pretokenize("1½ x²"), (Strings{"1½", " x", "²"}));  // N* runs mix digit kinds
  EXPECT_EQ(gpt2_pretokenize("क्या"), (Strings{"क", "्", "य", "ा"}));
}

TEST(Pretokenize, InvalidUtf8BytesAreOtherSymbols) {
  EXPECT_EQ(gpt2_pretokenize("\xFF\xFE" "ab"), (Strings{"\xFF\xFE", "ab"}));
  EXPECT_EQ(gpt2_pretokenize("a\xC3"), (Strings{"a", "\xC3"}));            // truncated sequence
  EXPECT_EQ(gpt2_pretokenize("\xC3\xA9\x80"), (Strings{"\xC3\xA9", "\x80"}));  // é + stray byte
  EXPECT_EQ(gpt2_pretokenize(std::string("a\0b", 3)), (Strings{"a", std::string(1, '\0'), "b"}));
}

TEST(Pretokenize, PiecesTileRandomBytes) {
  std::mt19937 rng(1);
  for (int t = 0; t < 500; ++t) {
    const std::string s = random_bytes(rng, 60);
    std::string joined;
    for (const std::string& p : gpt2_pretokenize(s)) {
      ASSERT_FALSE(p.empty());
      joined += p;
    }
    ASSERT_EQ(joined, s);
  }
}

TEST(Unicode, Utf8DecodeRejectsMalformedSequences) {
  uint32_t cp = 0;
  EXPECT_EQ(utf8_decode("\xF0\x9F\x98\x80", 0, &cp), 4);
  EXPECT_EQ(cp, 0x1F600u);
  EXPECT_EQ(utf8_decode("\xC0\x80", 0, &cp), 1);  // overlong NUL
  EXPECT_EQ(cp, kInvalidCodePoint);
  EXPECT_EQ(utf8_decode("\xE0\x80\xAF", 0, &cp), 1);      // overlong '/'
  EXPECT_EQ(utf8_decode("\xF0\x80\x80\xAF", 0, &cp), 1);  // overlong '/'
  EXPECT_EQ(utf8_decode("\xED\xA0\x80", 0, &cp), 1);  // UTF-16 surrogate
  EXPECT_EQ(utf8_decode("\xF4\x90\x80\x80", 0, &cp), 1);  // above U+10FFFF
  EXPECT_EQ(utf8_decode("\xE2\x82", 0, &cp), 1);  // truncated
  EXPECT_EQ(char_class(0x00D7), CharClass::kOther);   // multiplication sign inside Latin-1 letters
  EXPECT_EQ(char_class(0x4E2D), CharClass::kLetter);  // 中
  EXPECT_EQ(char_class(0x0669), CharClass::kNumber);  // Arabic-Indic nine
  EXPECT_EQ(char_class(0x2029), CharClass::kSpace);
}

TEST(Unicode, ByteTableIsGpt2s) {
  EXPECT_EQ(byte_to_unicode()['!'], static_cast<uint32_t>('!'));
  EXPECT_EQ(byte_to_unicode()[0], 0x100u);
  EXPECT_EQ(byte_to_unicode()[' '], 0x120u);  // 'Ġ'
  EXPECT_EQ(byte_to_unicode()[0xAD], 0x143u);  // the last remapped byte
  for (int b = 0; b < 256; ++b) ASSERT_EQ(unicode_to_byte(byte_to_unicode()[b]), b);
  EXPECT_EQ(gpt2_byte_order()[0], '!');
  EXPECT_EQ(gpt2_byte_order()[255], 0xAD);
}

// -------------------------------------------------------------------------------------------------
// GPT-2's real files

TEST(Gpt2, KnownIds) {
  REQUIRE_GPT2();
  const BpeTokenizer& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50258);
  EXPECT_EQ(tok.eos_id(), 50257);
  EXPECT_EQ(tok.encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(tok.encode(" the"), (Ids{262}));
  EXPECT_EQ(tok.encode("Hello"), (Ids{15496}));
  EXPECT_EQ(tok.encode("The quick brown fox, aged 42, didn't jump over 3.14 lazy dogs!"),
            (Ids{464, 2068, 7586, 21831, 11, 9722, 5433, 11, 1422, 470, 4391, 625, 513, 13, 1415,
                 16931, 6844, 0}));
  EXPECT_EQ(tok.encode("  indented\tcode();"), (Ids{220, 773, 4714, 197, 8189, 9783}));
  EXPECT_EQ(tok.encode("I'm  hello\n\nb café naïve Привет 你好"),
            (Ids{40, 1101, 220, 23748, 198, 198, 65, 40304, 41492, 12466, 253, 21169, 18849, 38857,
                 16843, 20375, 220, 19526, 254, 25001, 121}));
  EXPECT_EQ(tok.encode(""), Ids{});
}

TEST(Gpt2, RoundTripsRandomBytes) {
  REQUIRE_GPT2();
  std::mt19937 rng(2);
  for (int t = 0; t < 300; ++t) {
    const std::string s = random_bytes(rng, 80);
    ASSERT_EQ(gpt2().decode(gpt2().encode(s)), s) << "case " << t;
  }
}

TEST(Gpt2, EncodeDocumentEndsLinesWithEos) {
  REQUIRE_GPT2();
  const Ids ids = gpt2().encode_document("Hello world\n\nHello");
  EXPECT_EQ(ids, (Ids{15496, 995, 50257, 50257, 15496, 50257}));
  EXPECT_EQ(gpt2().decode(ids), "Hello world\n\nHello\n");
}

TEST(Gpt2, SaveReproducesTheOriginalFiles) {
  REQUIRE_GPT2();
  const std::string dir = temp_dir("gpt2_save");
  gpt2().save(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(read_file(dir + "/vocab.bpe"), read_file(gpt2_dir() + "/vocab.bpe"));
  std::string original = read_file(gpt2_dir() + "/encoder.json");
  ASSERT_EQ(original.back(), '}');
  original.insert(original.size() - 1, ", \"</s>\": 50257");  // the one entry load() added
  EXPECT_EQ(read_file(dir + "/encoder.json"), original);
  const BpeTokenizer again = BpeTokenizer::load(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(again.fingerprint(), gpt2().fingerprint());
  EXPECT_EQ(again.eos_id(), 50257);
  EXPECT_FALSE(fs::exists(dir + "/encoder.json.tmp"));
}

// -------------------------------------------------------------------------------------------------
// The hand-written fixture (tests/fixtures/bpe_tiny/README.md works these out)

TEST(TinyFixture, EncodesByMergeRank) {
  const BpeTokenizer tok = tiny();
  EXPECT_EQ(tok.vocab_size(), 22);
  EXPECT_EQ(tok.eos_id(), 21);
  EXPECT_EQ(tok.encode("hello world!"), (Ids{12, 17, 8}));
  EXPECT_EQ(tok.encode("ell"), (Ids{1, 9}));       // "l l" (rank 0) before leftmost "e l" (9)
  EXPECT_EQ(tok.encode("lll"), (Ids{9, 2}));       // one pair's occurrences: left to right
  EXPECT_EQ(tok.encode("hero"), (Ids{10, 5, 3}));  // "o r" is never adjacent here
  EXPECT_EQ(tok.encode("\"\\"), (Ids{18, 19}));    // JSON escapes \" and \\ were read
  EXPECT_EQ(tok.decode({12, 17, 8, 21}), "hello world!\n");
  EXPECT_EQ(tok.fingerprint().size(), 16u);
}

TEST(TinyFixture, EncodeDocumentPlacesEos) {
  const BpeTokenizer tok = tiny();
  EXPECT_EQ(tok.encode_document(""), Ids{});
  EXPECT_EQ(tok.encode_document("\n"), (Ids{21}));
  EXPECT_EQ(tok.encode_document("hello"), (Ids{12, 21}));  // last line without '\n'
  EXPECT_EQ(tok.encode_document("hello\n"), (Ids{12, 21}));
  EXPECT_EQ(tok.encode_document("hello\n\nhello world"), (Ids{12, 21, 21, 12, 17, 21}));
}

TEST(TinyFixture, MissingByteTokenAndUnknownIdThrow) {
  const BpeTokenizer tok = tiny();
  EXPECT_NE(error_of([&] { tok.encode("x"); }).find("0x78"), std::string::npos);
  EXPECT_NE(error_of([&] { tok.decode({22}); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error_of([&] { tok.decode({-1}); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_EQ(tok.encode("hello"), (Ids{12}));  // still usable after an error
}

// -------------------------------------------------------------------------------------------------
// Trainer

TEST(Train, HandWorkedMergesAndTieBreak) {
  // Pieces: "xy", " yz". All three pairs occur once; ties go to the smallest (left id, right id):
  // x,y,z are ids 87,88,89 and the space 'Ġ' is 220, so "x y" first, then "y z", then "Ġ yz".
  const BpeTokenizer tok = BpeTokenizer::train("xy yz", 300);
  EXPECT_EQ(tok.vocab_size(), 256 + 3 + 1);  // the text runs out of pairs before 300
  EXPECT_EQ(tok.eos_id(), 259);
  const std::string dir = temp_dir("train_tie");
  tok.save(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(read_file(dir + "/vocab.bpe"), "#version: 0.2\nx y\ny z\n\xC4\xA0 yz\n");
  EXPECT_EQ(tok.encode("xy yz"), (Ids{256, 258}));
  EXPECT_EQ(tok.decode({0, 255}), "!\xAD");  // ids 0..255 follow GPT-2's byte order
}

TEST(Train, CountsWeightMerges) {
  // Pieces "ab" x1, " ab" x2, " abc" x1: pair counts a-b 4, Ġ-a 3, b-c 1. After "a b", Ġ-ab
  // has 3 and ab-c 1, so the merges are "a b", "Ġ ab", then "Ġab c".
  const BpeTokenizer tok = BpeTokenizer::train("ab ab ab abc", 1000);
  const std::string dir = temp_dir("train_counts");
  tok.save(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(read_file(dir + "/vocab.bpe"), "#version: 0.2\na b\n\xC4\xA0 ab\n\xC4\xA0" "ab c\n");
  // Pieces "ab" x1, " cd" x3: c-d and Ġ-c tie at 3 (c-d has the smaller ids), a-b comes last.
  const BpeTokenizer tok2 = BpeTokenizer::train("ab cd cd cd", 1000);
  tok2.save(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(read_file(dir + "/vocab.bpe"), "#version: 0.2\nc d\n\xC4\xA0 cd\na b\n");
}

TEST(Train, DeterministicAndCompresses) {
  const std::string text = make_corpus(3000);
  const BpeTokenizer a = BpeTokenizer::train(text, 400);
  const BpeTokenizer b = BpeTokenizer::train(text, 400);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.vocab_size(), 400);
  EXPECT_EQ(a.eos_id(), 399);
  const Ids ids = a.encode_document(text);
  EXPECT_EQ(ids, b.encode_document(text));
  EXPECT_LT(ids.size() * 5, text.size() * 2);  // > 2.5 bytes per token (bytes alone: 1)
  EXPECT_EQ(a.decode(ids), text);
  // Newlines become </s>, never part of a learned token.
  for (int32_t id = 256; id < a.eos_id(); ++id)
    ASSERT_EQ(a.decode({id}).find('\n'), std::string::npos) << "token " << id;
}

TEST(Train, SaveLoadRoundTrip) {
  const std::string text = make_corpus(1000);
  const BpeTokenizer tok = BpeTokenizer::train(text, 350);
  const std::string dir = temp_dir("train_save");
  tok.save(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_FALSE(fs::exists(dir + "/vocab.bpe.tmp"));
  const BpeTokenizer back = BpeTokenizer::load(dir + "/encoder.json", dir + "/vocab.bpe");
  EXPECT_EQ(back.fingerprint(), tok.fingerprint());
  EXPECT_EQ(back.vocab_size(), 350);
  EXPECT_EQ(back.eos_id(), tok.eos_id());  // found as "</s>" in the file, not appended again
  EXPECT_EQ(back.encode_document(text), tok.encode_document(text));
  std::mt19937 rng(3);
  for (int t = 0; t < 200; ++t) {
    const std::string s = random_bytes(rng, 60);
    ASSERT_EQ(back.encode(s), tok.encode(s));
    ASSERT_EQ(back.decode(back.encode(s)), s);
  }
  EXPECT_NE(tok.fingerprint(), tiny().fingerprint());
}

TEST(Train, ConcurrentEncodesAgreeWithSerialOnes) {
  // encode() fills one word cache behind a mutex. Threads sharing a fresh tokenizer must get the
  // ids that a serial run gets from an identically trained one.
  const std::string corpus = make_corpus(500);
  const BpeTokenizer serial_tok = BpeTokenizer::train(corpus, 300);
  const BpeTokenizer shared_tok = BpeTokenizer::train(corpus, 300);
  std::vector<std::string> texts;
  std::mt19937 rng(4);
  for (int t = 0; t < 2000; ++t) texts.push_back(random_bytes(rng, 40) + corpus.substr(t * 10, 80));
  std::vector<Ids> expected;
  for (const std::string& t : texts) expected.push_back(serial_tok.encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (size_t i = 0; i < texts.size(); ++i) {
        const size_t t = (i + 500 * k) % texts.size();  // different orders: real cache races
        mismatches[k] += shared_tok.encode(texts[t]) != expected[t];
      }
    });
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
}

TEST(Train, RejectsTooSmallVocab) {
  EXPECT_NE(error_of([] { BpeTokenizer::train("abc", 256); }).find("vocab_size"),
            std::string::npos);
}

// -------------------------------------------------------------------------------------------------
// Bad files: every error names the file

TEST(LoadErrors, MissingFile) {
  const std::string msg = error_of([] {
    BpeTokenizer::load("/nonexistent/dir/encoder.json", std::string(kTinyDir) + "/vocab.bpe");
  });
  EXPECT_NE(msg.find("/nonexistent/dir/encoder.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
}

TEST(LoadErrors, MalformedEncoderJson) {
  const std::string dir = temp_dir("bad_json");
  const std::string path = dir + "/encoder.json", vocab = std::string(kTinyDir) + "/vocab.bpe";
  const char* cases[][2] = {
      {"{\"h\": 0, \"e", "ended inside a string"}, {"{\"h\" 0}", "expected ':'"},
      {"[\"h\"]", "expected a JSON object"},    {"{\"h\": -1}", "non-negative"},
      {"{\"h\": 5}", "out of range"},          {"{\"h\": 0, \"e\": 0}", "used twice"},
      {"{\"h\": 0, \"h\": 1}", "appears twice"}, {"{\"\\ud800\": 0}", "lone surrogate"},
      {"{\"h\": 0.5}", "integers"},            {"{\"h\": 0} x", "after the JSON value"},
      {"{\"h\": \"0\"}", "is a string"},       {"{\"h\": 1e300}", "too large"},
      {"{}", "an empty object"},
      {"{\"\\ud83d\\ude00\": 0}", "\xF0\x9F\x98\x80"},  // a surrogate pair, decoded, then refused
  };
  for (const auto& c : cases) {
    write_file(path, c[0]);
    const std::string msg = error_of([&] { BpeTokenizer::load(path, vocab); });
    EXPECT_NE(msg.find(path), std::string::npos) << c[0] << " -> " << msg;
    EXPECT_NE(msg.find(c[1]), std::string::npos) << c[0] << " -> " << msg;
  }
  write_file(path, "{\n  \"h\": 0,\n  \"e\" 1\n}");  // the position names line 3
  EXPECT_NE(error_of([&] { BpeTokenizer::load(path, vocab); }).find(path + ":3:"),
            std::string::npos);
}

// encoder.json goes through io/json, so a lone surrogate escape decodes exactly as in every other
// JSON file (U+FFFD, test_json.cpp Json.LoneSurrogatesFollowOneRule); no GPT-2 token holds U+FFFD,
// so the load is refused with a message that shows the decoded token and explains it.
TEST(LoadErrors, LoneSurrogatesFollowTheJsonRule) {
  const std::string dir = temp_dir("surrogates");
  const std::string path = dir + "/encoder.json", vocab = std::string(kTinyDir) + "/vocab.bpe";
  for (const char* key : {"\\ud800", "\\udc00", "\\udc00\\ud800", "\\ud800\\u0041"}) {
    SCOPED_TRACE(key);
    write_file(path, std::string("{\"") + key + "\": 0}");
    const std::string as_json = parse_json(std::string("\"") + key + "\"").as_string();
    const std::string msg = error_of([&] { BpeTokenizer::load(path, vocab); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"" + as_json + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("lone surrogate"), std::string::npos) << msg;
  }
}

TEST(LoadErrors, MalformedVocabBpe) {
  const std::string dir = temp_dir("bad_bpe");
  const std::string enc = std::string(kTinyDir) + "/encoder.json", path = dir + "/vocab.bpe";
  const char* cases[][2] = {
      {"l l\n", ":1: expected the header"},
      {"#version: 0.2\nl l\nhe\n", ":3: malformed merge"},
      {"#version: 0.2\nl l x\n", ":2: malformed merge"},
      {"#version: 0.2\nl l\nw o\n", ":3: merge 'w o'"},  // "wo" is not a token
      {"#version: 0.2\nl l\nh e\nl l\n", ":4: merge 'l l' appears twice"},
  };
  for (const auto& c : cases) {
    write_file(path, c[0]);
    const std::string msg = error_of([&] { BpeTokenizer::load(enc, path); });
    EXPECT_NE(msg.find(path + c[1]), std::string::npos) << c[0] << " -> " << msg;
  }
  // CRLF line endings and blank lines are accepted.
  write_file(path, "#version: 0.2\r\nl l\r\n\r\nh e\r\n");
  EXPECT_EQ(BpeTokenizer::load(enc, path).encode("hell"), (Ids{10, 9}));
}

}  // namespace
}  // namespace moe
