// run_dir.h — what train and finetune share about the folder a run writes into, and about being
// stopped: nothing is replaced silently, two runs never share a folder, and a stop request (Ctrl-C
// or a cluster's SIGTERM) ends the run cleanly with its work saved (notes/design.md "Hardening",
// "Nothing lost").
//
//  * RunDirLock: a lock file `<dir>/.lock` created with O_EXCL and holding the owner's pid. A
//    second process using the same folder gets a clear "in use by pid N" error instead of two
//    writers racing on one `checkpoint.bin.tmp`. A lock left by a process that no longer exists
//    (kill -9) is taken over, with a note. Released when the lock object dies.
//  * refuse_to_replace: a new run (not --resume) must not overwrite an existing checkpoint unless
//    --overwrite says so.
//  * StopSignals: while alive, SIGINT and SIGTERM only set a flag that the loops poll between
//    steps; the loop saves and exits (130 for SIGINT, 143 for SIGTERM, the shells' codes).
#pragma once
#include <atomic>
#include <csignal>
#include <string>

namespace moe {

class RunDirLock {
 public:
  // Takes `dir`/.lock for `program` ("train", "finetune"); CHECK-fails if a live process holds it.
  RunDirLock(const std::string& dir, const std::string& program);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// CHECK-fails when `path` exists, this is a fresh run (!resume) and !overwrite; the message names
// the file and the two ways on (--resume FILE, --overwrite, or another --out-dir).
void refuse_to_replace(const std::string& path, bool resume, bool overwrite);

class StopSignals {
 public:
  StopSignals();   // installs the handlers and clears the flag
  ~StopSignals();  // restores the previous handlers
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The signal that asked the run to stop (SIGINT, SIGTERM), or 0.
  static int requested();
  // For tests: behave as if `sig` had arrived.
  static void request(int sig);
  // The exit code for a stop by `sig`: 128 + sig (130 for Ctrl-C, 143 for SIGTERM).
  static int exit_code(int sig) { return 128 + sig; }

 private:
  void (*prev_int_)(int) = SIG_DFL;
  void (*prev_term_)(int) = SIG_DFL;
};

}  // namespace moe
