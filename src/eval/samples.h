// samples.h — `eval --log-samples`: one JSON line per evaluated item and draw, in
// <out-dir>/samples_<task>.jsonl, so that a score can be traced back to the prompts that made it
// (lm-evaluation-harness users expect this; notes/design.md "Hardening" "Results that say what
// they are").
//
// Each line: {"task", "draw", "index" (into the evaluated split), "where" (FILE:LINE of the
// record), "prompt" (the demonstrations, each followed by a newline, then the context the
// candidates share, or only the demonstrations when their contexts differ), "choices" (for each
// candidate the text after the prompt: prompt + choice is what the model read), "demos" (pool
// indices shown), "scores": {"mean": [...], "sum": [...], "char": [...]} (scoring.h, one per
// choice), "prediction" (under --scoring), "gold", "correct", "demos_complete" (demonstrations
// left whole after left truncation), "truncated_tokens"; ReCoRD adds "answers" and "entities"}.
// Texts are the templates' (templates.h), before tokenization; newlines in them are the </s>
// tokens the model saw.
//
// The file is written as FILE.tmp and renamed when the task is done, so a stopped run leaves no
// half file under the real name.
//
// Left out: the token ids themselves, per-token log-probabilities.
#pragma once
#include <fstream>
#include <string>

#include "eval/priming.h"

namespace moe {

std::string sample_json(const TaskData& task, const ItemRecord& r);

class SamplesWriter {
 public:
  SamplesWriter(const TaskData& task, const std::string& path);
  ~SamplesWriter();  // removes FILE.tmp unless finish() ran
  SamplesWriter(const SamplesWriter&) = delete;
  SamplesWriter& operator=(const SamplesWriter&) = delete;

  void write(const ItemRecord& r);  // CHECK-fails on a write error (disk full)
  void finish();                    // FILE.tmp -> FILE
  const std::string& path() const { return path_; }

 private:
  const TaskData& task_;
  std::string path_, tmp_;
  std::ofstream out_;
  bool done_ = false;
};

}  // namespace moe
