// test_util.h — the two helpers many test files want: the message of the moe::Error a call
// throws, and "does this text contain that".
#pragma once
#include <string>

#include "core/check.h"

namespace moe::testing {

// The message of the moe::Error thrown by f, or "" if none was thrown.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace moe::testing
