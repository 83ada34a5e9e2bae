// corpus.h — from text files on disk to one token stream, with a binary token cache (SPEC §5).
//
// A corpus is a file or a directory of text files, plain or xz-compressed (read through
// io/text_io.h, the one text reader of the three programs; a UTF-8 BOM is dropped). Each file is
// encoded with
// BpeTokenizer::encode_document (every line ends in </s>, an empty line adds an extra </s>), and
// the files are concatenated in sorted path order. A file boundary counts as a document boundary:
// if a file does not already end with an empty line, one </s> is appended so that the stream
// reads as if the files had been joined with a blank line in between.
//
// Encoding ~100 MB of text takes a while, so the result is kept in a cache file and reused as
// long as both the tokenizer and the source files (paths, sizes, modification times) are the
// same. Cache format (all integers little-endian):
//   offset  0  char[8]   magic "MOETOK1\0"
//   offset  8  uint32    format version (1)
//   offset 12  uint32    header_bytes (48; the tokens start here)
//   offset 16  char[16]  tokenizer fingerprint (BpeTokenizer::fingerprint(), NUL-padded)
//   offset 32  uint64    token count N
//   offset 40  uint64    source fingerprint (source_fingerprint() below)
//   offset 48  int32[N]  tokens
// The file is written to a temporary name and renamed, so a crash never leaves a half-written
// cache under the real name; a cache that is nevertheless truncated or stale is rebuilt, with the
// reason logged.
//
// Left out: other compressions (.gz, .bz2), memory-mapping the cache (it is read into a vector;
// 30M tokens are 120 MB), sharding the cache across ranks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/bpe.h"

namespace moe {

// Receives one human-readable line (no trailing newline). An empty function means "be quiet".
using LogFn = std::function<void(const std::string&)>;

// A file -> {file}, whatever its name (the user chose it; `.xz` is decompressed). A directory ->
// its `*.txt` and `*.txt.xz` files, recursively, sorted by path, skipping hidden files and
// directories (names starting with '.'), empty files, and FILE.txt.xz when FILE.txt sits next to
// it (the decompressed twin is used). Other files (an index.tsv, a README) are not text of the
// corpus. Throws moe::Error (with a HINT) when the path is missing or unreadable, or when no
// non-empty text file is found.
std::vector<std::string> list_text_files(const std::string& path);
// The files of a listing for the log: every path when there are few, else the first and last few
// and how many lie between.
std::string describe_file_list(const std::vector<std::string>& files);

// 64-bit FNV-1a over each file's absolute path, size and modification time: changes when any
// file is edited, touched, added, removed or renamed.
uint64_t source_fingerprint(const std::vector<std::string>& files);

// Encode the files as described above, without any cache. Large files are encoded in pieces of
// about `chunk_bytes`, cut after a '\n' (lines are encoded independently, so the tokens are the
// same as in one piece); progress (MB encoded, MB/s) goes to `log` for inputs of 16 MB or more.
std::vector<int32_t> encode_text_files(const std::vector<std::string>& files,
                                       const BpeTokenizer& tokenizer, const LogFn& log = nullptr,
                                       size_t chunk_bytes = size_t(4) << 20);

struct TokenCacheResult {
  std::vector<int32_t> tokens;  // (N,) int32 token ids of the whole corpus
  bool rebuilt = false;         // false: the cache was read; true: the files were encoded
  std::string reason;           // why it was rebuilt, or "reused"
};

// The token stream of `files`, read from `cache_path` when it is up to date, otherwise encoded
// and written there (parent directories are created). An empty cache_path disables caching.
// Throws moe::Error if cache_path holds something that is not a token cache (we refuse to
// overwrite it), if the cache holds ids outside the tokenizer's vocabulary, or if the corpus
// encodes to no tokens at all.
TokenCacheResult load_or_build_token_cache(const std::vector<std::string>& files,
                                           const BpeTokenizer& tokenizer,
                                           const std::string& cache_path,
                                           const LogFn& log = nullptr);

// The two halves of the cache, exposed for tests and tools. write_token_cache is atomic.
void write_token_cache(const std::string& cache_path, const std::vector<int32_t>& tokens,
                       const std::string& tokenizer_fingerprint, uint64_t source_fp);

struct TokenCacheHeader {
  uint32_t version = 0;
  uint32_t header_bytes = 0;
  std::string tokenizer_fingerprint;  // up to 16 chars
  uint64_t num_tokens = 0;
  uint64_t source_fp = 0;
};

// Reads the header only. Returns false (and sets *why) if the file is missing or too short to
// hold a header; throws moe::Error if it exists but does not start with the magic.
bool read_token_cache_header(const std::string& cache_path, TokenCacheHeader* header,
                             std::string* why);

}  // namespace moe
