// test_readers_inputs.cpp — the task readers against inputs a user's files can hold
// (notes/design.md "Hardening", "Clear errors"): numeric labels and spans far outside any range
// (1e300) are refused before any float -> int cast, empty and header-only task files name themselves, and a UTF-8 byte order mark
// at the start of a jsonl, csv, labels or text file is accepted.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/check.h"
#include "eval/readers.h"
#include "eval_test_util.h"

namespace moe {
namespace {

const std::string kBom = "\xEF\xBB\xBF";

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

TEST(EvalReaderInputs, HugeOrFractionalLabelsAreRangeCheckedBeforeAnyCast) {
  const std::string dir = testing_eval::fresh_temp_dir("labels");
  ReadStats st;
  // WinoGrande's "answer" as a JSON number: 2 is fine, 2.0 too; 1e300, 1.5 and 3 are not.
  const auto wino = [&](const std::string& answer) {
    const std::string f = write(dir, "w.jsonl", "{\"sentence\": \"A _ b.\", \"option1\": \"x\", "
                                                "\"option2\": \"y\", \"answer\": " + answer + "}\n");
    return read_winogrande(f, "", {}, &st);
  };
  EXPECT_EQ(wino("2").at(0).answer, 2);
  EXPECT_EQ(wino("2.0").at(0).answer, 2);
  for (const char* bad : {"1e300", "-1e300", "1.5", "3"}) {
    const std::string e = error_of([&] { wino(bad); });
    EXPECT_TRUE(has(e, "w.jsonl:1: malformed record: label ")) << bad << ": " << e;
    EXPECT_TRUE(has(e, "is not an integer in [1, 2]")) << bad << ": " << e;
  }
  // HellaSwag's original jsonl: the label as a number.
  const std::string hs = write(dir, "h.jsonl",
                               "{\"activity_label\": \"A\", \"ctx_a\": \"b\", \"ctx_b\": \"c\", "
                               "\"endings\": [\"1\", \"2\", \"3\", \"4\"], \"label\": 1e300}\n");
  const std::string e = error_of([&] { read_hellaswag(hs, {}, &st); });
  EXPECT_TRUE(has(e, "h.jsonl:1: malformed record: label 1e+300 is not an integer in [0, 3]")) << e;
}

TEST(EvalReaderInputs, ReCoRDSpansMustBeWholeCharactersInsideThePassage) {
  const std::string dir = testing_eval::fresh_temp_dir("spans");
  ReadStats st;
  const auto record = [&](const std::string& start, const std::string& end) {
    const std::string f = write(
        dir, "r.jsonl",
        "{\"passage\": {\"text\": \"Alice met Bob.\", \"entities\": [{\"start\": 0, \"end\": 4}, "
        "{\"start\": " + start + ", \"end\": " + end + "}]}, \"qas\": [{\"query\": "
        "\"@placeholder came.\", \"answers\": [{\"text\": \"Bob\"}]}]}\n");
    return read_record(f, {}, &st);
  };
  EXPECT_EQ(record("10", "12").at(0).entities.at(1), "Bob");
  for (const auto& [s, t] : {std::pair{"1e300", "1e300"}, std::pair{"0", "1e300"},
                            std::pair{"-1e300", "2"}, std::pair{"10.5", "12"},
                            std::pair{"10", "14"}}) {
    const std::string e = error_of([&] { record(s, t); });
    EXPECT_TRUE(has(e, "r.jsonl:1: malformed record: entity span [")) << s << " " << t << ": " << e;
    EXPECT_TRUE(has(e, "not a span of whole characters inside the passage (14 characters)")) << e;
  }
}

TEST(EvalReaderInputs, EmptyAndHeaderOnlyFilesNameTheFile) {
  const std::string dir = testing_eval::fresh_temp_dir("empty");
  ReadStats st;
  const std::string empty = write(dir, "valid.jsonl", "");
  const std::string blank = write(dir, "blank.jsonl", "\n\n");
  const std::string no_labels = write(dir, "valid-labels.lst", "");
  EXPECT_TRUE(has(error_of([&] { read_piqa(empty, no_labels, {}, &st); }),
                  empty + ": the file is empty"));
  EXPECT_TRUE(has(error_of([&] { read_openbookqa(blank, {}, &st); }), blank + ": the file is empty"));
  EXPECT_TRUE(has(error_of([&] { read_winogrande(empty, "", {}, &st); }), empty));
  EXPECT_TRUE(has(error_of([&] { read_hellaswag(empty, {}, &st); }), empty));
  EXPECT_TRUE(has(error_of([&] { read_record(empty, {}, &st); }), empty));
  const std::string header =
      write(dir, "cloze.csv",
            "InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
            "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n");
  EXPECT_TRUE(has(error_of([&] { read_storycloze(header, {}, &st); }),
                  header + ": the file holds only its header row"));
  const std::string nothing = write(dir, "nothing.csv", "");
  EXPECT_TRUE(has(error_of([&] { read_storycloze(nothing, {}, &st); }), nothing + ": the file is empty"));
}

// The byte order mark some editors write is dropped by the shared text reader (io/text_io.h);
// checked here through every reader of this folder.
TEST(EvalReaderInputs, ByteOrderMarkIsAcceptedInEveryFormat) {
  const std::string dir = testing_eval::fresh_temp_dir("bom");
  ReadStats st;
  const std::string piqa =
      write(dir, "p.jsonl", kBom + "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n");
  const std::string labels = write(dir, "p-labels.lst", kBom + "1\n");
  const auto p = read_piqa(piqa, labels, {}, &st);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].goal, "g");
  EXPECT_EQ(p[0].label, 1);

  const std::string wino = write(dir, "w.jsonl", kBom + "{\"sentence\": \"A _ b.\", \"option1\": "
                                                        "\"x\", \"option2\": \"y\"}\n");
  const std::string wino_labels = write(dir, "w-labels.lst", kBom + "2\n");
  EXPECT_EQ(read_winogrande(wino, wino_labels, {}, &st).at(0).answer, 2);

  const std::string cloze = write(
      dir, "c.csv", kBom +
      "InputStoryid,InputSentence1,InputSentence2,InputSentence3,InputSentence4,"
      "RandomFifthSentenceQuiz1,RandomFifthSentenceQuiz2,AnswerRightEnding\n"
      "id1,a,b,c,d,e1,e2,2\n");
  const auto c = read_storycloze(cloze, {}, &st);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].answer, 2);

  const std::string hs = write(dir, "h.txt", kBom + "Act: ctx\n0\ne0\ne1\ne2\ne3\n");
  const auto h = read_hellaswag(hs, {}, &st);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].ctx_line, "Act: ctx");

  const std::string obqa = write(dir, "o.jsonl", kBom +
      "{\"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"t1\", \"label\": \"A\"}, "
      "{\"text\": \"t2\", \"label\": \"B\"}]}, \"answerKey\": \"B\"}\n");
  EXPECT_EQ(read_openbookqa(obqa, {}, &st).at(0).gold, 1);

  const std::string rec = write(dir, "r.jsonl", kBom +
      "{\"passage\": {\"text\": \"Alice met Bob.\", \"entities\": [{\"start\": 0, \"end\": 4}, "
      "{\"start\": 10, \"end\": 12}]}, \"qas\": [{\"query\": \"@placeholder came.\", "
      "\"answers\": [{\"text\": \"Bob\"}]}]}\n");
  EXPECT_EQ(read_record(rec, {}, &st).at(0).passage, "Alice met Bob.");
}

}  // namespace
}  // namespace moe
