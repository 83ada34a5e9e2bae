// test_corpus.cpp — tests of corpus listing, encoding and the token cache (src/data/corpus.*,
// SPEC §5).
//
// Every test builds its own file tree under the system temp directory and removes it. The
// tokenizer is a small one trained here on synthetic text, so nothing outside the repository is
// read. Expected streams are derived by hand from the SPEC rule (each line ends in </s>, files are
// separated like documents) and compared through decode(), which turns </s> back into '\n'.
// Not checked: the speed of encoding (that is the tokenizer's business).
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/bpe.h"
#include "data/corpus.h"
#include "data/synthetic.h"
#include "test_util.h"

namespace moe {
using moe::testing::error_of;
using moe::testing::has;
namespace {
namespace fs = std::filesystem;

// A fresh directory under /tmp (or $TMPDIR), removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    const std::string name = "moe_corpus_test_" + std::to_string(rd()) + std::to_string(rd());
    path = fs::temp_directory_path() / name;
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& rel, const std::string& content) const {
    const fs::path p = path / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

const BpeTokenizer& small_tokenizer() {
  static const BpeTokenizer tok = BpeTokenizer::train(synthetic_corpus(1, 20000), 300);
  return tok;
}

TEST(Corpus, ADirectoryMeansItsTxtAndTxtXzFilesOnly) {
  TempDir d;
  d.file("b.txt", "bee\n");
  d.file("a.txt", "ay\n");
  d.file("sub/c.txt", "see\n");
  d.file("d.txt", "dee\n");
  d.file("d.txt.xz", "compressed twin of d.txt");  // skipped: d.txt is next to it
  d.file("e.txt.xz", "compressed, no twin");       // read through xz
  d.file(".hidden.txt", "secret\n");
  d.file(".git/x.txt", "inside a hidden directory\n");
  d.file("empty.txt", "");
  d.file("gutenberg.index.tsv", "id\ttitle\n1\tA book\n");  // not text of the corpus
  d.file("README.md", "# about these books\n");
  d.file("notes.txt.bak", "old\n");
  write_token_cache((d.path / "cache.bin").string(), {1, 2, 3}, "fp", 0);
  const std::vector<std::string> want = {(d.path / "a.txt").string(), (d.path / "b.txt").string(),
                                         (d.path / "d.txt").string(),
                                         (d.path / "e.txt.xz").string(),
                                         (d.path / "sub" / "c.txt").string()};
  EXPECT_EQ(list_text_files(d.path.string()), want);
  // A single file is returned as is, whatever its name: the user chose it.
  EXPECT_EQ(list_text_files(want[1]), std::vector<std::string>{want[1]});
  const std::string tsv = (d.path / "gutenberg.index.tsv").string();
  EXPECT_EQ(list_text_files(tsv), std::vector<std::string>{tsv});
  // The listing printed by train names every file, or the ends of a long list.
  EXPECT_TRUE(has(describe_file_list(want), want[3])) << describe_file_list(want);
  std::vector<std::string> many;
  for (int i = 0; i < 30; ++i) many.push_back("f" + std::to_string(100 + i) + ".txt");
  const std::string shown = describe_file_list(many);
  EXPECT_TRUE(has(shown, "f100.txt") && has(shown, "f129.txt") &&
              has(shown, "20 more") && !has(shown, "f115.txt"))
      << shown;
}

TEST(Corpus, ListingErrorsSayWhatToDo) {
  TempDir d;
  const std::string missing = (d.path / "nope").string();
  std::string msg = error_of([&] { list_text_files(missing); });
  EXPECT_TRUE(has(msg, missing) && has(msg, "does not exist") && has(msg, "HINT"))
      << msg;

  fs::create_directories(d.path / "empty_dir");
  d.file("empty_dir/.only_hidden", "x\n");
  d.file("empty_dir/index.tsv", "a\tb\n");
  msg = error_of([&] { list_text_files((d.path / "empty_dir").string()); });
  EXPECT_TRUE(has(msg, "no non-empty text file") && has(msg, "*.txt") &&
              has(msg, "HINT"))
      << msg;
}

// `text` xz-compressed into `path` with the system's xz (the reader decompresses with it too).
void write_xz(const std::string& path, const std::string& text) {
  const std::string plain = path + ".plain";
  std::ofstream(plain, std::ios::binary) << text;
  const std::string cmd = "xz -c '" + plain + "' > '" + path + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  fs::remove(plain);
}

TEST(Corpus, ReadsXzDirectlyAndDropsAByteOrderMark) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  const std::string text = "Mira found a red key.\nShe smiled.\n";
  const std::string plain = d.file("plain.txt", text);
  const std::string bom = d.file("bom.txt", "\xEF\xBB\xBF" + text);
  const std::string xz = (d.path / "packed.txt.xz").string();
  write_xz(xz, "\xEF\xBB\xBF" + text);
  const std::vector<int32_t> want = encode_text_files({plain}, tok);
  EXPECT_EQ(encode_text_files({bom}, tok), want);
  EXPECT_EQ(encode_text_files({xz}, tok), want);
  EXPECT_EQ(tok.decode(want), text + "\n");
}

TEST(Corpus, EncodesLinesWithEosAndSeparatesFiles) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  // Three endings: a newline, no newline, an empty line already present.
  const std::string a = d.file("a.txt", "ab\ncd\n\nef\n");
  const std::string b = d.file("b.txt", "x\ny");
  const std::string c = d.file("c.txt", "p q\n\n");
  const std::vector<int32_t> ids = encode_text_files({a, b, c}, tok);
  // decode() maps each </s> back to "\n": every line ends in one, and each file is followed by
  // an empty line unless it already ends in one.
  EXPECT_EQ(tok.decode(ids), "ab\ncd\n\nef\n\nx\ny\n\np q\n\n");
  int eos = 0;
  for (int32_t id : ids) eos += id == tok.eos_id();
  EXPECT_EQ(eos, 4 + 1 + 2 + 1 + 2);  // a: 4 lines + separator; b: 2 + 1 + separator; c: 2

  // Cutting the text into pieces (here every few bytes, always after a '\n') changes nothing.
  const std::string big = d.file("big.txt", synthetic_corpus(4, 5000));
  EXPECT_EQ(encode_text_files({big}, tok, nullptr, 7), encode_text_files({big}, tok));
  std::vector<int32_t> whole = tok.encode_document(synthetic_corpus(4, 5000));
  EXPECT_EQ(encode_text_files({big}, tok, nullptr, 7), whole);  // already ends in an empty line
}

TEST(Corpus, CacheIsWrittenReusedAndInvalidated) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  const std::string src = d.file("text/doc.txt", "Mira found a red key.\nShe smiled.\n");
  const std::string cache = (d.path / "cache" / "doc.tok").string();  // parent dir created
  std::vector<std::string> log;
  const LogFn to_log = [&log](const std::string& s) { log.push_back(s); };

  TokenCacheResult r1 = load_or_build_token_cache({src}, tok, cache, to_log);
  EXPECT_TRUE(r1.rebuilt);
  EXPECT_EQ(r1.reason, "no cache file yet");
  EXPECT_EQ(tok.decode(r1.tokens), "Mira found a red key.\nShe smiled.\n\n");
  ASSERT_TRUE(fs::exists(cache));
  EXPECT_EQ(fs::file_size(cache), 48 + 4 * r1.tokens.size());
  ASSERT_FALSE(log.empty());
  EXPECT_TRUE(has(log[0], "building (no cache file yet)")) << log[0];

  // Reuse: patch the first cached token and see the patched value come back, which proves the
  // second call read the file instead of encoding again.
  const int32_t patched = tok.eos_id();
  ASSERT_NE(r1.tokens[0], patched);
  {
    std::fstream f(cache, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(48);
    f.write(reinterpret_cast<const char*>(&patched), 4);
  }
  TokenCacheResult r2 = load_or_build_token_cache({src}, tok, cache, to_log);
  EXPECT_FALSE(r2.rebuilt);
  EXPECT_EQ(r2.reason, "reused");
  EXPECT_EQ(r2.tokens[0], patched);
  EXPECT_EQ(std::vector<int32_t>(r2.tokens.begin() + 1, r2.tokens.end()),
            std::vector<int32_t>(r1.tokens.begin() + 1, r1.tokens.end()));

  // Editing the source (new size) invalidates it.
  d.file("text/doc.txt", "Ben walked home.\n");
  TokenCacheResult r3 = load_or_build_token_cache({src}, tok, cache);
  EXPECT_TRUE(r3.rebuilt);
  EXPECT_TRUE(has(r3.reason, "source files changed")) << r3.reason;
  EXPECT_EQ(tok.decode(r3.tokens), "Ben walked home.\n\n");

  // Touching it (same size and bytes, new modification time) invalidates it too.
  fs::last_write_time(src, fs::last_write_time(src) + std::chrono::seconds(5));
  EXPECT_TRUE(load_or_build_token_cache({src}, tok, cache).rebuilt);
  EXPECT_FALSE(load_or_build_token_cache({src}, tok, cache).rebuilt);

  // Another tokenizer invalidates it.
  const BpeTokenizer other = BpeTokenizer::train(synthetic_corpus(1, 20000), 290);
  ASSERT_NE(other.fingerprint(), tok.fingerprint());
  TokenCacheResult r4 = load_or_build_token_cache({src}, other, cache);
  EXPECT_TRUE(r4.rebuilt);
  EXPECT_TRUE(has(r4.reason, "tokenizer changed")) << r4.reason;
  EXPECT_FALSE(load_or_build_token_cache({src}, other, cache).rebuilt);

  // No temporary file is left next to the cache.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(fs::path(cache).parent_path())) (void)e, ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Corpus, TruncatedCacheIsRebuilt) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  const std::string src = d.file("doc.txt", "1 + 2 = 3\n4 + 5 = 9\n");
  const std::string cache = (d.path / "doc.tok").string();
  const std::vector<int32_t> want = load_or_build_token_cache({src}, tok, cache).tokens;

  fs::resize_file(cache, fs::file_size(cache) - 4);  // lose the last token
  TokenCacheResult r = load_or_build_token_cache({src}, tok, cache);
  EXPECT_TRUE(r.rebuilt);
  EXPECT_TRUE(has(r.reason, "truncated or corrupt")) << r.reason;
  EXPECT_EQ(r.tokens, want);

  fs::resize_file(cache, 20);  // shorter than the header
  r = load_or_build_token_cache({src}, tok, cache);
  EXPECT_TRUE(r.rebuilt);
  EXPECT_TRUE(has(r.reason, "truncated")) << r.reason;
  EXPECT_EQ(r.tokens, want);
  EXPECT_FALSE(load_or_build_token_cache({src}, tok, cache).rebuilt);  // healthy again
}

TEST(Corpus, CacheErrors) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  const std::string src = d.file("doc.txt", "some text\n");

  // A file that is not a cache is never overwritten.
  const std::string foreign = d.file("notes.txt", "my precious notes, not a cache\n");
  std::string msg = error_of([&] { load_or_build_token_cache({src}, tok, foreign); });
  EXPECT_TRUE(has(msg, "refusing to overwrite") && has(msg, foreign)) << msg;
  std::ifstream in(foreign);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}),
            "my precious notes, not a cache\n");

  // Ids outside the vocabulary are an error, not silently fed to the model.
  const std::string cache = (d.path / "bad.tok").string();
  write_token_cache(cache, {0, 1, tok.vocab_size() + 5}, tok.fingerprint(),
                    source_fingerprint({src}));
  msg = error_of([&] { load_or_build_token_cache({src}, tok, cache); });
  EXPECT_TRUE(has(msg, "outside the tokenizer's vocabulary") && has(msg, "delete"))
      << msg;

  // A corpus with no tokens at all names the file.
  const std::string empty = d.file("empty.txt", "");
  msg = error_of([&] { load_or_build_token_cache({empty}, tok, ""); });
  EXPECT_TRUE(has(msg, empty) && has(msg, "no tokens")) << msg;
}

// While alive, files of this process cannot grow past `bytes` (RLIMIT_FSIZE): every write beyond
// fails with EFBIG, as on a full disk (SIGXFSZ is ignored so the write returns the error).
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = SIG_DFL;
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old;
    lim.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
};

TEST(Corpus, FullDiskWhileWritingTheCacheNamesItAndLeavesNothing) {
  TempDir d;
  const BpeTokenizer& tok = small_tokenizer();
  const std::string src = d.file("doc.txt", synthetic_corpus(3, 200000));
  const std::string cache = (d.path / "cache" / "doc.tok").string();
  std::string msg;
  {
    FileSizeLimit full(16 << 10);  // the cache needs far more than 16 KiB
    msg = error_of([&] { load_or_build_token_cache({src}, tok, cache); });
  }
  EXPECT_TRUE(has(msg, cache) && has(msg, "disk may be full")) << msg;
  EXPECT_FALSE(fs::exists(cache));
  int entries = 0;  // no .tmp-* file left next to where the cache would be
  for (const auto& e : fs::directory_iterator(fs::path(cache).parent_path())) (void)e, ++entries;
  EXPECT_EQ(entries, 0);
  EXPECT_TRUE(load_or_build_token_cache({src}, tok, cache).rebuilt);  // fine once there is room
  EXPECT_TRUE(fs::exists(cache));
}

}  // namespace
}  // namespace moe
