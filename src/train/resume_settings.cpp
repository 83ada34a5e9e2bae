// resume_settings.cpp — comparing a checkpoint's run settings with --resume's (resume_settings.h).
#include "train/resume_settings.h"

#include <cmath>
#include <cstdio>

#include "core/check.h"
#include "nn/config.h"
#include "optim/adamw.h"

namespace moe {

namespace {

std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string short_num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

const std::string* find(const std::vector<std::pair<std::string, std::string>>& meta,
                        const char* key) {
  for (const auto& [k, v] : meta)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> schedule_meta(const ScheduleSettings& s) {
  return {{"train.lr", exact(s.lr)},
          {"train.steps", std::to_string(s.steps)},
          {"train.warmup", exact(s.warmup)},
          {"train.seed", std::to_string(s.seed)},
          {"batch-size", std::to_string(s.batch_size)}};
}

int64_t warmup_steps_of(const ScheduleSettings& s) {
  return static_cast<int64_t>(std::llround(s.warmup * static_cast<double>(s.steps)));
}

std::vector<std::string> compare_resume_settings(
    const std::vector<std::pair<std::string, std::string>>& meta, const std::string& path,
    int64_t step, const ScheduleSettings& now) {
  // The checkpoint's settings; what it does not record is taken to equal this run's.
  ScheduleSettings then = now;
  if (const std::string* v = find(meta, "train.lr"))
    then.lr = parse_meta_double(*v, "train.lr", 0, 1e9, path);
  if (const std::string* v = find(meta, "train.steps"))
    then.steps = parse_meta_int(*v, "train.steps", 1, INT64_MAX, path);
  if (const std::string* v = find(meta, "train.warmup"))
    then.warmup = parse_meta_double(*v, "train.warmup", 0, 1, path);
  if (const std::string* v = find(meta, "train.seed"))
    then.seed = static_cast<uint64_t>(parse_meta_int(*v, "train.seed", 0, INT64_MAX, path));
  if (const std::string* v = find(meta, "batch-size"))
    then.batch_size = static_cast<int>(parse_meta_int(*v, "batch-size", 1, 1 << 30, path));

  CHECK(then.seed == now.seed, "checkpoint '", path, "' was trained with --seed ", then.seed,
        ", this run has --seed ", now.seed, ": the seed fixes the order of the data blocks in "
        "each epoch, so continuing with another one would repeat some blocks of the current "
        "epoch and skip others. HINT: resume with --seed ", then.seed,
        " (or leave --seed out if that is the default), or start a new run");

  std::vector<std::string> out;
  if (then.lr != now.lr)
    out.push_back(str_cat("  --lr: checkpoint ", short_num(then.lr), ", now ", short_num(now.lr)));
  if (then.steps != now.steps)
    out.push_back(str_cat("  --steps: checkpoint ", then.steps, ", now ", now.steps));
  if (then.warmup != now.warmup)
    out.push_back(str_cat("  --warmup: checkpoint ", short_num(then.warmup), ", now ",
                          short_num(now.warmup)));
  if (!out.empty()) {
    const int64_t w0 = warmup_steps_of(then), w1 = warmup_steps_of(now);
    const double lr0 = lr_at(step, then.steps, w0, then.lr);
    const double lr1 = lr_at(step, now.steps, w1, now.lr);
    std::string effect = str_cat("  schedule: step ", step + 1, " gets lr ", short_num(lr1),
                                 " (the checkpoint's settings give ", short_num(lr0), ")");
    if (w0 != w1)
      effect += str_cat("; warmup ends at step ", w1, " (was ", w0, ")",
                        w1 > step && w0 <= step ? ", so the lr ramps up again from here" : "");
    if (then.steps != now.steps)
      effect += str_cat("; the lr decays to 0 at step ", now.steps, " (was ", then.steps, ")");
    out.push_back(effect);
  }
  if (then.batch_size != now.batch_size)
    out.push_back(str_cat("  --batch-size: checkpoint ", then.batch_size, ", now ",
                          now.batch_size, ": each step now reads ", now.batch_size,
                          " blocks; the data continues at the same block (none skipped or "
                          "repeated), but the run is no longer identical to an uninterrupted one"));
  if (!out.empty())
    out.insert(out.begin(), str_cat("resuming from ", path, " at step ", step,
                                    " with settings that differ from the checkpoint's:"));
  return out;
}

}  // namespace moe
