// cli_util.h — run one of the built programs the way a user does, for the CLI tests of train,
// eval and finetune: the command line in, exit code and everything printed (stdout + stderr) out.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace moe::testing {

struct CliResult {
  int code;            // exit status; -1 if the program did not exit normally (a crash)
  std::string output;  // stdout + stderr
};

// Where the programs under test are: MOE_BIN_DIR if set (a separate build, `make PROGDIR=...`),
// else the repository root, where `make` puts them.
inline std::string program_path(const std::string& name) {
  const char* dir = std::getenv("MOE_BIN_DIR");
  return (dir && *dir ? std::string(dir) : std::string(".")) + "/" + name;
}

inline CliResult run_cli(const std::string& program, const std::string& args) {
  const std::string cmd = program + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

}  // namespace moe::testing
