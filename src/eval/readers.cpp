// readers.cpp — see readers.h. Every reader follows one pattern: read the file whole, cut it into
// records (lines, 6-line blocks or CSV rows), and parse each record inside parse_each(), which
// turns any error into a BadRecord naming FILE:LINE and rethrows it, or counts it (--skip-bad).
#include "eval/readers.h"

#include <cmath>
#include <cstdint>
#include <functional>

#include "core/check.h"
#include "io/text_io.h"
#include "io/json.h"

namespace moe {

namespace {

// Lines of a data file, without blank lines at the very end (an editor's extra newline must not
// become a record, nor shift the pairing of line i with label i).
std::vector<std::string> record_lines(const std::string& path) {
  std::vector<std::string> lines = split_lines(read_text_file(path));
  while (!lines.empty() && trim_ascii(lines.back()).empty()) lines.pop_back();
  return lines;
}

// Call parse(i) for i in [0, n). A failure in record i becomes a BadRecord located at where(i):
// rethrown, or counted and skipped when opts.skip_bad. Other errors (BadRecord's base, moe::Error,
// from a JSON accessor, say) are converted the same way, so readers can use CHECK freely.
void parse_each(int64_t n, const std::function<std::string(int64_t)>& where,
                const ReadOptions& opts, ReadStats* stats,
                const std::function<void(int64_t)>& parse) {
  for (int64_t i = 0; i < n; ++i) {
    try {
      try {
        parse(i);
        ++stats->records;
      } catch (const BadRecord&) {
        throw;
      } catch (const Error& e) {
        throw_bad_record(where(i), e.what());
      }
    } catch (const BadRecord& e) {
      if (!opts.skip_bad) throw;
      if (stats->skipped++ == 0) stats->first_error = e.what();
    }
  }
}

// A labels .lst file: one label per line, as many lines as the data file has records.
std::vector<std::string> read_labels(const std::string& labels_path, const std::string& data_path,
                                     size_t n_records) {
  std::vector<std::string> labels = record_lines(labels_path);
  CHECK(labels.size() == n_records, "labels file ", labels_path, " has ", labels.size(),
        " lines but ", data_path, " has ", n_records,
        " records. HINT: line i of the labels file is the answer to record i; the two files must "
        "come from the same split");
  return labels;
}

// Parse a label that must be one of the integers [lo, hi].
int parse_int_label(const std::string& text, int lo, int hi, const std::string& where) {
  const std::string t = trim_ascii(text);
  if (t.size() == 1 && t[0] >= '0' + lo && t[0] <= '0' + hi) return t[0] - '0';
  throw_bad_record(where, str_cat("label '", t, "' is not an integer in [", lo, ", ", hi, "]"));
}

const std::string& string_field(const Json& obj, const char* key) {
  const Json& v = obj.at(key);
  CHECK(v.is_string(), "field \"", key, "\" must be a string, found a ", Json::kind_name(v.kind()));
  return v.as_string();
}

Json parse_record_json(const std::string& line) {
  Json j = parse_json(line);
  CHECK(j.is_object(), "a JSON object was expected, found a ", Json::kind_name(j.kind()));
  return j;
}

// A label written as a number (3) or a numeric string ("3"). The range is checked on the double
// before any cast: converting 1e300 or NaN to int is undefined behaviour.
int json_int_label(const Json& v, int lo, int hi, const std::string& where) {
  if (v.is_number()) {
    const double x = v.as_number();
    if (x >= lo && x <= hi && x == std::floor(x)) return static_cast<int>(x);
    throw_bad_record(where, str_cat("label ", x, " is not an integer in [", lo, ", ", hi, "]"));
  }
  if (v.is_string()) return parse_int_label(v.as_string(), lo, hi, where);
  throw_bad_record(where, "the label must be an integer or a string holding one");
}

// The lines of a data file that must hold at least one record: an empty file (or one of blank
// lines only) names itself instead of surfacing later as "no usable items".
std::vector<std::string> nonempty_record_lines(const std::string& path) {
  std::vector<std::string> lines = record_lines(path);
  CHECK(!lines.empty(), path, ": the file is empty (no records). HINT: check that it is the "
        "right file and was copied completely");
  return lines;
}

std::function<std::string(int64_t)> line_of(const std::string& path) {
  return [path](int64_t i) { return where_str(path, i + 1); };
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// HellaSwag

static void parse_hellaswag_block(const std::vector<std::string>& lines, int64_t i,
                                  const std::string& path, std::vector<HellaSwagRecord>* out) {
  const size_t first = static_cast<size_t>(i) * 6;
  CHECK(first + 6 <= lines.size(), "the file ends inside an example (", lines.size() - first,
        " of its 6 lines: context, gold label, 4 endings)");
  HellaSwagRecord r;
  r.ctx_line = trim_ascii(lines[first]);
  CHECK(!r.ctx_line.empty(), "the context line is empty");
  r.label = parse_int_label(lines[first + 1], 0, 3, where_str(path, first + 2));
  for (size_t k = 0; k < 4; ++k) {
    r.endings.push_back(trim_ascii(lines[first + 2 + k]));
    CHECK(!r.endings.back().empty(), "ending ", k, " (line ", first + 3 + k, ") is empty");
  }
  r.where = where_str(path, static_cast<int64_t>(first) + 1);
  out->push_back(std::move(r));
}

static void parse_hellaswag_json(const std::string& line, const std::string& where,
                                 std::vector<HellaSwagRecord>* out) {
  const Json j = parse_record_json(line);
  HellaSwagRecord r;
  r.from_jsonl = true;
  r.activity_label = string_field(j, "activity_label");
  r.ctx_a = string_field(j, "ctx_a");
  r.ctx_b = string_field(j, "ctx_b");
  const Json& endings = j.at("endings");
  CHECK(endings.is_array() && endings.as_array().size() == 4,
        "\"endings\" must be an array of 4 strings");
  for (const Json& e : endings.as_array()) {
    CHECK(e.is_string(), "\"endings\" must hold strings");
    r.endings.push_back(e.as_string());
  }
  r.label = json_int_label(j.at("label"), 0, 3, where);
  r.where = where;
  out->push_back(std::move(r));
}

std::vector<HellaSwagRecord> read_hellaswag(const std::string& path, const ReadOptions& opts,
                                            ReadStats* stats) {
  const std::vector<std::string> lines = nonempty_record_lines(path);
  std::vector<HellaSwagRecord> out;
  if (str_ends_with(path, ".jsonl") || str_ends_with(path, ".jsonl.xz")) {
    parse_each(static_cast<int64_t>(lines.size()), line_of(path), opts, stats, [&](int64_t i) {
      parse_hellaswag_json(lines[i], where_str(path, i + 1), &out);
    });
  } else {
    const int64_t blocks = static_cast<int64_t>((lines.size() + 5) / 6);
    parse_each(blocks, [&](int64_t i) { return where_str(path, i * 6 + 1); }, opts, stats,
               [&](int64_t i) { parse_hellaswag_block(lines, i, path, &out); });
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// PIQA, WinoGrande, OpenBookQA: one JSON object per line

std::vector<PiqaRecord> read_piqa(const std::string& path, const std::string& labels_path,
                                  const ReadOptions& opts, ReadStats* stats) {
  CHECK(!labels_path.empty(), "PIQA needs its labels file next to ", path,
        " (e.g. valid-labels.lst). HINT: PIQA's jsonl holds no answers");
  const std::vector<std::string> lines = nonempty_record_lines(path);
  const std::vector<std::string> labels = read_labels(labels_path, path, lines.size());
  std::vector<PiqaRecord> out;
  parse_each(static_cast<int64_t>(lines.size()), line_of(path), opts, stats, [&](int64_t i) {
    const Json j = parse_record_json(lines[i]);
    PiqaRecord r{string_field(j, "goal"), string_field(j, "sol1"), string_field(j, "sol2"),
                 parse_int_label(labels[i], 0, 1, where_str(labels_path, i + 1)),
                 where_str(path, i + 1)};
    out.push_back(std::move(r));
  });
  return out;
}

std::vector<WinoGrandeRecord> read_winogrande(const std::string& path,
                                              const std::string& labels_path,
                                              const ReadOptions& opts, ReadStats* stats) {
  const std::vector<std::string> lines = nonempty_record_lines(path);
  std::vector<std::string> labels;
  if (!labels_path.empty()) labels = read_labels(labels_path, path, lines.size());
  std::vector<WinoGrandeRecord> out;
  parse_each(static_cast<int64_t>(lines.size()), line_of(path), opts, stats, [&](int64_t i) {
    const Json j = parse_record_json(lines[i]);
    WinoGrandeRecord r;
    r.where = where_str(path, i + 1);
    r.sentence = string_field(j, "sentence");
    r.option1 = string_field(j, "option1");
    r.option2 = string_field(j, "option2");
    const size_t blank = r.sentence.find('_');
    CHECK(blank != std::string::npos && r.sentence.find('_', blank + 1) == std::string::npos,
          "\"sentence\" must hold exactly one '_' (the blank)");
    const Json* answer = j.find("answer");
    if (!labels.empty()) {
      r.answer = parse_int_label(labels[i], 1, 2, where_str(labels_path, i + 1));
      CHECK(answer == nullptr || json_int_label(*answer, 1, 2, r.where) == r.answer,
            "its \"answer\" field disagrees with line ", i + 1, " of ", labels_path);
    } else {
      CHECK(answer != nullptr, "no \"answer\" field and no labels file");
      r.answer = json_int_label(*answer, 1, 2, r.where);
    }
    out.push_back(std::move(r));
  });
  return out;
}

std::vector<OpenBookQARecord> read_openbookqa(const std::string& path, const ReadOptions& opts,
                                              ReadStats* stats) {
  const std::vector<std::string> lines = nonempty_record_lines(path);
  std::vector<OpenBookQARecord> out;
  parse_each(static_cast<int64_t>(lines.size()), line_of(path), opts, stats, [&](int64_t i) {
    const Json j = parse_record_json(lines[i]);
    const Json& q = j.at("question");
    OpenBookQARecord r;
    r.where = where_str(path, i + 1);
    r.stem = string_field(q, "stem");
    const Json& choices = q.at("choices");
    CHECK(choices.is_array() && choices.as_array().size() >= 2,
          "\"question.choices\" must be an array of at least 2 choices");
    const std::string key = string_field(j, "answerKey");
    r.gold = -1;
    for (const Json& c : choices.as_array()) {
      if (string_field(c, "label") == key) r.gold = static_cast<int>(r.choices.size());
      r.choices.push_back(string_field(c, "text"));
    }
    CHECK(r.gold >= 0, "answerKey \"", key, "\" is not the label of any choice");
    out.push_back(std::move(r));
  });
  return out;
}

// -------------------------------------------------------------------------------------------------
// StoryCloze: CSV, columns by header name

std::vector<StoryClozeRecord> read_storycloze(const std::string& path, const ReadOptions& opts,
                                              ReadStats* stats) {
  const std::vector<CsvRow> rows = parse_csv(read_text_file(path), path);
  CHECK(!rows.empty(), path, ": the file is empty; a header row and records were expected. "
        "HINT: check that it is the right file and was copied completely");
  CHECK(rows.size() > 1, path, ": the file holds only its header row, no records. HINT: check "
        "that it is the right file and was copied completely");
  const char* names[] = {"InputSentence1", "InputSentence2", "InputSentence3",
                         "InputSentence4", "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2",
                         "AnswerRightEnding"};
  int col[7];
  for (int k = 0; k < 7; ++k) {
    col[k] = -1;
    for (size_t c = 0; c < rows[0].fields.size(); ++c)
      if (trim_ascii(rows[0].fields[c]) == names[k]) col[k] = static_cast<int>(c);
    CHECK(col[k] >= 0, path, ":1: the header has no column ", names[k],
          ". HINT: StoryCloze 2016 CSV files start with InputStoryid,InputSentence1,...");
  }
  std::vector<StoryClozeRecord> out;
  const auto where = [&](int64_t i) { return where_str(path, rows[i + 1].line); };
  parse_each(static_cast<int64_t>(rows.size()) - 1, where, opts, stats, [&](int64_t i) {
    const CsvRow& row = rows[i + 1];
    CHECK(row.fields.size() == rows[0].fields.size(), "it has ", row.fields.size(),
          " fields, the header has ", rows[0].fields.size());
    StoryClozeRecord r;
    for (int k = 0; k < 4; ++k) r.sentences[k] = trim_ascii(row.fields[col[k]]);
    for (int k = 0; k < 2; ++k) r.endings[k] = trim_ascii(row.fields[col[4 + k]]);
    r.answer = parse_int_label(row.fields[col[6]], 1, 2, where(i));
    r.where = where(i);
    out.push_back(std::move(r));
  });
  return out;
}

// -------------------------------------------------------------------------------------------------
// ReCoRD (SuperGLUE jsonl): one passage per line, one record per query

static std::vector<std::string> record_entities(const Json& passage, const std::string& text) {
  std::vector<std::string> entities;
  for (const Json& e : passage.at("entities").as_array()) {
    // SuperGLUE spans are inclusive [start, end], in code points (Python string indices). The
    // doubles are checked against the passage before any cast (1e300 -> int64 is undefined).
    const double s = e.at("start").as_number(), t = e.at("end").as_number();
    const double n = static_cast<double>(utf8_length(text));
    CHECK(s >= 0 && t >= s && t < n && s == std::floor(s) && t == std::floor(t), "entity span [",
          s, ", ", t, "] is not a span of whole characters inside the passage (", n,
          " characters)");
    const int64_t b = utf8_byte_offset(text, static_cast<int64_t>(s));
    const int64_t f = utf8_byte_offset(text, static_cast<int64_t>(t) + 1);
    ASSERT_INTERNAL(b >= 0 && f >= b);
    std::string ent = text.substr(static_cast<size_t>(b), static_cast<size_t>(f - b));
    bool seen = false;
    for (const std::string& x : entities) seen = seen || x == ent;
    if (!seen) entities.push_back(std::move(ent));
  }
  CHECK(entities.size() >= 2, "a passage needs at least 2 candidate entities, found ",
        entities.size());
  return entities;
}

std::vector<ReCoRDRecord> read_record(const std::string& path, const ReadOptions& opts,
                                      ReadStats* stats) {
  const std::vector<std::string> lines = nonempty_record_lines(path);
  std::vector<ReCoRDRecord> out;
  parse_each(static_cast<int64_t>(lines.size()), line_of(path), opts, stats, [&](int64_t i) {
    const Json j = parse_record_json(lines[i]);
    const Json& passage = j.at("passage");
    const std::string& text = string_field(passage, "text");
    const std::vector<std::string> entities = record_entities(passage, text);
    std::vector<ReCoRDRecord> queries;  // all of the line's queries, or none of them
    for (const Json& qa : j.at("qas").as_array()) {
      ReCoRDRecord r{text, entities, string_field(qa, "query"), {}, where_str(path, i + 1)};
      CHECK(r.query.find("@placeholder") != std::string::npos,
            "a query has no @placeholder: \"", r.query, "\"");
      for (const Json& a : qa.at("answers").as_array())
        r.answers.push_back(string_field(a, "text"));
      CHECK(!r.answers.empty(), "a query has no answers (an unlabelled test file?)");
      queries.push_back(std::move(r));
    }
    CHECK(!queries.empty(), "\"qas\" is empty");
    for (auto& q : queries) out.push_back(std::move(q));
  });
  stats->records = static_cast<int64_t>(out.size());  // count queries, not passages
  return out;
}

}  // namespace moe
