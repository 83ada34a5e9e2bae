// test_text_io.cpp — the one text reader and the checked writers of io/text_io.h (notes/design.md
// "Hardening"): a UTF-8 BOM is dropped from every text file, plain or .xz; a prefix of an .xz file
// is read without decompressing the rest; a write that fails (a full disk, simulated with /dev/full)
// names the file, says the disk may be full, and leaves no .tmp file and no damaged target.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/check.h"
#include "io/text_io.h"
#include "test_util.h"

namespace moe {
using moe::testing::error_of;
using moe::testing::has;
namespace {
namespace fs = std::filesystem;

const std::string kBom = "\xEF\xBB\xBF";

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("moe_text_io_test_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& content) const {
    const std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  // `content` xz-compressed into `name`, through the same xz the reader uses.
  std::string xz_file(const std::string& name, const std::string& content) const {
    const std::string plain = file(name + ".plain", content);
    const std::string out = (path / name).string();
    const std::string cmd = "xz -c '" + plain + "' > '" + out + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  }
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

TEST(TextIo, ByteOrderMarkIsDroppedFromPlainAndXzFiles) {
  TempDir d;
  const std::string text = "first line\nsecond \xEF\xBB\xBF stays inside\n";
  EXPECT_EQ(read_text_file(d.file("a.txt", kBom + text)), text);
  EXPECT_EQ(read_text_file(d.file("b.txt", text)), text);  // no BOM: unchanged
  EXPECT_EQ(read_text_file(d.xz_file("c.txt.xz", kBom + text)), text);
  EXPECT_EQ(read_text_prefix(d.file("d.txt", kBom + text), 5), text.substr(0, 5));
  EXPECT_EQ(read_text_file(d.file("only-bom.txt", kBom)), "");
  EXPECT_EQ(strip_utf8_bom(kBom + "x"), "x");
  EXPECT_EQ(strip_utf8_bom("\xEF\xBB"), "\xEF\xBB");  // not a whole BOM: kept
}

TEST(TextIo, PrefixOfAnXzFileStopsEarly) {
  TempDir d;
  std::string big;
  for (int i = 0; i < 200000; ++i) big += "line " + std::to_string(i) + "\n";
  const std::string xz = d.xz_file("big.txt.xz", big);
  EXPECT_EQ(read_text_prefix(xz, 1000), big.substr(0, 1000));  // xz killed early: no error
  EXPECT_EQ(read_text_prefix(xz, big.size() + 10), big);
  EXPECT_EQ(read_text_file(xz), big);
  const std::string broken = d.file("broken.txt.xz", "not xz at all");
  const std::string msg = error_of([&] { read_text_file(broken); });
  EXPECT_TRUE(has(msg, broken) && has(msg, "xz -t")) << msg;
}

TEST(TextIo, FailedAtomicWriteNamesTheFileAndLeavesNoTmp) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  TempDir d;
  const std::string target = d.file("results.json", "old and complete");
  // The temporary the writer creates is a link to /dev/full: every write to it fails (ENOSPC).
  fs::create_symlink("/dev/full", target + ".tmp");
  const std::string msg = error_of([&] { write_file_atomic(target, std::string(100000, 'x')); });
  EXPECT_TRUE(has(msg, target + ".tmp") && has(msg, "disk may be full")) << msg;
  EXPECT_FALSE(fs::exists(fs::symlink_status(target + ".tmp"))) << "the .tmp was left behind";
  EXPECT_EQ(read_all(target), "old and complete");
  // With a healthy disk the same call works.
  write_file_atomic(target, "new");
  EXPECT_EQ(read_all(target), "new");
  EXPECT_FALSE(fs::exists(target + ".tmp"));
}

TEST(TextIo, FailedAppendIsNoticedAtOnce) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  TempDir d;
  const std::string log = (d.path / "log.jsonl").string();
  append_to_file(log, "{\"step\":1}\n");
  append_to_file(log, "{\"step\":2}\n");
  EXPECT_EQ(read_all(log), "{\"step\":1}\n{\"step\":2}\n");
  const std::string full = (d.path / "full.jsonl").string();
  fs::create_symlink("/dev/full", full);
  const std::string msg = error_of([&] { append_to_file(full, "{\"step\":1}\n"); });
  EXPECT_TRUE(has(msg, full) && has(msg, "disk may be full")) << msg;
}

}  // namespace
}  // namespace moe
