// check_data.h — `eval --check-data DIR`: does every evaluation file of the data folder parse, with
// its official count? (../shared/data/MANIFEST.md lists the files and counts.)
//
// Priming files are read with the task readers in strict mode (no --skip-bad), so one malformed
// record fails the check with its FILE:LINE; the count of records must equal the official split
// size (HellaSwag val 10,042; PIQA valid 1,838 / train 16,113; WinoGrande dev 1,267 and train
// xs/s/m/l/xl 160/640/2,558/10,234/40,398; StoryCloze val/test 1,871 each; OpenBookQA
// dev/test/train 500/500/4,957). Perplexity corpora are checked by decompressed bytes and lines
// as MANIFEST.md states them. The same list drives a GoogleTest (tests/eval/test_data_check.cpp).
//
// Left out: sha256 of the stored files (no hash library; the byte and line counts catch a
// truncated or wrong file), the fine-tuning sets (finetune's business), ReCoRD (not in the folder).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct DataCheck {
  std::string what;        // "PIQA valid"
  std::string file;        // path checked (the .xz twin when that is what exists)
  std::string unit;        // "records" or "bytes, lines"
  std::string expected, found;
  bool ok = false;
  std::string error;       // the reader's message when it failed
};

// Run every check on `dir`; never throws for a bad file (it becomes a failed check).
std::vector<DataCheck> check_data(const std::string& dir);
// Print the checks as a table; returns the number of failures.
int print_data_checks(const std::vector<DataCheck>& checks);

}  // namespace moe
