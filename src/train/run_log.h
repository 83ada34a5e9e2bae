// run_log.h — log.jsonl, the per-step record of a training run (SPEC §5 "log the loss";
// notes/design.md "Hardening" "Nothing lost, nothing false"): how it is started, appended to,
// trimmed on --resume and read back for the loss plot.
//
//  * Every line is one JSON object and stays valid JSON: numbers that are not finite (a NaN
//    validation loss, an infinite gradient norm) are written as null, never as `nan`.
//  * Every append is checked (io/text_io.h append_to_file), so a full disk stops the run at the
//    first line that could not be written, naming the file.
//  * On --resume the lines past the checkpoint's step (written after its last save by the run that
//    was interrupted) are dropped, so the log describes one loss curve. A half-written last line
//    (a kill -9 or a full disk in the middle of an append) is dropped with a note; a damaged line
//    anywhere else is an error naming the file and the line, since silently dropping it would
//    hide a hole in the curve.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

// printf-style `fmt` of one double for a JSON line, or "null" when `v` is not finite.
std::string json_fixed(const char* fmt, double v);

// Empty `path` for a fresh run (creating it); CHECK-fails naming the file when it cannot be
// written. Follows a symlink rather than replacing it, like the appends that come after.
void start_log(const std::string& path);

// What trim_log_for_resume did, for the run's output.
struct LogTrim {
  int64_t kept = 0;          // lines kept (step <= last_step)
  int64_t dropped = 0;       // complete lines dropped because their step is past last_step
  bool dropped_partial = false;  // the last line was half-written and was dropped
};

// Keep the lines of `path` whose "step" is <= last_step (see the file comment); a missing file is
// an empty log. CHECK-fails, naming "path:line" and a HINT, on a damaged line that is not the last.
LogTrim trim_log_for_resume(const std::string& path, int64_t last_step);

// One logged step, as the loss plot needs it (NaN where the line has no such value).
struct LogPoint {
  int64_t step = 0;
  double tokens = 0, compute = 0;  // tokens seen, training compute (paper FLOPs) so far
  double loss = 0, val_loss = 0;
};
// The complete, well-formed lines of `path` in file order (a damaged line is skipped: a picture
// must never stop a run).
std::vector<LogPoint> read_log_points(const std::string& path);

}  // namespace moe
