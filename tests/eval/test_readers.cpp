// test_readers.cpp — the task readers (src/eval/readers.h) on fixtures written in each real
// format (tests/fixtures/eval/data, MANIFEST layout), and their errors on malformed records
// (tests/fixtures/eval/bad): FILE:LINE in the message, or a count with --skip-bad.
#include <gtest/gtest.h>

#include <functional>
#include <utility>

#include "core/check.h"
#include "eval/readers.h"
#include "io/text_io.h"
#include "eval_test_util.h"

namespace moe {
namespace {

using testing_eval::kData;
using testing_eval::kFixtures;

// The message of the error `f` throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(EvalReaders, HellaSwagTextForm) {
  ReadStats st;
  const auto r = read_hellaswag(kData + "/hellaswag/hellaswag_val_full.txt", {}, &st);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(st.records, 3);
  EXPECT_EQ(r[0].ctx_line, "Roof shingle removal: A man is sitting on a roof. he");
  EXPECT_EQ(r[0].label, 3);
  EXPECT_EQ(r[0].endings[3], "starts pulling up roofing on a roof.");
  EXPECT_FALSE(r[0].from_jsonl);
  EXPECT_EQ(r[2].where, kData + "/hellaswag/hellaswag_val_full.txt:13");
}

TEST(EvalReaders, HellaSwagOriginalJsonl) {
  ReadStats st;
  const auto r = read_hellaswag(kData + "/hellaswag/hellaswag_val.jsonl", {}, &st);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].from_jsonl);
  EXPECT_EQ(r[0].activity_label, "Roof shingle removal");
  EXPECT_EQ(r[0].ctx_a, "A man is sitting on a roof.");
  EXPECT_EQ(r[0].ctx_b, "he");
  EXPECT_EQ(r[1].label, 1);  // written as the string "1"
  EXPECT_EQ(r[1].endings[0], "[step] Pour  water on it.");  // raw; the template cleans it
}

TEST(EvalReaders, PiqaWithLabels) {
  ReadStats st;
  const auto r = read_piqa(kData + "/piqa/valid.jsonl", kData + "/piqa/valid-labels.lst", {}, &st);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].goal, "To open a jar with a tight lid,");
  EXPECT_EQ(r[1].label, 1);
  EXPECT_EQ(r[2].sol2, "store it in the rain \xE2\x80\x94 outside");  // \u2014 decoded
}

TEST(EvalReaders, WinoGrandeWithAndWithoutLabelsFile) {
  ReadStats st;
  const auto r = read_winogrande(kData + "/winogrande/dev.jsonl",
                                 kData + "/winogrande/dev-labels.lst", {}, &st);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].answer, 2);
  EXPECT_EQ(r[0].option1, "Sarah");
  ReadStats st2;
  const auto r2 = read_winogrande(kData + "/winogrande/dev.jsonl", "", {}, &st2);
  EXPECT_EQ(r2[1].answer, 1);  // from the "answer" field
}

TEST(EvalReaders, StoryClozeCsvWithQuotes) {
  ReadStats st;
  const auto r = read_storycloze(kData + "/storycloze/cloze_test_test__spring2016.csv", {}, &st);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].sentences[1], "He never found good support in family, and turned to gangs.");
  EXPECT_EQ(r[2].sentences[1], "He said \"let's fly it\" to his sister.");
  EXPECT_EQ(r[2].endings[1], "They laughed, and flew it all day.");
  EXPECT_EQ(r[2].answer, 2);
  EXPECT_EQ(r[2].where, kData + "/storycloze/cloze_test_test__spring2016.csv:4");
}

TEST(EvalReaders, OpenBookQA) {
  ReadStats st;
  const auto r = read_openbookqa(kData + "/openbookqa/test.jsonl", {}, &st);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].stem, "Gas can fill any container it is given, and liquid");
  ASSERT_EQ(r[1].choices.size(), 4u);
  EXPECT_EQ(r[1].gold, 3);  // answerKey D
}

TEST(EvalReaders, ReCoRDSpansCountCodePoints) {
  ReadStats st;
  const auto r = read_record(kData + "/record/val.jsonl", {}, &st);
  ASSERT_EQ(r.size(), 3u);  // 2 queries of passage 1, 1 of passage 2
  EXPECT_EQ(st.records, 3);
  // "Renée" has a 2-byte é before "Dubois": byte offsets would cut the wrong text.
  const std::vector<std::string> want = {"Ren\xC3\xA9" "e Dubois", "Paris", "Lyon", "Dubois"};
  EXPECT_EQ(r[0].entities, want);
  EXPECT_EQ(r[0].answers, std::vector<std::string>{"Paris"});
  EXPECT_EQ(r[1].query, "The bread is brought in from @placeholder every day.");
  EXPECT_EQ(r[2].entities.size(), 3u);
  EXPECT_EQ(r[2].where, kData + "/record/val.jsonl:2");
}

TEST(EvalReaders, XzFilesAreReadThroughXz) {
  const std::string text = read_text_file(kData + "/reuters21578/reuters21578_bodies.txt.xz");
  EXPECT_EQ(text.substr(0, 20), "COCOA PRICES STEADY\n");
  EXPECT_EQ(resolve_data_file(kData + "/reuters21578/reuters21578_bodies.txt", "x"),
            kData + "/reuters21578/reuters21578_bodies.txt.xz");
  const std::string missing = error_of([] { read_text_file("tests/fixtures/eval/nope.txt.xz"); });
  EXPECT_NE(missing.find("no such file"), std::string::npos);
}

// ---- malformed records: FILE:LINE, or skipped and counted ---------------------------------------

TEST(EvalReaders, MalformedRecordsNameFileAndLine) {
  const std::string bad = kFixtures + "bad/";
  ReadStats st;
  // (what the reader is given, the start of the message it must give)
  const std::vector<std::pair<std::function<void()>, std::string>> cases = {
      {[&] { read_piqa(bad + "piqa/valid.jsonl", bad + "piqa/valid-labels.lst", {}, &st); },
       bad + "piqa/valid.jsonl:2: malformed record: missing field \"sol2\""},
      {[&] { read_hellaswag(bad + "hellaswag_bad_label.txt", {}, &st); },
       bad + "hellaswag_bad_label.txt:8: malformed record: label '7'"},
      {[&] { read_hellaswag(bad + "hellaswag_truncated.txt", {}, &st); },
       bad + "hellaswag_truncated.txt:7: malformed record: the file ends inside an example"},
      {[&] { read_storycloze(bad + "storycloze_bad_fields.csv", {}, &st); },
       bad + "storycloze_bad_fields.csv:3: malformed record: it has 7 fields"},
      {[&] {
         read_winogrande(bad + "winogrande_noblank.jsonl", bad + "winogrande_noblank-labels.lst",
                         {}, &st);
       },
       bad + "winogrande_noblank.jsonl:2: malformed record: \"sentence\" must hold exactly one"},
      {[&] {
         read_winogrande(bad + "winogrande_disagree.jsonl",
                         bad + "winogrande_disagree-labels.lst", {}, &st);
       },
       bad + "winogrande_disagree.jsonl:1: malformed record: its \"answer\" field disagrees"},
      {[&] { read_openbookqa(bad + "openbookqa_badkey.jsonl", {}, &st); },
       bad + "openbookqa_badkey.jsonl:2: malformed record: answerKey \"E\""},
      {[&] { read_record(bad + "record_badspan.jsonl", {}, &st); },
       bad + "record_badspan.jsonl:1: malformed record: entity span [15, 40]"},
      {[&] { read_piqa(bad + "piqa_not_json.jsonl", bad + "piqa_not_json-labels.lst", {}, &st); },
       bad + "piqa_not_json.jsonl:2: malformed record: column 41"},
  };
  for (const auto& [read, want] : cases) {
    const std::string got = error_of(read);
    EXPECT_EQ(got.rfind(want, 0), 0u) << "want: " << want << "\ngot:  " << got;
    EXPECT_NE(got.find("--skip-bad"), std::string::npos) << got;  // and how to get past it
  }
}

TEST(EvalReaders, SkipBadCountsAndKeepsLabelsAligned) {
  const std::string bad = kFixtures + "bad/";
  ReadOptions skip;
  skip.skip_bad = true;
  ReadStats st;
  const auto r = read_piqa(bad + "piqa/valid.jsonl", bad + "piqa/valid-labels.lst", skip, &st);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(st.skipped, 1);
  EXPECT_EQ(st.records, 2);
  EXPECT_EQ(r[1].goal, "Keep bread fresh");
  EXPECT_EQ(r[1].label, 0);  // label of line 3, not line 2
  EXPECT_NE(st.first_error.find("valid.jsonl:2"), std::string::npos);
  ReadStats sh;
  EXPECT_EQ(read_hellaswag(bad + "hellaswag_bad_label.txt", skip, &sh).size(), 1u);
  EXPECT_EQ(sh.skipped, 1);
}

TEST(EvalReaders, WholeFileProblemsAreNotSkippable) {
  const std::string bad = kFixtures + "bad/";
  ReadOptions skip;
  skip.skip_bad = true;
  ReadStats st;
  const std::string labels = error_of([&] {
    read_piqa(kData + "/piqa/valid.jsonl", bad + "piqa_labels_short.lst", skip, &st);
  });
  EXPECT_NE(labels.find("has 2 lines but"), std::string::npos) << labels;
  EXPECT_NE(error_of([&] { read_storycloze(bad + "storycloze_unclosed.csv", skip, &st); })
                .find("storycloze_unclosed.csv:3: a quoted CSV field is never closed"),
            std::string::npos);
}

TEST(EvalTextIo, CsvAndLines) {
  const auto rows = parse_csv("a,\"b,c\",\"d\"\"e\"\n\n\"multi\nline\",x\r\ny,z", "f.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (std::vector<std::string>{"a", "b,c", "d\"e"}));
  EXPECT_EQ(rows[1].fields, (std::vector<std::string>{"multi\nline", "x"}));
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[2].line, 5);
  EXPECT_EQ(split_lines("a\r\nb\n\nc\n"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(utf8_length("caf\xC3\xA9"), 4);
  EXPECT_EQ(utf8_byte_offset("caf\xC3\xA9!", 4), 5);
  EXPECT_EQ(utf8_byte_offset("ab", 3), -1);
}

}  // namespace
}  // namespace moe
