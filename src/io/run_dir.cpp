// run_dir.cpp — see run_dir.h.
#include "io/run_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/check.h"

namespace moe {

namespace {
std::atomic<int> g_stop_signal{0};
void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// The pid written in a lock file, or 0 if it cannot be read.
long lock_owner(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return in.fail() ? 0 : pid;
}

bool process_alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// Creates the lock file only if it does not exist (O_EXCL: atomic against a second process).
bool try_create(const std::string& path, const std::string& program) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) {
    CHECK(errno == EEXIST, "cannot create the lock file ", path, ": ", std::strerror(errno),
          ". HINT: is --out-dir writable?");
    return false;
  }
  const std::string text = std::to_string(::getpid()) + " " + program + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  CHECK(ok, "cannot write the lock file ", path, ". HINT: is the disk full?");
  return true;
}
}  // namespace

RunDirLock::RunDirLock(const std::string& dir, const std::string& program)
    : path_((std::filesystem::path(dir) / ".lock").string()) {
  if (try_create(path_, program)) return;
  const long owner = lock_owner(path_);
  CHECK(!process_alive(owner), "--out-dir ", dir, " is in use by another run (pid ", owner,
        ", lock file ", path_, "). HINT: wait for it to finish, or use another --out-dir");
  std::cerr << "note: taking over the lock " << path_ << " left by process " << owner
            << ", which no longer runs\n";
  std::error_code ec;
  std::filesystem::remove(path_, ec);
  CHECK(try_create(path_, program), "--out-dir ", dir, " was locked by another run just now. "
        "HINT: use another --out-dir");
}

RunDirLock::~RunDirLock() {
  if (lock_owner(path_) == static_cast<long>(::getpid())) {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

void refuse_to_replace(const std::string& path, bool resume, bool overwrite) {
  if (resume || overwrite || !std::filesystem::exists(path)) return;
  CHECK(false, path, " already exists, and this is a new run: it would be replaced. HINT: "
        "continue it with --resume ", path, ", replace it with --overwrite, or choose another "
        "--out-dir");
}

StopSignals::StopSignals() {
  g_stop_signal.store(0);
  prev_int_ = std::signal(SIGINT, on_stop_signal);
  prev_term_ = std::signal(SIGTERM, on_stop_signal);
}

StopSignals::~StopSignals() {
  std::signal(SIGINT, prev_int_);
  std::signal(SIGTERM, prev_term_);
}

int StopSignals::requested() { return g_stop_signal.load(); }
void StopSignals::request(int sig) { g_stop_signal.store(sig); }

}  // namespace moe
