// test_json.cpp — the project's JSON reader and writers (src/io/json.h): values, escapes
// (surrogate pairs as Python's json.dumps writes non-ASCII, and the one rule for lone
// surrogates), duplicate keys, strictness, error columns and messages, and the writers
// round-tripping through the reader. These are the
// assertions of the two readers eval and finetune used to carry, now aimed at the one they share.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/check.h"
#include "io/json.h"

namespace moe {
namespace {

std::string message(const std::string& text) {
  try {
    parse_json(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(Json, ParsesNestedRecord) {
  const Json j = parse_json(
      R"({"question": {"stem": "Gas can", "choices": [{"text": "a", "label": "A"}, )"
      R"({"text": "b", "label": "B"}]}, "answerKey": "B", "n": -1.5e2, "ok": true, "x": null})");
  EXPECT_EQ(j.at("question").at("stem").as_string(), "Gas can");
  ASSERT_EQ(j.at("question").at("choices").as_array().size(), 2u);
  EXPECT_EQ(j.at("question").at("choices").as_array()[1].at("label").as_string(), "B");
  EXPECT_DOUBLE_EQ(j.at("n").as_number(), -150.0);
  EXPECT_TRUE(j.at("ok").as_bool());
  EXPECT_TRUE(j.at("x").is_null());
  EXPECT_EQ(j.find("missing"), nullptr);
}

TEST(Json, ObjectsArraysAndScalars) {
  const Json v = parse_json(R"( {"a": 1.5e2, "b": [true, false, null, -3], "c": {"d": "x"}} )");
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.find("a")->as_number(), 150.0);
  const std::vector<Json>& b = v.find("b")->as_array();
  ASSERT_EQ(b.size(), 4u);
  EXPECT_TRUE(b[0].as_bool());
  EXPECT_FALSE(b[1].as_bool());
  EXPECT_TRUE(b[2].is_null());
  EXPECT_EQ(b[3].as_number(), -3.0);
  EXPECT_EQ(v.find("c")->find("d")->as_string(), "x");
  EXPECT_EQ(v.find("zzz"), nullptr);
  EXPECT_EQ(parse_json("[]").as_array().size(), 0u);
  EXPECT_EQ(parse_json("{}").as_object().size(), 0u);
}

TEST(Json, DecodesEscapesToUtf8) {
  // \u00e9 = é (2 bytes), \u2014 = em dash (3 bytes), \ud83d\ude00 = U+1F600 (4 bytes).
  const Json j = parse_json(R"("caf\u00e9 \u2014 \ud83d\ude00 \"q\" \\ \/ \n\t")");
  EXPECT_EQ(j.as_string(), "caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80 \"q\" \\ / \n\t");
  EXPECT_EQ(parse_json(R"("\u20ac")").as_string(), "\xE2\x82\xAC");
  // A lone surrogate cannot be UTF-8: it becomes U+FFFD instead of failing the record.
  EXPECT_EQ(parse_json(R"("\ud83d!")").as_string(), "\xEF\xBF\xBD!");
  EXPECT_EQ(parse_json(R"("\ud83d")").as_string(), "\xEF\xBF\xBD");
  EXPECT_EQ(parse_json("\"raw \xC3\xA9\"").as_string(), "raw \xC3\xA9");  // raw UTF-8 passes
}

// The one surrogate rule of json.h, which the tokenizer's encoder.json reading follows too
// (tests/data/test_bpe.cpp, LoadErrors.LoneSurrogatesFollowTheJsonRule): a high+low pair is one
// code point, every other surrogate escape is one U+FFFD.
TEST(Json, LoneSurrogatesFollowOneRule) {
  const std::string fffd = "\xEF\xBF\xBD";
  const struct {
    const char* json;
    std::string want;
  } cases[] = {
      {R"("\ud800")", fffd},                              // high alone
      {R"("\udc00")", fffd},                              // low alone
      {R"("\udc00\ud800")", fffd + fffd},                 // a reversed pair: two lone ones
      {R"("\ud800\u0041")", fffd + "A"},                  // high before a non-surrogate escape
      {R"("\ud800x")", fffd + "x"},                       // high before a plain character
      {R"("\ud800\ud800\udc00")", fffd + "\xF0\x90\x80\x80"},  // lone high, then a pair
      {R"("\uD83D\uDE00")", "\xF0\x9F\x98\x80"},          // upper-case hex: still a pair
  };
  for (const auto& c : cases) EXPECT_EQ(parse_json(c.json).as_string(), c.want) << c.json;
}

TEST(Json, FileErrorsNameLineAndColumn) {
  try {
    parse_json_file("{\n  \"a\": 1,\n  \"b\" 2\n}", "x.json");
    FAIL() << "a missing ':' must throw";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "x.json:3:7: expected ':'");
  }
  EXPECT_EQ(parse_json_file("[1]", "y.json").as_array().size(), 1u);
}

TEST(Json, AsciiQuoteWritesWhatPythonWrites) {
  // json.dumps("\u00e9\U0001F600\b\x7f/") == '"\\u00e9\\ud83d\\ude00\\b\x7f/"'
  EXPECT_EQ(json_quote_ascii("\xC3\xA9\xF0\x9F\x98\x80\b\x7F/"),
            "\"\\u00e9\\ud83d\\ude00\\b\x7F/\"");
  const std::string s = "\xC4\xA0the \xE2\x80\x94 \xF0\x9F\x98\x80 \"q\" \\ \x01";
  EXPECT_EQ(parse_json(json_quote_ascii(s)).as_string(), s);
  for (char c : json_quote_ascii(s)) EXPECT_LT(static_cast<unsigned char>(c), 0x80u);
}

TEST(Json, ByteOrderMarkAtTheStartIsSkipped) {
  // The first line of a JSON-lines file saved by a Windows editor, and a whole file.
  EXPECT_EQ(parse_json("\xEF\xBB\xBF{\"a\": 1}").at("a").as_number(), 1.0);
  EXPECT_EQ(parse_json_file("\xEF\xBB\xBF[2]\n", "f.json").as_array().size(), 1u);
  // Anywhere else it is an error, as any stray character is.
  EXPECT_HAS(message("[\xEF\xBB\xBF" "1]"), "column 2: unexpected character");
}

TEST(Json, LastDuplicateKeyWins) {
  const Json j = parse_json(R"({"k": "first", "k": "second"})");
  EXPECT_EQ(j.find("k")->as_string(), "second");
  EXPECT_EQ(j.at("k").as_string(), "second");
}

TEST(Json, RejectsMalformedInputWithColumn) {
  EXPECT_HAS(message(R"({"a": 1} x)"), "column 10");
  EXPECT_HAS(message(R"({"a": 1} x)"), "unexpected text after");
  EXPECT_HAS(message(R"({"a" 1})"), "column 6: expected ':'");
  EXPECT_HAS(message(R"({"a": })"), "column 7");
  EXPECT_HAS(message(R"({"a": "unterminated)"), "ended inside a string");
  EXPECT_HAS(message(R"("ends in a backslash \)"), "ended inside a string");
  EXPECT_HAS(message("[1, 2,]"), "column 7");
  EXPECT_HAS(message("[1,]"), "unexpected character ']'");
  EXPECT_HAS(message("01"), "after the JSON value");
  EXPECT_HAS(message("-"), "a digit is missing");
  EXPECT_HAS(message(R"("\x")"), "unknown escape");
  EXPECT_HAS(message(R"("\u12")"), "four hex digits expected");
  EXPECT_HAS(message(""), "ended where a value");
  EXPECT_HAS(message(std::string(300, '[')), "256 levels");
}

TEST(Json, TypedAccessNamesTheKinds) {
  const Json j = parse_json(R"({"a": "text"})");
  try {
    j.at("a").as_number();
    FAIL() << "as_number on a string must throw";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "expected a JSON number, found a string");
  }
  EXPECT_STREQ(j.kind_name(), "object");
  EXPECT_THROW(j.at("b"), Error);
}

TEST(Json, WritersQuoteAndFormat) {
  EXPECT_EQ(json_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(json_number(0.1), "0.1");
  EXPECT_EQ(json_number(1e15), "1e+15");
  EXPECT_EQ(json_number(NAN), "null");
  EXPECT_DOUBLE_EQ(parse_json(json_number(1.0 / 3.0)).as_number(), 1.0 / 3.0);
}

TEST(Json, QuoteRoundTrips) {
  const std::string s = "quote \" backslash \\ newline \n tab \t bell \x07 caf\xC3\xA9";
  EXPECT_EQ(parse_json(json_quote(s)).as_string(), s);
}

}  // namespace
}  // namespace moe
