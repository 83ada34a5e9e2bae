// tasks.cpp — see tasks.h.
#include "eval/tasks.h"

#include "core/check.h"
#include "io/text_io.h"

namespace moe {

const std::vector<std::string>& priming_task_names() {
  static const std::vector<std::string> names = {"hellaswag",  "piqa",       "record",
                                                 "winogrande", "storycloze", "openbookqa"};
  return names;
}

bool paper_setting_is_zero_shot(const std::string& task) {
  return task == "hellaswag" || task == "piqa" || task == "record";
}

namespace {

std::string path_in(const TaskOptions& o, const std::string& rel) { return o.data_dir + "/" + rel; }

// Template every record; a record the template rejects counts as malformed like a reader's.
template <typename R, typename F>
std::vector<TaskItem> make_items(const std::vector<R>& records, F&& templ, const ReadOptions& ro,
                                 ReadStats* stats) {
  std::vector<TaskItem> items;
  for (const R& r : records) {
    try {
      items.push_back(templ(r));
    } catch (const Error& e) {
      if (!ro.skip_bad) throw;
      if (stats->skipped++ == 0) stats->first_error = e.what();
    }
  }
  return items;
}

void load_hellaswag(const TaskOptions& o, TaskData* t) {
  const std::string file = o.hellaswag_file.empty()
      ? resolve_data_file(path_in(o, "hellaswag/hellaswag_val_full.txt"), "HellaSwag val")
      : o.hellaswag_file;
  t->split = "val";
  t->files = {file};
  t->items = make_items(read_hellaswag(file, o.read, &t->stats), hellaswag_item, o.read, &t->stats);
  t->pool_is_eval = true;
  t->pool_name = "val (item excluded)";
}

void load_piqa(const TaskOptions& o, TaskData* t) {
  t->split = "valid";
  const std::string valid = resolve_data_file(path_in(o, "piqa/valid.jsonl"), "PIQA valid");
  const std::string train = resolve_data_file(path_in(o, "piqa/train.jsonl"), "PIQA train");
  t->files = {valid, path_in(o, "piqa/valid-labels.lst"), train,
              path_in(o, "piqa/train-labels.lst")};
  t->items = make_items(read_piqa(valid, t->files[1], o.read, &t->stats), piqa_item, o.read,
                        &t->stats);
  ReadStats ps;
  t->pool = make_items(read_piqa(train, t->files[3], o.read, &ps), piqa_item, o.read, &ps);
  t->pool_skipped = ps.skipped;
  t->pool_name = "train";
}

void load_winogrande(const TaskOptions& o, TaskData* t) {
  const std::string size = o.winogrande_train;
  const auto templ = [&](const WinoGrandeRecord& r) {
    return winogrande_item(r, o.winogrande_mode);
  };
  t->split = "dev";
  const std::string train = "winogrande/train_" + size;
  t->files = {resolve_data_file(path_in(o, "winogrande/dev.jsonl"), "WinoGrande dev"),
              path_in(o, "winogrande/dev-labels.lst"),
              resolve_data_file(path_in(o, train + ".jsonl"), "WinoGrande train_" + size),
              path_in(o, train + "-labels.lst")};
  t->items = make_items(read_winogrande(t->files[0], t->files[1], o.read, &t->stats), templ,
                        o.read, &t->stats);
  ReadStats ps;
  t->pool = make_items(read_winogrande(t->files[2], t->files[3], o.read, &ps), templ, o.read, &ps);
  t->pool_skipped = ps.skipped;
  t->pool_name = "train_" + size;
  t->note = str_cat("mode ", winogrande_mode_name(o.winogrande_mode));
}

void load_storycloze(const TaskOptions& o, TaskData* t) {
  CHECK(o.storycloze_split == "test" || o.storycloze_split == "val",
        "--storycloze-split must be test or val");
  const std::string other = o.storycloze_split == "test" ? "val" : "test";
  const auto file = [&](const std::string& split) {
    return resolve_data_file(path_in(o, "storycloze/cloze_test_" + split + "__spring2016.csv"),
                             "StoryCloze " + split);
  };
  t->split = o.storycloze_split;
  t->files = {file(t->split), file(other)};
  t->items = make_items(read_storycloze(t->files[0], o.read, &t->stats), storycloze_item, o.read,
                        &t->stats);
  ReadStats ps;
  t->pool = make_items(read_storycloze(t->files[1], o.read, &ps), storycloze_item, o.read, &ps);
  t->pool_skipped = ps.skipped;
  t->pool_name = other;
}

void load_openbookqa(const TaskOptions& o, TaskData* t) {
  CHECK(o.openbookqa_split == "test" || o.openbookqa_split == "dev",
        "--openbookqa-split must be test or dev");
  t->split = o.openbookqa_split;
  t->files = {resolve_data_file(path_in(o, "openbookqa/" + t->split + ".jsonl"),
                                "OpenBookQA " + t->split),
              resolve_data_file(path_in(o, "openbookqa/train.jsonl"), "OpenBookQA train")};
  t->items = make_items(read_openbookqa(t->files[0], o.read, &t->stats), openbookqa_item, o.read,
                        &t->stats);
  ReadStats ps;
  t->pool = make_items(read_openbookqa(t->files[1], o.read, &ps), openbookqa_item, o.read, &ps);
  t->pool_skipped = ps.skipped;
  t->pool_name = "train";
}

void load_record(const TaskOptions& o, TaskData* t) {
  CHECK(!o.record_file.empty(), "ReCoRD has no data in the data folder (MANIFEST.md: not found). "
        "HINT: pass the SuperGLUE ReCoRD jsonl with --record-file FILE");
  t->split = o.record_file;
  t->files = {o.record_file};
  t->items = make_items(read_record(o.record_file, o.read, &t->stats), record_item, o.read,
                        &t->stats);
  t->pool_is_eval = true;
  t->pool_name = "same file (item excluded)";
  t->is_record = true;
}

}  // namespace

TaskData load_task(const std::string& name, const TaskOptions& opts) {
  TaskData t;
  t.name = name;
  if (name == "hellaswag") load_hellaswag(opts, &t);
  else if (name == "piqa") load_piqa(opts, &t);
  else if (name == "winogrande") load_winogrande(opts, &t);
  else if (name == "storycloze") load_storycloze(opts, &t);
  else if (name == "openbookqa") load_openbookqa(opts, &t);
  else if (name == "record") load_record(opts, &t);
  else CHECK(false, "unknown task '", name, "'. HINT: --task all|ppl|hellaswag|piqa|winogrande|"
             "storycloze|openbookqa|record (comma-separated lists work)");
  CHECK(!t.items.empty(), name, ": no usable items in ", t.files.at(0), ": --skip-bad skipped "
        "every record; the first: ", t.stats.first_error);
  return t;
}

std::vector<std::string> default_ppl_files(const std::string& data_dir) {
  std::vector<std::string> files = {
      resolve_data_file(data_dir + "/gutenberg/gutenberg.valid.txt", "in-domain corpus")};
  for (const std::string& f : default_out_of_domain_files(data_dir)) files.push_back(f);
  return files;
}

std::vector<std::string> default_out_of_domain_files(const std::string& data_dir) {
  return {resolve_data_file(data_dir + "/wikitext2/wiki.test.raw.hf_joined.txt", "WikiText-2"),
          resolve_data_file(data_dir + "/reuters21578/reuters21578_bodies.txt", "Reuters-21578")};
}

}  // namespace moe
