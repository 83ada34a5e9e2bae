// strings.h — the small string helpers every part of moe-gpt shares (flags, text and JSON
// readers, eval templates, fine-tuning readers): one set, so that "whitespace" or "a list" means
// the same thing in every file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// s without leading and trailing ASCII whitespace (space, \t, \r, \n, \f, \v).
std::string trim_ascii(const std::string& s);
// The `sep`-separated items of s, each trimmed, empty ones dropped: "a, b,,c" -> {a, b, c}.
std::vector<std::string> split_list(const std::string& s, char sep);
bool str_ends_with(const std::string& s, const std::string& suffix);
bool str_starts_with(const std::string& s, const std::string& prefix);
// Code points of UTF-8 s (continuation bytes not counted).
int64_t utf8_length(const std::string& s);
// Byte offset of code point `cp_index` in UTF-8 s (s.size() when cp_index is the length; -1 when
// it is past the end).
int64_t utf8_byte_offset(const std::string& s, int64_t cp_index);

}  // namespace moe
