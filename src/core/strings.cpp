// strings.cpp — see strings.h.
#include "core/strings.h"

#include <sstream>

namespace moe {

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

bool str_ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool str_starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
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
