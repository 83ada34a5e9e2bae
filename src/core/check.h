// check.h — the project's one header of error checks (notes/design.md "Errors").
//
// Two kinds of failure, kept apart on purpose:
//   CHECK(cond, msg...)     a *user* error: bad flag, missing file, malformed record, mismatched
//                           checkpoint. The message says what was expected, what was found, and a
//                           "HINT:" with the fix when one is known. Throws moe::Error, which every
//                           program's main() catches, prints, and turns into exit code 1.
//   ASSERT_INTERNAL(cond)   an invariant of our own code; failing it is a bug in moe-gpt, not in the
//                           user's input. Also throws (so tests can see it), with a different prefix.
// Both are `do { } while (0)` macros so they cannot steal a following `else`, and both stay on in
// release builds. CUDA_CHECK / CUBLAS_CHECK live in cuda/cuda_common.h, MPI_CHECK in src/dist.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace moe {

// Thrown by CHECK / ASSERT_INTERNAL. what() is the full, user-facing message.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Concatenate any streamable arguments into one string: str_cat("got ", 3, " rows").
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] inline void fail_check(const char* expr, const char* file, int line,
                                    const std::string& msg) {
  (void)expr; (void)file; (void)line;  // user errors speak of the input, not of our source
  throw Error(msg);
}

[[noreturn]] inline void fail_internal(const char* expr, const char* file, int line,
                                       const std::string& msg) {
  throw Error(str_cat("internal error (a bug in moe-gpt, please report it): ", expr, " at ", file,
                      ":", line, msg.empty() ? "" : " — ", msg));
}

}  // namespace moe

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) ::moe::fail_check(#cond, __FILE__, __LINE__,                 \
                                   ::moe::str_cat("", ##__VA_ARGS__));        \
  } while (0)

#define ASSERT_INTERNAL(cond, ...)                                            \
  do {                                                                        \
    if (!(cond)) ::moe::fail_internal(#cond, __FILE__, __LINE__,              \
                                      ::moe::str_cat("", ##__VA_ARGS__)); \
  } while (0)
