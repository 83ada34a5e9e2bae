// tasks.h — the six priming tasks of the paper, found in the data folder (SPEC §6; layout of
// ../shared/data/MANIFEST.md) and turned into TaskData: the evaluated split and the pool that
// few-shot demonstrations are drawn from.
//
//   task        evaluated split (default)         demonstrations              paper setting
//   hellaswag   hellaswag_val_full.txt (val)      val, item excluded (*)      zero-shot
//   piqa        valid.jsonl + valid-labels.lst    train.jsonl(.xz) + labels   zero-shot
//   record      --record-file (none in folder)    same file, item excluded    zero-shot
//   winogrande  dev.jsonl + dev-labels.lst        train_<size> (xl)           few-shot
//   storycloze  test csv (or val)                 the other split             few-shot
//   openbookqa  test.jsonl (or dev)               train.jsonl                 few-shot
// (*) the data folder has no HellaSwag train split.
// plus perplexity corpora: the first file is in-domain (the training corpus' held-out split;
// indomain.h finds it from the checkpoint), the others out-of-domain.
//
// Left out: any download; the unlabelled test files; HellaSwag's train split (not in the folder).
#pragma once
#include <string>
#include <vector>

#include "eval/priming.h"
#include "eval/readers.h"
#include "eval/templates.h"

namespace moe {

struct TaskOptions {
  std::string data_dir = "../shared/data";
  ReadOptions read;
  WinoGrandeMode winogrande_mode = WinoGrandeMode::Full;
  std::string winogrande_train = "xl";    // xs|s|m|l|xl
  std::string storycloze_split = "test";  // test|val: the other one gives the demonstrations
  std::string openbookqa_split = "test";  // test|dev
  std::string hellaswag_file;             // "" = the data folder's text form
  std::string record_file;                // "" = ReCoRD unavailable
};

// The six tasks in the order results are printed.
const std::vector<std::string>& priming_task_names();
// HellaSwag, PIQA, ReCoRD are zero-shot tasks in the paper; the others few-shot.
bool paper_setting_is_zero_shot(const std::string& task);

// Read and template a task. CHECK-fails on an unknown name, a missing file or (without
// --skip-bad) a malformed record.
TaskData load_task(const std::string& name, const TaskOptions& opts);

// The default perplexity corpora under data_dir: gutenberg valid (in-domain), WikiText-2 raw test
// and Reuters-21578 (out-of-domain); .xz twins are used when the plain file is absent.
std::vector<std::string> default_ppl_files(const std::string& data_dir);
// The out-of-domain two of them (WikiText-2, Reuters-21578).
std::vector<std::string> default_out_of_domain_files(const std::string& data_dir);

}  // namespace moe
