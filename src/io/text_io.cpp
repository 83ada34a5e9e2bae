// text_io.cpp — see text_io.h.
#include "io/text_io.h"

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
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

bool str_ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Single quotes keep every byte literal for /bin/sh except the quote itself, written '\''.
static std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

static std::string read_xz(const std::string& path) {
  const std::string cmd = "xz -dc -- " + shell_quote(path) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  CHECK(p != nullptr, "cannot start `xz` to read ", path,
        ". HINT: install xz-utils (scripts/install.sh), or decompress it yourself: xz -dk ", path);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  const int code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  CHECK(code == 0, "`xz -dc ", path, "` failed (exit code ", code,
        code == 127 ? ": xz is not installed" : ": the file is not valid .xz, or is truncated",
        "). HINT: check it with `xz -t ", path, "`; install xz-utils with scripts/install.sh");
  return out;
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  CHECK(fs::is_regular_file(path, ec), "cannot read '", path,
        "': no such file. HINT: check the path (relative paths start at the current folder)");
  if (str_ends_with(path, ".xz")) return read_xz(path);
  std::ifstream in(path, std::ios::binary);
  CHECK(in.good(), "cannot open '", path, "' for reading. HINT: check its permissions");
  std::ostringstream ss;
  ss << in.rdbuf();
  CHECK(!in.bad(), "error while reading '", path, "'");
  return ss.str();
}

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

void write_file_atomic(const std::string& path, const std::string& content) {
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    CHECK(out.good(), "cannot write '", tmp, "'. HINT: check that the folder is writable");
    out << content;
    out.flush();
    CHECK(out.good(), "error while writing '", tmp, "' (disk full?)");
  }
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp);
  CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

std::string trim_ascii(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    cur = trim_ascii(cur);
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

int64_t utf8_byte_offset(const std::string& s, int64_t cp_index) {
  int64_t cp = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;  // inside a code point
    if (cp == cp_index) return static_cast<int64_t>(i);
    ++cp;
  }
  return cp == cp_index ? static_cast<int64_t>(s.size()) : -1;
}

}  // namespace moe
