// corpus.cpp — corpus file listing, chunked encoding with progress, and the token cache
// (SPEC §5; the cache format is documented in corpus.h).
//
// Left out: memory-mapping, parallel encoding (the tokenizer is the bottleneck and runs on one
// thread; the cache makes that a one-time cost).
#include "data/corpus.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <system_error>

#include "core/check.h"
#include "io/text_io.h"

namespace moe {
namespace fs = std::filesystem;

namespace {

const char kMagic[8] = {'M', 'O', 'E', 'T', 'O', 'K', '1', '\0'};
const uint32_t kVersion = 1;
const uint32_t kHeaderBytes = 48;
const size_t kFingerprintChars = 16;

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// What a directory contributes: text files only, so that an index, a README or a token cache
// lying next to the books is never trained on.
bool is_corpus_name(const std::string& path) {
  return str_ends_with(path, ".txt") || str_ends_with(path, ".txt.xz");
}

// All regular *.txt / *.txt.xz files below `dir`, hidden entries pruned, in sorted path order.
std::vector<fs::path> walk_directory(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  CHECK(!ec, "cannot read corpus directory ", dir.string(), ": ", ec.message(),
        ". HINT: check the path and its permissions");
  for (; it != end; it.increment(ec)) {
    CHECK(!ec, "cannot read corpus directory ", dir.string(), ": ", ec.message(),
          ". HINT: check the permissions of the files below it");
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && is_corpus_name(it->path().string())) found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

std::vector<std::string> list_text_files(const std::string& path) {
  const fs::path root(path);
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  CHECK(fs::exists(st), "corpus path ", path,
        " does not exist. HINT: check the spelling, or pass a text file or a directory of them");
  std::vector<fs::path> candidates;
  const bool is_dir = fs::is_directory(st);
  if (is_dir) {
    candidates = walk_directory(root);
  } else {
    CHECK(fs::is_regular_file(st), "corpus path ", path,
          " is neither a regular file nor a directory. HINT: pass a text file or a directory");
    candidates.push_back(root);
  }
  std::vector<std::string> files;
  for (const fs::path& p : candidates) {
    // FILE.txt.xz next to FILE.txt: the same text twice; the plain twin is read.
    if (is_dir && str_ends_with(p.string(), ".xz") && fs::exists(p.parent_path() / p.stem()))
      continue;
    std::ifstream probe(p, std::ios::binary);
    CHECK(probe.good(), "cannot open corpus file ", p.string(),
          " for reading. HINT: check its permissions");
    if (fs::file_size(p, ec) == 0 || ec) continue;
    files.push_back(p.string());
  }
  CHECK(!files.empty(), "corpus path ", path, " contains no non-empty text file (",
        candidates.size(), " *.txt / *.txt.xz file(s) looked at; hidden and empty files are "
        "skipped). HINT: point it at a .txt or .txt.xz file or a directory of them");
  return files;
}

std::string describe_file_list(const std::vector<std::string>& files) {
  const size_t n = files.size(), head = 8, tail = 2;
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (n > head + tail && i == head) {
      out += str_cat("\n  ... ", n - head - tail, " more ...");
      i = n - tail;
    }
    out += (out.empty() ? "  " : "\n  ") + files[i];
  }
  return out;
}

uint64_t source_fingerprint(const std::vector<std::string>& files) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a offset basis
  auto mix = [&h](const void* data, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;  // FNV-1a prime
  };
  for (const std::string& f : files) {
    std::error_code ec;
    const std::string abs = fs::absolute(f, ec).lexically_normal().string();
    const uint64_t size = static_cast<uint64_t>(fs::file_size(f, ec));
    const int64_t mtime =
        static_cast<int64_t>(fs::last_write_time(f, ec).time_since_epoch().count());
    mix(abs.data(), abs.size() + 1);  // +1: the NUL keeps "ab"+"c" apart from "a"+"bc"
    mix(&size, sizeof(size));
    mix(&mtime, sizeof(mtime));
  }
  return h;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string megabytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", bytes / 1e6);
  return buf;
}

// Progress of one encode_text_files call; prints at most every 2 s, and only for big inputs.
struct Progress {
  const LogFn& log;
  double total_bytes;
  double done_bytes = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double last_print = 0;

  void advance(size_t bytes) {
    done_bytes += static_cast<double>(bytes);
    const double t = seconds_since(start);
    if (!log || total_bytes < 16e6 || t - last_print < 2.0) return;
    last_print = t;
    log(str_cat("  encoded ", megabytes(done_bytes), " of ", megabytes(total_bytes), " (",
                megabytes(done_bytes / std::max(t, 1e-9)), "/s)"));
  }
};

// Encode one file's text piece by piece; each piece but the last ends just after a '\n'.
void encode_in_chunks(const std::string& text, const BpeTokenizer& tokenizer, size_t chunk_bytes,
                      Progress& progress, std::vector<int32_t>& out) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.size();
    if (end - begin > chunk_bytes) {
      size_t nl = text.rfind('\n', begin + chunk_bytes - 1);    // last '\n' inside the piece
      if (nl == std::string::npos || nl < begin) nl = text.find('\n', begin + chunk_bytes);
      end = (nl == std::string::npos) ? text.size() : nl + 1;  // (a very long line stays whole)
    }
    const std::vector<int32_t> ids = tokenizer.encode_document(text.substr(begin, end - begin));
    out.insert(out.end(), ids.begin(), ids.end());
    progress.advance(end - begin);
    begin = end;
  }
}

}  // namespace

std::vector<int32_t> encode_text_files(const std::vector<std::string>& files,
                                       const BpeTokenizer& tokenizer, const LogFn& log,
                                       size_t chunk_bytes) {
  CHECK(chunk_bytes > 0, "encode_text_files: chunk_bytes must be positive. HINT: use the default");
  // Sizes on disk first; an .xz file's share becomes its text size once it is read, so the
  // progress total is exact for the file being encoded and an estimate for those after it.
  std::vector<double> disk(files.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::error_code ec;
    disk[i] = static_cast<double>(fs::file_size(files[i], ec));
    total += disk[i];
  }
  Progress progress{log, total};
  const int32_t eos = tokenizer.eos_id();
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string text = read_text_file(files[i]);  // .xz decompressed, BOM dropped
    progress.total_bytes += static_cast<double>(text.size()) - disk[i];
    if (text.empty()) continue;
    encode_in_chunks(text, tokenizer, chunk_bytes, progress, tokens);
    // A file ends a document: make the stream end in an empty line (</s></s>).
    size_t trailing = 0;
    while (trailing < 2 && trailing < tokens.size() && tokens[tokens.size() - 1 - trailing] == eos)
      ++trailing;
    tokens.insert(tokens.end(), 2 - trailing, eos);
  }
  if (log) {
    const double t = seconds_since(progress.start);
    const double text_bytes = progress.total_bytes;
    log(str_cat("encoded ", files.size(), " file(s), ", megabytes(text_bytes), " -> ",
                tokens.size(), " tokens in ", static_cast<int>(t * 10) / 10.0, " s (",
                megabytes(text_bytes / std::max(t, 1e-9)), "/s)"));
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// The token cache

namespace {

bool host_is_little_endian() {
  const uint32_t one = 1;
  unsigned char first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

void put_le(std::string& buf, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) buf.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

// A unique temporary name next to the target, so that two processes writing the same cache
// (e.g. several ranks) never interleave their bytes in one file.
std::string temp_name_for(const std::string& path) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), ".tmp-%08x%08x", rd(), rd());
  return path + suffix;
}

}  // namespace

void write_token_cache(const std::string& cache_path, const std::vector<int32_t>& tokens,
                       const std::string& tokenizer_fingerprint, uint64_t source_fp) {
  ASSERT_INTERNAL(host_is_little_endian(), "the token cache format assumes a little-endian host");
  std::string header(kMagic, sizeof(kMagic));
  put_le(header, kVersion, 4);
  put_le(header, kHeaderBytes, 4);
  std::string fp = tokenizer_fingerprint.substr(0, kFingerprintChars);
  fp.resize(kFingerprintChars, '\0');
  header += fp;
  put_le(header, tokens.size(), 8);
  put_le(header, source_fp, 8);
  ASSERT_INTERNAL(header.size() == kHeaderBytes);

  std::error_code ec;
  const fs::path parent = fs::path(cache_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  const std::string tmp = temp_name_for(cache_path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  CHECK(f != nullptr, "cannot create token cache file ", tmp, ": ", std::strerror(errno),
        ". HINT: check that --cache-dir is writable, or pass another one");
  // Every write is checked, and the close too (a full disk may only show there); on failure the
  // temporary is removed, so no empty or partial cache file is left behind.
  errno = 0;
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  ok = ok && std::fwrite(tokens.data(), sizeof(int32_t), tokens.size(), f) == tokens.size();
  ok = std::fflush(f) == 0 && ok;
  const int err = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) fs::remove(tmp, ec);
  CHECK(ok, "cannot write the token cache ", cache_path, " (writing ", tmp, " failed: ",
        err != 0 ? std::strerror(err) : "write error", "). HINT: the disk may be full (check "
        "with df); nothing was left behind, and --cache-dir can point elsewhere");
  fs::rename(tmp, cache_path, ec);
  if (ec) fs::remove(tmp, ec);
  CHECK(!ec, "cannot rename ", tmp, " to ", cache_path, ": ", ec.message(),
        ". HINT: check permissions of the cache directory");
}

bool read_token_cache_header(const std::string& cache_path, TokenCacheHeader* header,
                             std::string* why) {
  std::ifstream in(cache_path, std::ios::binary);
  if (!in.good()) {
    *why = "no cache file yet";
    return false;
  }
  char buf[kHeaderBytes];
  in.read(buf, kHeaderBytes);
  const std::streamsize got = in.gcount();
  const bool magic_ok = got >= 8 && std::memcmp(buf, kMagic, sizeof(kMagic)) == 0;
  // Anything that starts with our magic, or is too short to tell, is ours to rebuild; anything
  // else is some other file, which we refuse to overwrite.
  CHECK(magic_ok || got < 8, "token cache path ", cache_path,
        " holds a file that is not a moe-gpt token cache (no MOETOK1 magic); refusing to "
        "overwrite it. HINT: pass another cache path, or delete that file");
  if (got < static_cast<std::streamsize>(kHeaderBytes)) {
    *why = str_cat("cache file is truncated (", got, " bytes, shorter than its ", kHeaderBytes,
                   "-byte header)");
    return false;
  }
  header->version = static_cast<uint32_t>(get_le(buf + 8, 4));
  header->header_bytes = static_cast<uint32_t>(get_le(buf + 12, 4));
  const char* fp = buf + 16;
  header->tokenizer_fingerprint = std::string(fp, std::find(fp, fp + kFingerprintChars, '\0'));
  header->num_tokens = get_le(buf + 32, 8);
  header->source_fp = get_le(buf + 40, 8);
  return true;
}

namespace {

// Reads the tokens of a cache whose header was accepted. Returns false with a reason when the
// file size disagrees with the header (truncated or corrupt).
bool read_cached_tokens(const std::string& path, const TokenCacheHeader& h,
                        std::vector<int32_t>* tokens, std::string* why) {
  std::error_code ec;
  const uint64_t size = static_cast<uint64_t>(fs::file_size(path, ec));
  const uint64_t expected = h.header_bytes + h.num_tokens * sizeof(int32_t);
  if (ec || h.header_bytes < kHeaderBytes || size != expected) {
    *why = str_cat("cache file is truncated or corrupt (", size, " bytes, header says ", expected,
                   ")");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  in.seekg(h.header_bytes);
  tokens->resize(static_cast<size_t>(h.num_tokens));
  in.read(reinterpret_cast<char*>(tokens->data()),
          static_cast<std::streamsize>(tokens->size() * sizeof(int32_t)));
  if (in.gcount() != static_cast<std::streamsize>(tokens->size() * sizeof(int32_t))) {
    *why = "short read from the cache file";
    return false;
  }
  return true;
}

// The reason the cache at `path` cannot be used, or "" when `tokens` now holds its contents.
std::string try_load_cache(const std::string& path, const std::string& tokenizer_fp,
                           uint64_t source_fp, std::vector<int32_t>* tokens) {
  TokenCacheHeader h;
  std::string why;
  if (!read_token_cache_header(path, &h, &why)) return why;
  if (h.version != kVersion) {
    return str_cat("cache format version ", h.version, ", expected ", kVersion);
  }
  if (h.tokenizer_fingerprint != tokenizer_fp) {
    return str_cat("tokenizer changed (cache ", h.tokenizer_fingerprint, ", now ", tokenizer_fp,
                   ")");
  }
  if (h.source_fp != source_fp) return "source files changed (paths, sizes or modification times)";
  if (!read_cached_tokens(path, h, tokens, &why)) return why;
  return "";
}

}  // namespace

TokenCacheResult load_or_build_token_cache(const std::vector<std::string>& files,
                                           const BpeTokenizer& tokenizer,
                                           const std::string& cache_path, const LogFn& log) {
  CHECK(!files.empty(), "load_or_build_token_cache: no input files. HINT: use list_text_files()");
  const std::string name = cache_path.empty() ? files[0] : cache_path;
  const std::string tok_fp = tokenizer.fingerprint().substr(0, kFingerprintChars);
  const uint64_t src_fp = source_fingerprint(files);
  TokenCacheResult r;
  r.reason = cache_path.empty() ? "no cache path given"
                                : try_load_cache(cache_path, tok_fp, src_fp, &r.tokens);
  if (r.reason.empty()) {
    r.reason = "reused";
    const int vocab = tokenizer.vocab_size();
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      CHECK(r.tokens[i] >= 0 && r.tokens[i] < vocab, "token cache ", cache_path, " holds token id ",
            r.tokens[i], " at position ", i, ", outside the tokenizer's vocabulary of ", vocab,
            ". HINT: delete ", cache_path, " and it will be rebuilt");
    }
    if (log) log(str_cat("token cache ", cache_path, ": reused, ", r.tokens.size(), " tokens"));
  } else {
    if (log) log(str_cat("token cache ", name, ": building (", r.reason, ")"));
    r.tokens = encode_text_files(files, tokenizer, log);
    r.rebuilt = true;
  }
  CHECK(!r.tokens.empty(), "corpus ", files[0], (files.size() > 1 ? " (and others)" : ""),
        " encodes to no tokens. HINT: check that the files contain text");
  if (r.rebuilt && !cache_path.empty()) {
    write_token_cache(cache_path, r.tokens, tok_fp, src_fp);
    if (log) log(str_cat("token cache ", cache_path, ": wrote ", r.tokens.size(), " tokens"));
  }
  return r;
}

}  // namespace moe
