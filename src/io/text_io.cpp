// text_io.cpp — see text_io.h.
#include "io/text_io.h"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace moe {

void throw_bad_record(const std::string& where, const std::string& problem) {
  throw BadRecord(str_cat(where, ": malformed record: ", problem,
                          ". HINT: fix or remove that line, or pass --skip-bad to skip (and count) "
                          "such records"));
}

std::string where_str(const std::string& path, int64_t line) { return str_cat(path, ":", line); }

// Single quotes keep every byte literal for /bin/sh except the quote itself, written '\''.
static std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Reads at most `max_bytes` of the decompressed text. When it stops early it closes the pipe
// before xz is done, so xz dies of SIGPIPE: that exit is expected then, not an error.
static std::string read_xz(const std::string& path, size_t max_bytes) {
  const std::string cmd = "xz -dc -- " + shell_quote(path) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  CHECK(p != nullptr, "cannot start `xz` to read ", path,
        ". HINT: install xz-utils (scripts/install.sh), or decompress it yourself: xz -dk ", path);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while (out.size() < max_bytes &&
         (n = std::fread(buf, 1, std::min(sizeof buf, max_bytes - out.size()), p)) > 0)
    out.append(buf, n);
  const bool stopped_early = out.size() >= max_bytes;
  const int status = pclose(p);
  if (stopped_early) return out;
  const int code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  CHECK(code == 0, "`xz -dc ", path, "` failed (exit code ", code,
        code == 127 ? ": xz is not installed" : ": the file is not valid .xz, or is truncated",
        "). HINT: check it with `xz -t ", path, "`; install xz-utils with scripts/install.sh");
  return out;
}

std::string strip_utf8_bom(std::string text) {
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  return text;
}

std::string read_text_prefix(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  CHECK(fs::is_regular_file(path, ec), "cannot read '", path,
        "': no such file. HINT: check the path (relative paths start at the current folder)");
  // Three more bytes than asked, so a BOM does not shorten the text handed back.
  const size_t want = max_bytes > SIZE_MAX - 3 ? SIZE_MAX : max_bytes + 3;
  std::string text;
  if (str_ends_with(path, ".xz")) {
    text = read_xz(path, want);
  } else {
    std::ifstream in(path, std::ios::binary);
    CHECK(in.good(), "cannot open '", path, "' for reading. HINT: check its permissions");
    const uintmax_t size = fs::file_size(path, ec);
    text.resize(ec ? 0 : static_cast<size_t>(std::min<uintmax_t>(size, want)));
    in.read(&text[0], static_cast<std::streamsize>(text.size()));
    CHECK(!in.bad() && in.gcount() == static_cast<std::streamsize>(text.size()),
          "error while reading '", path, "' (", in.gcount(), " of ", text.size(),
          " bytes). HINT: is another program writing it?");
  }
  text = strip_utf8_bom(std::move(text));
  if (text.size() > max_bytes) text.resize(max_bytes);
  return text;
}

std::string read_text_file(const std::string& path) { return read_text_prefix(path, SIZE_MAX); }

std::string resolve_data_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (fs::is_regular_file(path + ".xz", ec)) return path + ".xz";
  CHECK(false, what, ": neither ", path, " nor ", path,
        ".xz exists. HINT: point --data-dir at the folder described by "
        "../shared/data/MANIFEST.md (default ../shared/data), or pass the file's own flag");
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text, start, stop - start);
    start = end + 1;
  }
  return lines;
}

std::vector<CsvRow> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string field;
  int64_t line = 1;
  bool in_quotes = false, row_has_data = false;
  int64_t quote_line = 0;
  auto end_row = [&] {
    if (row_has_data || !row.fields.empty() || !field.empty()) {
      row.fields.push_back(field);
      rows.push_back(row);
    }
    row = CsvRow{};
    field.clear();
    row_has_data = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (row.fields.empty() && field.empty() && !row_has_data) row.line = line;
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') { field.push_back('"'); ++i; }
      else if (c == '"') in_quotes = false;
      else { if (c == '\n') ++line; field.push_back(c); }
      continue;
    }
    if (c == '"') { in_quotes = true; row_has_data = true; quote_line = line; }
    else if (c == ',') { row.fields.push_back(field); field.clear(); row_has_data = true; }
    else if (c == '\n') { end_row(); ++line; }
    else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') { /* CRLF: the \n ends it */ }
    else { field.push_back(c); row_has_data = true; }
  }
  CHECK(!in_quotes, where_str(path, quote_line),
        ": a quoted CSV field is never closed. HINT: every '\"' that opens a field needs a "
        "closing '\"' (a quote inside a field is written \"\")");
  end_row();
  return rows;
}

// The message for a failed write: which file, the system's reason, and the likely cause.
static std::string write_failure(const std::string& file, int err) {
  return str_cat("cannot write '", file, "': ", err != 0 ? std::strerror(err) : "write error",
                 ". HINT: the disk may be full (check with df), or the folder not writable");
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  CHECK(f != nullptr, write_failure(tmp, errno));
  errno = 0;
  bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = std::fflush(f) == 0 && ok;
  const int err = errno;
  ok = std::fclose(f) == 0 && ok;  // close even after a failed write, so nothing leaks
  if (!ok) fs::remove(tmp, ec);    // no half-written or empty .tmp left behind
  CHECK(ok, write_failure(tmp, err));
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp);
  CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

void append_to_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  CHECK(f != nullptr, write_failure(path, errno));
  errno = 0;
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fflush(f) == 0 && ok;
  const int err = errno;
  ok = std::fclose(f) == 0 && ok;
  CHECK(ok, write_failure(path, err));
}

}  // namespace moe
