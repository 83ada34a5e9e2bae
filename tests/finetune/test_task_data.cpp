// Tests for the fine-tuning data readers (SPEC §7, MANIFEST.md formats): BoolQ / MNLI / SST-2
// fixtures in every real format (jsonl, MultiNLI jsonl, GLUE tsv, .xz), the "-" gold-label skip,
// malformed records named by FILE:LINE, and the seeded carve of a train split.
// Fixtures live in tests/fixtures/finetune (README.md there); tests run from the repo root.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "finetune/task_data.h"

using namespace moe;

namespace {

const std::string kDir = "tests/fixtures/finetune/";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

}  // namespace

// ---- readers on fixtures in the real formats -------------------------------------------------

TEST(FinetuneData, BoolQJsonl) {
  TaskFile f = read_task_file(task_info("boolq"), kDir + "boolq.jsonl");
  ASSERT_EQ(f.examples.size(), 5u);  // the blank line 3 is not a record
  EXPECT_EQ(f.records, 5);
  EXPECT_EQ(f.examples[0].label, 1);  // answer true -> class 1 ("true")
  EXPECT_EQ(f.examples[1].label, 0);
  EXPECT_EQ(f.examples[0].text_b, "is the sky blue on a clear day");
  EXPECT_EQ(f.examples[1].text_a, "The cat is a small carnivorous mammal with four legs and a tail.");
  EXPECT_EQ(f.examples[2].line, 4);
  EXPECT_EQ(f.examples[2].text_b, "is caf\xC3\xA9 a french word");
  EXPECT_HAS(f.examples[2].text_a, "\"caf\xC3\xA9\" means coffee. An emoji: \xF0\x9F\x98\x80.");
  EXPECT_EQ(f.examples[3].label, 1);  // SuperGLUE's "label": true
}

TEST(FinetuneData, MnliDataFolderJsonl) {
  TaskFile f = read_task_file(task_info("mnli"), kDir + "mnli.jsonl");
  ASSERT_EQ(f.examples.size(), 3u);
  EXPECT_EQ(f.examples[0].label, 1);  // neutral
  EXPECT_EQ(f.examples[1].label, 2);  // contradiction
  EXPECT_EQ(f.examples[2].label, 0);  // entailment
  EXPECT_EQ(f.examples[0].text_a, "The new rights are nice  enough");  // raw until templating
  EXPECT_EQ(f.examples[2].text_b, "A man plays music.");
}

TEST(FinetuneData, MultiNliJsonlSkipsNoGoldLabel) {
  TaskFile f = read_task_file(task_info("mnli"), kDir + "mnli_multinli.jsonl");
  EXPECT_EQ(f.records, 4);
  EXPECT_EQ(f.skipped_no_gold, 1);
  ASSERT_EQ(f.examples.size(), 3u);
  EXPECT_EQ(f.examples[0].label, 1);
  EXPECT_EQ(f.examples[1].line, 3);  // line 2 ("-") was skipped
  EXPECT_EQ(f.examples[1].label, 0);
  EXPECT_EQ(f.examples[2].label, 2);
  EXPECT_EQ(f.examples[2].text_a, "The museum is open every day.");
}

TEST(FinetuneData, MnliGlueTsvByHeaderName) {
  TaskFile f = read_task_file(task_info("mnli"), kDir + "mnli_glue.tsv");
  EXPECT_EQ(f.skipped_no_gold, 1);
  ASSERT_EQ(f.examples.size(), 3u);
  EXPECT_EQ(f.examples[0].text_a, "Conceptually cream skimming has two basic dimensions.");
  EXPECT_EQ(f.examples[0].text_b, "Product and geography are what make cream skimming work.");
  EXPECT_EQ(f.examples[0].label, 1);
  EXPECT_EQ(f.examples[2].label, 2);
}

TEST(FinetuneData, Sst2TsvAndXz) {
  TaskFile f = read_task_file(task_info("sst2"), kDir + "sst2.tsv");
  ASSERT_EQ(f.examples.size(), 4u);
  EXPECT_EQ(f.examples[0].text_a, "it 's a charming and often affecting journey . ");
  EXPECT_EQ(f.examples[0].label, 1);
  EXPECT_EQ(f.examples[1].label, 0);
  EXPECT_EQ(f.examples[0].line, 2);  // line 1 is the header
  TaskFile g = read_task_file(task_info("sst2"), kDir + "sst2.tsv.xz");  // through `xz -dc`
  ASSERT_EQ(g.examples.size(), f.examples.size());
  for (size_t i = 0; i < f.examples.size(); ++i) {
    EXPECT_EQ(g.examples[i].text_a, f.examples[i].text_a);
    EXPECT_EQ(g.examples[i].label, f.examples[i].label);
  }
}

// ---- malformed input: every message names FILE:LINE ----------------------------------------

TEST(FinetuneData, MalformedRecordsNameFileAndLine) {
  EXPECT_HAS(error_of([] { read_task_file(task_info("boolq"), kDir + "boolq_bad_json.jsonl"); }),
             "boolq_bad_json.jsonl:3: invalid JSON");
  const std::string ans =
      error_of([] { read_task_file(task_info("boolq"), kDir + "boolq_bad_answer.jsonl"); });
  EXPECT_HAS(ans, "boolq_bad_answer.jsonl:2: label 'maybe' is not a boolq label");
  EXPECT_HAS(ans, "HINT");
  EXPECT_HAS(error_of([] { read_task_file(task_info("boolq"), kDir + "boolq_missing_field.jsonl"); }),
             "boolq_missing_field.jsonl:2: record has no field \"passage\"");
  EXPECT_HAS(error_of([] { read_task_file(task_info("mnli"), kDir + "mnli_bad_label.jsonl"); }),
             "mnli_bad_label.jsonl:3: label 'entails'");
  EXPECT_HAS(error_of([] { read_task_file(task_info("sst2"), kDir + "sst2_bad_fields.tsv"); }),
             "sst2_bad_fields.tsv:3: 3 tab-separated fields, but the header has 2");
  EXPECT_HAS(error_of([] { read_task_file(task_info("sst2"), kDir + "sst2_bad_label.tsv"); }),
             "sst2_bad_label.tsv:4: label '2'");
  EXPECT_HAS(error_of([] { read_task_file(task_info("sst2"), kDir + "sst2_no_header.tsv"); }),
             "sst2_no_header.tsv:1: the header has no column \"sentence\"");
  // a file of the wrong task: the first record lacks the task's fields
  EXPECT_HAS(error_of([] { read_task_file(task_info("mnli"), kDir + "boolq.jsonl"); }),
             "boolq.jsonl:1:");
}

TEST(FinetuneData, MissingAndCorruptFiles) {
  EXPECT_HAS(error_of([] { read_task_file(task_info("sst2"), kDir + "nope.tsv"); }),
             "no such file");
  EXPECT_HAS(error_of([] { read_task_file(task_info("sst2"), kDir + "corrupt.tsv.xz"); }),
             "`xz -dc tests/fixtures/finetune/corrupt.tsv.xz` failed");
  EXPECT_HAS(error_of([] { task_info("cola"); }), "boolq|mnli|sst2");
}

// ---- carving a train split out of one file --------------------------------------------------

namespace {
std::vector<Example> numbered(int n) {
  std::vector<Example> v(n);
  for (int i = 0; i < n; ++i) {
    v[i].text_a = "example " + std::to_string(i);
    v[i].line = i + 1;
    v[i].label = i % 2;
  }
  return v;
}
}  // namespace

TEST(Carve, DeterministicDisjointAndCovering) {
  const std::vector<Example> all = numbered(100);
  std::vector<Example> tr1, dv1, tr2, dv2, tr3, dv3;
  carve_split(all, 70, 1234, &tr1, &dv1);
  carve_split(all, 70, 1234, &tr2, &dv2);
  carve_split(all, 70, 99, &tr3, &dv3);
  ASSERT_EQ(tr1.size(), 70u);
  ASSERT_EQ(dv1.size(), 30u);
  std::set<int64_t> seen;
  for (const Example& e : tr1) seen.insert(e.line);
  for (const Example& e : dv1) EXPECT_TRUE(seen.insert(e.line).second) << "line " << e.line << " in both";
  EXPECT_EQ(seen.size(), 100u);  // disjoint and covering
  bool same = true, same_other_seed = true;
  for (size_t i = 0; i < tr1.size(); ++i) {
    same = same && tr1[i].line == tr2[i].line;
    same_other_seed = same_other_seed && tr1[i].line == tr3[i].line;
  }
  EXPECT_TRUE(same) << "the same seed must give the same split";
  EXPECT_FALSE(same_other_seed) << "another seed should give another split";
  for (size_t i = 1; i < tr1.size(); ++i) EXPECT_LT(tr1[i - 1].line, tr1[i].line);  // file order
  // a seeded shuffle, not a prefix: the train part is not simply lines 1..70
  EXPECT_NE(tr1.back().line, 70);
}

TEST(Carve, BadSizesAreErrors) {
  std::vector<Example> tr, dv;
  EXPECT_HAS(error_of([&] { carve_split(numbered(5), 5, 1, &tr, &dv); }), "between 1 and 4");
  EXPECT_HAS(error_of([&] { carve_split(numbered(5), 0, 1, &tr, &dv); }), "between 1 and 4");
}

TEST(PrepareTaskData, CarveFromTheOneFileAndSayIt) {
  FinetuneDataConfig c;
  c.task = "boolq";
  c.dev_file = kDir + "boolq.jsonl";
  c.carve_train = 3;
  FinetuneData d = prepare_task_data(c);
  EXPECT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.dev.size(), 2u);
  EXPECT_EQ(d.carve_from, c.dev_file);
  ASSERT_FALSE(d.notes.empty());
  EXPECT_HAS(d.notes[0], "carved 3 train / 2 dev examples out of " + c.dev_file);
  c.train_file = kDir + "boolq.jsonl";  // two files and a carve: ambiguous
  EXPECT_HAS(error_of([&] { prepare_task_data(c); }), "splits ONE file");
}

TEST(PrepareTaskData, MnliTrainsOnMismatchedAndSaysSo) {
  // The data folder has no MNLI train split: the documented setup trains on dev_mismatched.
  FinetuneDataConfig c;
  c.task = "mnli";
  c.train_file = "/tmp/moe-gpt-ft-dev_mismatched.jsonl";
  c.dev_file = kDir + "mnli.jsonl";
  std::filesystem::copy_file(kDir + "mnli_multinli.jsonl", c.train_file,
                             std::filesystem::copy_options::overwrite_existing);
  FinetuneData d = prepare_task_data(c);
  EXPECT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.dev.size(), 3u);
  EXPECT_EQ(d.skipped_no_gold, 1);
  std::string all;
  for (const std::string& n : d.notes) all += n + "\n";
  EXPECT_HAS(all, "training on dev_mismatched");
  EXPECT_HAS(all, "skipped 1 records whose gold label is '-'");
}

TEST(PrepareTaskData, MissingFilesAndLimits) {
  FinetuneDataConfig c;
  c.task = "boolq";
  EXPECT_HAS(error_of([&] { prepare_task_data(c); }), "--carve-train 2270");  // the HINT
  c.task = "sst2";
  c.train_file = kDir + "sst2.tsv";
  c.dev_file = kDir + "sst2.tsv";
  EXPECT_HAS(error_of([&] { prepare_task_data(c); }), "are the same file");
  c.dev_file = kDir + "sst2.tsv.xz";
  c.limit_train = 2;
  c.limit_dev = 3;
  FinetuneData d = prepare_task_data(c);
  EXPECT_EQ(d.train.size(), 2u);
  EXPECT_EQ(d.dev.size(), 3u);
  EXPECT_EQ(d.notes.size(), 2u);
}

// ---- notes/design.md "Hardening": BOMs, numeric labels out of range, empty and header-only files
// ----------------

namespace {
// Writes `content` to a fresh file under the temp folder; returns its path.
std::string temp_file(const std::string& name, const std::string& content) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "moe-gpt-ft-data";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}
const std::string kBom = "\xEF\xBB\xBF";
}  // namespace

// Windows editors and Excel save UTF-8 with a byte-order mark; the first record (or header) must
// read as if it were not there.
TEST(FinetuneData, Utf8BomIsAccepted) {
  const std::string jsonl =
      "{\"question\": \"is it\", \"passage\": \"It is.\", \"answer\": true}\n";
  TaskFile j = read_task_file(task_info("boolq"), temp_file("bom.jsonl", kBom + jsonl));
  ASSERT_EQ(j.examples.size(), 1u);
  EXPECT_EQ(j.examples[0].text_a, "It is.");
  EXPECT_EQ(j.examples[0].label, 1);
  TaskFile t = read_task_file(task_info("sst2"),
                              temp_file("bom.tsv", kBom + "sentence\tlabel\na fine film \t1\n"));
  ASSERT_EQ(t.examples.size(), 1u);
  EXPECT_EQ(t.examples[0].text_a, "a fine film ");
  EXPECT_EQ(t.examples[0].line, 2);
}

// A JSON number label is cast to an integer only when it is a whole number in range: converting
// 1e300 to int64 is undefined behaviour. Anything else is rejected naming the value and the line.
TEST(FinetuneData, OutOfRangeNumericLabelsAreRejectedByValue) {
  for (const char* label : {"1e300", "-1e300", "9.3e18", "9223372036854775808", "1.5"}) {
    const std::string path =
        temp_file("big-label.jsonl", "{\"sentence\": \"ok\", \"label\": 1}\n"
                                     "{\"sentence\": \"x\", \"label\": " + std::string(label) + "}\n");
    const std::string msg = error_of([&] { read_task_file(task_info("sst2"), path); });
    EXPECT_HAS(msg, path + ":2: label '");
    EXPECT_HAS(msg, "is not a sst2 label");
  }
  // whole numbers in range still work, in any spelling JSON allows
  const std::string ok = temp_file("ok-label.jsonl", "{\"sentence\": \"x\", \"label\": 1.0}\n"
                                                     "{\"sentence\": \"y\", \"label\": 0e5}\n");
  TaskFile f = read_task_file(task_info("sst2"), ok);
  ASSERT_EQ(f.examples.size(), 2u);
  EXPECT_EQ(f.examples[0].label, 1);
  EXPECT_EQ(f.examples[1].label, 0);
}

TEST(FinetuneData, EmptyAndHeaderOnlyFilesNameTheFile) {
  for (const std::string& content : {std::string(), std::string("\n \n\t\n"), kBom, kBom + "\n"}) {
    const std::string path = temp_file("empty.tsv", content);
    const std::string msg = error_of([&] { read_task_file(task_info("sst2"), path); });
    EXPECT_HAS(msg, path + " is empty");
  }
  for (const std::string& header : {std::string("sentence\tlabel\n"), kBom + "sentence\tlabel",
                                    std::string("sentence\tlabel\n\n\n")}) {
    const std::string path = temp_file("header-only.tsv", header);
    const std::string msg = error_of([&] { read_task_file(task_info("sst2"), path); });
    EXPECT_HAS(msg, path + " has a header row (line 1) but no records");
  }
}

// ---- notes/design.md "Hardening": finetune finds its data (default files from --data-dir)
// -----------------------

namespace {
// A data folder laid out as ../shared/data (MANIFEST.md), holding the fixtures as its task files;
// SST-2's train file is the compressed one, as there.
std::string fixture_data_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("moe-gpt-ft-datadir-" + name);
  fs::remove_all(dir);
  for (const char* task : {"sst2", "mnli", "boolq"}) fs::create_directories(dir / task);
  fs::copy_file(kDir + "sst2.tsv.xz", dir / "sst2/train.tsv.xz");
  fs::copy_file(kDir + "sst2.tsv", dir / "sst2/dev.tsv");
  fs::copy_file(kDir + "mnli_multinli.jsonl", dir / "mnli/dev_mismatched.jsonl");
  fs::copy_file(kDir + "mnli.jsonl", dir / "mnli/dev_matched.jsonl");
  return dir.string();
}

std::string all_notes(const FinetuneData& d) {
  std::string all;
  for (const std::string& n : d.notes) all += n + "\n";
  return all;
}
}  // namespace

TEST(PrepareTaskData, DefaultFilesFromTheDataFolder) {
  const std::string data = fixture_data_dir("defaults");
  FinetuneDataConfig c;
  c.task = "sst2";
  c.data_dir = data;
  FinetuneData d = prepare_task_data(c);
  EXPECT_EQ(d.used.train_file, data + "/sst2/train.tsv.xz");  // found in its compressed form
  EXPECT_EQ(d.used.dev_file, data + "/sst2/dev.tsv");
  EXPECT_EQ(d.train.size(), 4u);
  EXPECT_EQ(d.dev.size(), 4u);
  EXPECT_HAS(all_notes(d), "reading the data folder (--data-dir " + data + ")");
  // MNLI: trains on dev_mismatched, scores dev_matched, and says so
  c.task = "mnli";
  d = prepare_task_data(c);
  EXPECT_EQ(d.used.train_file, data + "/mnli/dev_mismatched.jsonl");
  EXPECT_EQ(d.used.dev_file, data + "/mnli/dev_matched.jsonl");
  EXPECT_EQ(d.train.size(), 3u);
  EXPECT_HAS(all_notes(d), "training on dev_mismatched");
  // Files given on the command line win: one file alone gets no default partner.
  c.task = "sst2";
  c.train_file = kDir + "sst2.tsv";
  EXPECT_HAS(error_of([&] { prepare_task_data(c); }), "needs --train-file and --dev-file");
  // A carve of SST-2 needs the one file named: no defaults, the carve rule explains.
  c.train_file.clear();
  c.carve_train = 2;
  EXPECT_HAS(error_of([&] { prepare_task_data(c); }), "neither --train-file nor --dev-file");
}

TEST(PrepareTaskData, BoolqCarvesItsTrainPartByDefault) {
  const std::string data = fixture_data_dir("boolq");
  {
    std::ofstream out(data + "/boolq/dev.jsonl");
    for (int i = 0; i < kBoolqDefaultCarve + 30; ++i)
      out << "{\"question\": \"q" << i << "\", \"passage\": \"p\", \"answer\": "
          << (i % 3 ? "true" : "false") << "}\n";
  }
  FinetuneDataConfig c;
  c.task = "boolq";
  c.data_dir = data;
  FinetuneData d = prepare_task_data(c);
  EXPECT_EQ(static_cast<int64_t>(d.train.size()), kBoolqDefaultCarve);
  EXPECT_EQ(d.dev.size(), 30u);
  EXPECT_EQ(d.used.carve_train, kBoolqDefaultCarve);
  EXPECT_EQ(d.carve_from, data + "/boolq/dev.jsonl");
  EXPECT_HAS(all_notes(d), "(the default when no file is given)");
  c.carve_train = 100;  // a --carve-train of the user's own is kept
  d = prepare_task_data(c);
  EXPECT_EQ(d.train.size(), 100u);
  EXPECT_EQ(all_notes(d).find("the default when no file is given"), std::string::npos);
}

TEST(PrepareTaskData, AMissingDefaultFileNamesItAndTheDataDir) {
  const std::string data =
      (std::filesystem::temp_directory_path() / "moe-gpt-ft-datadir-empty").string();
  std::filesystem::create_directories(data);
  FinetuneDataConfig c;
  c.data_dir = data;
  c.task = "sst2";
  std::string msg = error_of([&] { prepare_task_data(c); });
  EXPECT_HAS(msg, data + "/sst2/train.tsv");
  EXPECT_HAS(msg, "--data-dir " + data);
  EXPECT_HAS(msg, "--train-file");
  c.task = "boolq";
  msg = error_of([&] { prepare_task_data(c); });
  EXPECT_HAS(msg, data + "/boolq/dev.jsonl");
  EXPECT_HAS(msg, "--carve-train 2270");
}
