// resume_settings.h — what --resume does with run settings that differ from the checkpoint's
// (notes/design.md "Hardening" item 6). A checkpoint records the settings that shape the rest of a
// run (meta keys train.lr, train.steps, train.warmup, train.seed and batch-size; notes/checkpoint-format.md).
// On resume each one is compared with this run's flags:
//
//   --lr, --steps, --warmup   allowed: the schedule (SPEC §5, linear warmup then linear decay to
//                             0 at --steps) is recomputed from the new values. The output names
//                             every difference and what it does: the learning rate of the next
//                             step under the old and the new settings, where warmup now ends and
//                             where the decay reaches 0.
//   --batch-size              allowed: the data cursor counts blocks, so no block is skipped or
//                             repeated; each step just reads more or fewer of them. Said, with the
//                             note that the run is no longer bit-identical to an uninterrupted one.
//   --seed                    refused: the seed fixes each epoch's block order, so another seed
//                             would revisit some blocks of the current epoch and never reach
//                             others. The message gives the checkpoint's seed.
//
// Checkpoints written before these keys existed are compared on what they do record.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace moe {

struct ScheduleSettings {
  double lr = 0;          // peak learning rate
  int64_t steps = 0;      // total steps of the schedule
  double warmup = 0;      // warmup as a fraction of `steps`
  uint64_t seed = 0;
  int batch_size = 0;
};

// The meta entries that record `s` in a checkpoint (exact: "%.17g" for the doubles).
std::vector<std::pair<std::string, std::string>> schedule_meta(const ScheduleSettings& s);

// The warmup length in steps that lr_at() is given for `s`.
int64_t warmup_steps_of(const ScheduleSettings& s);

// Compares the settings recorded in `meta` (from checkpoint `path`, resumed at step `step`) with
// `now`. Returns the lines to print (empty when nothing differs); CHECK-fails (naming the file,
// the key and both values, with a HINT) for a different --seed or a malformed recorded value.
std::vector<std::string> compare_resume_settings(
    const std::vector<std::pair<std::string, std::string>>& meta, const std::string& path,
    int64_t step, const ScheduleSettings& now);

}  // namespace moe
