// readers.h — the priming tasks' files, read into plain records (SPEC §6; formats as in
// ../shared/data/MANIFEST.md).
//
// One reader per format, each returning the task's fields as they are in the file, plus where
// each record came from ("FILE:LINE"). Turning a record into scored text is templates.h's job, so
// these records keep the raw fields (e.g. HellaSwag's ctx_a and ctx_b separately when the file has
// them).
//
//   HellaSwag   the data folder's 6-lines-per-example text form ("label: ctx", gold, 4 endings)
//               or the original jsonl (ctx_a, ctx_b, activity_label, endings, label); chosen by
//               the file name: *.jsonl[.xz] is jsonl, anything else the text form
//   PIQA        jsonl {goal, sol1, sol2} + a labels .lst file (0|1 per line)
//   WinoGrande  jsonl {sentence, option1, option2[, answer]} + a labels .lst file (1|2)
//   StoryCloze  CSV with a header; columns found by name (InputSentence1..4,
//               RandomFifthSentenceQuiz1/2, AnswerRightEnding)
//   OpenBookQA  jsonl {question: {stem, choices: [{text, label}]}, answerKey}
//   ReCoRD      SuperGLUE jsonl {passage: {text, entities: [{start, end}]}, qas: [{query,
//               answers: [{text}]}]}: one record per query
//   Perplexity  plain text: read_text_file() in text_io.h, nothing to parse
//
// Malformed records: a reader throws BadRecord ("FILE:LINE: malformed record: ..."), unless
// opts.skip_bad is set, in which case it skips the record and counts it in stats->skipped
// (keeping the first message for the log). Whole-file problems (a missing file, a labels file
// whose length differs from the data file's) always throw.
//
// Left out: the unlabelled test files (no gold answers), ReCoRD's train/val distinction (a file is
// a file), HellaSwag's ind/source_id/split_type fields.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct ReadOptions {
  bool skip_bad = false;  // --skip-bad: skip malformed records instead of stopping
};

struct ReadStats {
  int64_t records = 0;      // records kept
  int64_t skipped = 0;      // malformed records skipped (skip_bad only)
  std::string first_error;  // the message of the first skipped record
};

struct HellaSwagRecord {
  std::string activity_label;       // jsonl only ("Roof shingle removal")
  std::string ctx_a, ctx_b;         // jsonl only; ctx_b is lower-case in the data
  std::string ctx_line;             // text form only: "<activity_label>: <ctx_a> <ctx_b>" as stored
  bool from_jsonl = false;
  std::vector<std::string> endings; // 4
  int label = 0;                    // 0..3
  std::string where;
};

struct PiqaRecord {
  std::string goal, sol1, sol2;
  int label = 0;  // 0 = sol1, 1 = sol2
  std::string where;
};

struct WinoGrandeRecord {
  std::string sentence;  // holds exactly one '_' (the blank)
  std::string option1, option2;
  int answer = 1;        // 1 or 2
  std::string where;
};

struct StoryClozeRecord {
  std::array<std::string, 4> sentences;
  std::array<std::string, 2> endings;
  int answer = 1;  // 1 or 2 (AnswerRightEnding)
  std::string where;
};

struct OpenBookQARecord {
  std::string stem;
  std::vector<std::string> choices;  // in file order (labels A, B, C, D)
  int gold = 0;                      // index into choices of answerKey
  std::string where;
};

struct ReCoRDRecord {
  std::string passage;                // raw passage.text, with its "@highlight" lines
  std::vector<std::string> entities;  // candidate entity strings, de-duplicated, in span order
  std::string query;                  // holds "@placeholder"
  std::vector<std::string> answers;   // gold answer texts
  std::string where;
};

// `labels_path` may be empty for WinoGrande (the jsonl's "answer" field is used then); for PIQA
// it is required (valid.jsonl has no label field).
std::vector<HellaSwagRecord> read_hellaswag(const std::string& path, const ReadOptions& opts,
                                            ReadStats* stats);
std::vector<PiqaRecord> read_piqa(const std::string& path, const std::string& labels_path,
                                  const ReadOptions& opts, ReadStats* stats);
std::vector<WinoGrandeRecord> read_winogrande(const std::string& path,
                                              const std::string& labels_path,
                                              const ReadOptions& opts, ReadStats* stats);
std::vector<StoryClozeRecord> read_storycloze(const std::string& path, const ReadOptions& opts,
                                              ReadStats* stats);
std::vector<OpenBookQARecord> read_openbookqa(const std::string& path, const ReadOptions& opts,
                                              ReadStats* stats);
std::vector<ReCoRDRecord> read_record(const std::string& path, const ReadOptions& opts,
                                      ReadStats* stats);

}  // namespace moe
