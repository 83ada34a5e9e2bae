// text_io.h — the one text reader of the three programs (train --data, the eval task readers, the
// fine-tuning task files) and the file plumbing around it: whole files in (plain or .xz), lines,
// CSV with quoted fields, label files, atomic writes, and the error type for a malformed record.
//
// .xz files: the shared data stores every file over ~2 MB xz-compressed (data/MANIFEST.md). We
// link no liblzma; a `.xz` path is read through `xz -dc FILE` (popen), which scripts/install.sh
// installs with xz-utils. If xz is missing or fails, the error says so and names the file.
//
// Left out: streaming (files are read whole; the largest evaluation file is ~7 MB decompressed),
// other compressions (.gz, .bz2), CSV dialects other than RFC 4180 with ',' and '"'.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/strings.h"

namespace moe {

// A malformed record (a line of a data file): what = "FILE:LINE: <problem>". Readers throw it for
// one record and skip-bad mode catches exactly this type, so a missing file or a labels file of
// the wrong length (which no skipping can repair) still stops the program.
struct BadRecord : Error {
  using Error::Error;
};
[[noreturn]] void throw_bad_record(const std::string& where, const std::string& problem);

// "FILE:LINE" for messages.
std::string where_str(const std::string& path, int64_t line);

// The whole file as bytes. `.xz` is decompressed through `xz -dc`. A UTF-8 byte order mark
// (EF BB BF) at the start is dropped: editors on Windows write one, and it is not text.
// CHECK-fails, naming the file and a HINT, when it is missing, unreadable, or xz fails.
std::string read_text_file(const std::string& path);
// The same for at most the first `max_bytes` bytes of the (decompressed) text, BOM dropped; an
// .xz file is decompressed only that far (train's tokenizer learns from a prefix of the corpus).
std::string read_text_prefix(const std::string& path, size_t max_bytes);
// `text` without a leading UTF-8 byte order mark (for readers that get their bytes elsewhere).
std::string strip_utf8_bom(std::string text);

// `path` if it exists, else `path.xz` if that exists (the shared data compresses big files), else
// a CHECK failure naming both and `what` (e.g. "PIQA valid") with a HINT about --data-dir.
std::string resolve_data_file(const std::string& path, const std::string& what);

// Lines without their '\n' (and without a trailing '\r'); a final newline does not make an extra
// empty line. Line i of the result is line i+1 of the file.
std::vector<std::string> split_lines(const std::string& text);

// One CSV record and the file line it starts on (1-based).
struct CsvRow {
  std::vector<std::string> fields;
  int64_t line = 0;
};
// RFC 4180: fields separated by ',', a field in double quotes may hold ',', '\n' and "" (one
// quote). An unterminated quote is an error for the whole file (no record boundary can be trusted
// after it): CHECK-fails naming path:line. Empty lines are skipped.
std::vector<CsvRow> parse_csv(const std::string& text, const std::string& path);

// Write `content` to `path` atomically (path.tmp, then rename), creating parent folders. Every
// write is checked (after the flush and at close): a failure names the file, says the disk may be
// full, removes path.tmp and leaves `path` as it was.
void write_file_atomic(const std::string& path, const std::string& content);
// Append `text` to `path` (created if missing) and check it reached the file: a failed write
// (a full disk) is noticed at once, naming the file, instead of at the end of a long run.
void append_to_file(const std::string& path, const std::string& text);

// The string helpers (trim_ascii, split_list, str_ends_with, utf8_length, ...) are core/strings.h.

}  // namespace moe
