// test_data_check.cpp — every evaluation file of the shared data folder parses, strictly, with
// its official count (src/eval/check_data.h; counts from ../shared/data/MANIFEST.md). Runs when
// ../shared/data exists (relative to the repository root, where the tests run) and skips, saying
// so, otherwise. The same check runs alone as `./eval --check-data ../shared/data`.
#include <gtest/gtest.h>

#include <filesystem>

#include "eval/check_data.h"

namespace moe {
namespace {

TEST(EvalDataCheck, EveryEvaluationFileParsesWithItsOfficialCount) {
  const std::string dir = "../shared/data";
  if (!std::filesystem::exists(dir + "/MANIFEST.md"))
    GTEST_SKIP() << dir << " is not here; the data check needs the shared data folder";
  const std::vector<DataCheck> checks = check_data(dir);
  EXPECT_EQ(checks.size(), 20u);
  for (const DataCheck& c : checks)
    EXPECT_TRUE(c.ok) << c.what << " (" << c.file << "): expected " << c.expected << " "
                      << c.unit << ", found " << c.found << " " << c.error;
}

TEST(EvalDataCheck, AMissingFolderFailsEveryCheckWithoutThrowing) {
  const std::vector<DataCheck> checks = check_data("tests/fixtures/eval/no-such-folder");
  for (const DataCheck& c : checks) {
    EXPECT_FALSE(c.ok);
    EXPECT_NE(c.error.find("neither"), std::string::npos) << c.error;
  }
}

}  // namespace
}  // namespace moe
