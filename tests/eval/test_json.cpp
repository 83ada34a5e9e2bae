// test_json.cpp — the eval JSON reader (src/eval/json.h): values, escapes (surrogate pairs as
// Python's json.dumps writes non-ASCII), strictness, error columns, and the writers.
#include <gtest/gtest.h>

#include <cmath>

#include "core/check.h"
#include "eval/json.h"

namespace moe {
namespace {

TEST(EvalJson, ParsesNestedRecord) {
  const Json j = parse_json_value(
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

TEST(EvalJson, DecodesEscapesToUtf8) {
  // \u00e9 = é (2 bytes), \u2014 = em dash (3 bytes), \ud83d\ude00 = U+1F600 (4 bytes).
  const Json j = parse_json_value(R"("caf\u00e9 \u2014 \ud83d\ude00 \"q\" \\ \/ \n\t")");
  EXPECT_EQ(j.as_string(), "caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80 \"q\" \\ / \n\t");
  // A lone surrogate cannot be UTF-8: it becomes U+FFFD instead of failing the record.
  EXPECT_EQ(parse_json_value(R"("\ud83d!")").as_string(), "\xEF\xBF\xBD!");
}

TEST(EvalJson, RejectsMalformedInputWithColumn) {
  const auto message = [](const char* text) {
    try {
      parse_json_value(text);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"a": 1} x)").find("column 10"), std::string::npos);
  EXPECT_NE(message(R"({"a": })").find("column 7"), std::string::npos);
  EXPECT_NE(message(R"({"a": "unterminated)").find("ended inside a string"), std::string::npos);
  EXPECT_NE(message("[1, 2,]").find("column 7"), std::string::npos);
  EXPECT_NE(message("01").find("after the JSON value"), std::string::npos);
  EXPECT_NE(message(R"("\x")").find("unknown escape"), std::string::npos);
  EXPECT_NE(message("").find("ended where a value"), std::string::npos);
  std::string deep(300, '[');
  EXPECT_NE(message(deep.c_str()).find("256 levels"), std::string::npos);
}

TEST(EvalJson, TypedAccessNamesTheKinds) {
  const Json j = parse_json_value(R"({"a": "text"})");
  try {
    j.at("a").as_number();
    FAIL() << "as_number on a string must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected a JSON number, found a string"),
              std::string::npos);
  }
  EXPECT_THROW(j.at("b"), Error);
}

TEST(EvalJson, WritersQuoteAndFormat) {
  EXPECT_EQ(json_quote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(json_number(0.1), "0.1");
  EXPECT_EQ(json_number(1e15), "1e+15");
  EXPECT_EQ(json_number(NAN), "null");
  EXPECT_DOUBLE_EQ(parse_json_value(json_number(1.0 / 3.0)).as_number(), 1.0 / 3.0);
}

}  // namespace
}  // namespace moe
