// check_data.cpp — see check_data.h.
#include "eval/check_data.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>

#include "core/check.h"
#include "eval/readers.h"
#include "io/text_io.h"

namespace moe {

namespace {

using Counter = std::function<int64_t(const std::string& file, const std::string& dir)>;

struct RecordSpec {
  const char* what;
  const char* rel;  // path under the data folder (the reader takes the .xz twin if needed)
  int64_t expected;
  Counter count;
};

struct CorpusSpec {
  const char* what;
  const char* rel;
  int64_t bytes, lines;  // decompressed, from MANIFEST.md's table
};

ReadOptions strict() { return ReadOptions{}; }

Counter winogrande(const std::string& split) {
  return [split](const std::string& f, const std::string& dir) {
    ReadStats s;
    return static_cast<int64_t>(
        read_winogrande(f, dir + "/winogrande/" + split + "-labels.lst", strict(), &s).size());
  };
}

Counter piqa(const std::string& split) {
  return [split](const std::string& f, const std::string& dir) {
    ReadStats s;
    return static_cast<int64_t>(
        read_piqa(f, dir + "/piqa/" + split + "-labels.lst", strict(), &s).size());
  };
}

const Counter kHellaSwag = [](const std::string& f, const std::string&) {
  ReadStats s;
  return static_cast<int64_t>(read_hellaswag(f, strict(), &s).size());
};
const Counter kStoryCloze = [](const std::string& f, const std::string&) {
  ReadStats s;
  return static_cast<int64_t>(read_storycloze(f, strict(), &s).size());
};
const Counter kOpenBookQA = [](const std::string& f, const std::string&) {
  ReadStats s;
  return static_cast<int64_t>(read_openbookqa(f, strict(), &s).size());
};

std::vector<RecordSpec> record_specs() {
  return {
      {"HellaSwag val", "hellaswag/hellaswag_val_full.txt", 10042, kHellaSwag},
      {"PIQA valid", "piqa/valid.jsonl", 1838, piqa("valid")},
      {"PIQA train", "piqa/train.jsonl", 16113, piqa("train")},
      {"WinoGrande dev", "winogrande/dev.jsonl", 1267, winogrande("dev")},
      {"WinoGrande train_xs", "winogrande/train_xs.jsonl", 160, winogrande("train_xs")},
      {"WinoGrande train_s", "winogrande/train_s.jsonl", 640, winogrande("train_s")},
      {"WinoGrande train_m", "winogrande/train_m.jsonl", 2558, winogrande("train_m")},
      {"WinoGrande train_l", "winogrande/train_l.jsonl", 10234, winogrande("train_l")},
      {"WinoGrande train_xl", "winogrande/train_xl.jsonl", 40398, winogrande("train_xl")},
      {"StoryCloze val", "storycloze/cloze_test_val__spring2016.csv", 1871, kStoryCloze},
      {"StoryCloze test", "storycloze/cloze_test_test__spring2016.csv", 1871, kStoryCloze},
      {"OpenBookQA dev", "openbookqa/dev.jsonl", 500, kOpenBookQA},
      {"OpenBookQA test", "openbookqa/test.jsonl", 500, kOpenBookQA},
      {"OpenBookQA train", "openbookqa/train.jsonl", 4957, kOpenBookQA},
  };
}

const CorpusSpec kCorpora[] = {
    {"Gutenberg valid (in-domain)", "gutenberg/gutenberg.valid.txt", 3005481, 67157},
    {"Gutenberg test (in-domain)", "gutenberg/gutenberg.test.txt", 3074198, 60184},
    {"WikiText-2 raw test", "wikitext2/wiki.test.raw.hf_joined.txt", 1296370, 11605},
    {"WikiText-2 tokens valid", "wikitext2/wiki.valid.tokens", 1121681, 3760},
    {"WikiText-2 tokens test", "wikitext2/wiki.test.tokens", 1256449, 4358},
    {"Reuters-21578 bodies", "reuters21578/reuters21578_bodies.txt", 4747377, 100177},
};

}  // namespace

std::vector<DataCheck> check_data(const std::string& dir) {
  std::vector<DataCheck> out;
  for (const RecordSpec& s : record_specs()) {
    DataCheck c{s.what, dir + "/" + s.rel, "records", std::to_string(s.expected), "-", false, ""};
    try {
      c.file = resolve_data_file(c.file, s.what);
      const int64_t n = s.count(c.file, dir);
      c.found = std::to_string(n);
      c.ok = n == s.expected;
    } catch (const Error& e) {
      c.error = e.what();
    }
    out.push_back(c);
  }
  for (const CorpusSpec& s : kCorpora) {
    DataCheck c{s.what, dir + "/" + s.rel, "bytes, lines", str_cat(s.bytes, ", ", s.lines), "-",
                false, ""};
    try {
      c.file = resolve_data_file(c.file, s.what);
      const std::string text = read_text_file(c.file);
      const int64_t lines = std::count(text.begin(), text.end(), '\n');  // as `wc -l` counts
      c.found = str_cat(text.size(), ", ", lines);
      c.ok = static_cast<int64_t>(text.size()) == s.bytes && lines == s.lines;
    } catch (const Error& e) {
      c.error = e.what();
    }
    out.push_back(c);
  }
  return out;
}

int print_data_checks(const std::vector<DataCheck>& checks) {
  int failed = 0;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-30s %-14s %-20s %-20s %s\n", "data", "unit", "expected",
                "found", "result");
  std::cout << buf << std::string(96, '-') << "\n";
  for (const DataCheck& c : checks) {
    std::snprintf(buf, sizeof buf, "%-30s %-14s %-20s %-20s %s\n", c.what.c_str(), c.unit.c_str(),
                  c.expected.c_str(), c.found.c_str(), c.ok ? "ok" : "FAILED");
    std::cout << buf;
    if (!c.error.empty()) std::cout << "    " << c.error << "\n";
    failed += c.ok ? 0 : 1;
  }
  std::cout << (failed ? str_cat(failed, " of ", checks.size(), " checks FAILED")
                       : str_cat("all ", checks.size(), " checks passed"))
            << std::endl;
  return failed;
}

}  // namespace moe
