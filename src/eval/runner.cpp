// runner.cpp — see runner.h.
#include "eval/runner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>

#include "core/check.h"
#include "core/device.h"
#include "data/bpe.h"
#include "eval/check_data.h"
#include "eval/metrics.h"
#include "eval/perplexity.h"
#include "eval/report.h"
#include "eval/speedup.h"
#include "eval/tasks.h"
#include "io/text_io.h"
#include "io/checkpoint.h"
#include "io/flags.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"

namespace fs = std::filesystem;

namespace moe {

// --task is one row shared with finetune (flag names are unique across the table); its empty
// default means "all" here.
static std::string task_flag(const Flags& flags) {
  const std::string t = flags.get_str("task");
  return t.empty() ? "all" : t;
}


std::vector<std::string> expand_task_list(const std::string& task_flag) {
  if (task_flag == "all") {
    std::vector<std::string> all = priming_task_names();
    all.push_back("ppl");
    return all;
  }
  std::vector<std::string> tasks = split_list(task_flag, ',');
  CHECK(!tasks.empty(), "--task is empty. HINT: --task all, ppl, or task names joined by commas");
  for (const std::string& t : tasks) {
    bool known = t == "ppl";
    for (const std::string& n : priming_task_names()) known = known || t == n;
    CHECK(known, "unknown task '", t, "' in --task. HINT: all, ppl, hellaswag, piqa, winogrande, "
          "storycloze, openbookqa, record (comma-separated)");
  }
  return tasks;
}

int shots_for(const std::string& task, int shots_flag, int fewshot_k) {
  if (shots_flag >= 0) return shots_flag;
  return paper_setting_is_zero_shot(task) ? 0 : fewshot_k;
}

int draws_for(int shots, int draws_flag) {
  if (shots == 0) return 1;  // zero-shot has nothing to draw
  return draws_flag > 0 ? draws_flag : 25;
}

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Session {
  std::unique_ptr<GPT> model;
  std::unique_ptr<BpeTokenizer> tok;
  ResultsFile results;
  bool progress = true;
};

// --eval-capacity-fraction is one row of the flag table shared with finetune (names are unique
// across programs); read it only when the table lets eval have it, else the training formula.
double eval_capacity_fraction(const Flags& flags) {
  const FlagTable& t = builtin_flag_table();
  for (size_t i = 0; i < t.n_flags; ++i)
    if (std::string(t.flags[i].name) == "eval-capacity-fraction")
      return (t.flags[i].programs & PROG_EVAL) ? flags.get_float("eval-capacity-fraction") : 0.0;
  return 0.0;
}

double meta_number(const Checkpoint& ck, const char* key) {
  if (!ck.has_meta(key)) return kNaN;
  try { return std::stod(ck.get_meta(key)); } catch (const std::exception&) { return kNaN; }
}

Session load_session(const Flags& flags, Device device) {
  const std::string path = flags.get_str("ckpt");
  CHECK(!path.empty(), "eval needs a model: --ckpt FILE (a checkpoint written by train). "
        "HINT: --speedup and --check-data need no checkpoint");
  Session s;
  const Checkpoint ck = load_checkpoint(path);
  s.model = gpt_from_checkpoint(ck, device);  // the checkpoint's CPU tensors are copied over
  s.tok = std::make_unique<BpeTokenizer>(tokenizer_from_checkpoint(ck));
  ResultsFile& r = s.results;
  r.checkpoint = path;
  r.training_compute = meta_number(ck, "compute-paper-flops");
  const double tokens = meta_number(ck, "tokens"), step = meta_number(ck, "step");
  r.tokens = std::isfinite(tokens) ? static_cast<int64_t>(tokens) : -1;
  r.step = std::isfinite(step) ? static_cast<int64_t>(step) : -1;
  r.scoring = flags.get_str("scoring");
  r.winogrande_mode = flags.get_str("winogrande-mode");
  r.eval_capacity_fraction = eval_capacity_fraction(flags);
  s.model->set_eval_capacity_fraction(r.eval_capacity_fraction);  // SPEC §3 step 2, MoE only
  const std::string rule = r.eval_capacity_fraction > 0
      ? str_cat("Cap = ceil(", r.eval_capacity_fraction, " * N) (--eval-capacity-fraction)")
      : "Cap = 2 * ceil(N / E), the training formula";
  r.eval_capacity_rule =
      s.model->config().is_moe() ? rule : "dense model: no gating (" + rule + ")";
  s.progress = true;
  return s;
}

TaskOptions task_options(const Flags& flags) {
  TaskOptions o;
  o.data_dir = flags.get_str("data-dir");
  o.read.skip_bad = flags.get_bool("skip-bad");
  o.winogrande_mode = parse_winogrande_mode(flags.get_str("winogrande-mode"));
  o.winogrande_train = flags.get_str("winogrande-train");
  o.storycloze_split = flags.get_str("storycloze-split");
  o.openbookqa_split = flags.get_str("openbookqa-split");
  o.hellaswag_file = flags.get_str("hellaswag-file");
  o.record_file = flags.get_str("record-file");
  return o;
}

ResultRow base_row(const ResultsFile& r) {
  ResultRow row;
  row.checkpoint = r.checkpoint;
  row.training_compute = r.training_compute;
  return row;
}

void report_skipped(const std::string& what, const ReadStats& stats, int64_t pool_skipped) {
  if (stats.skipped == 0 && pool_skipped == 0) return;
  std::cerr << what << ": skipped " << stats.skipped << " malformed record(s) of the evaluated "
            << "split and " << pool_skipped << " of the demonstration pool (--skip-bad)"
            << (stats.first_error.empty() ? "" : "; first: " + stats.first_error) << "\n";
}

void run_priming_task(const std::string& name, const Flags& flags, Session& s) {
  const TaskData task = load_task(name, task_options(flags));
  report_skipped(name, task.stats, task.pool_skipped);
  PrimingOptions po;
  po.shots = shots_for(name, static_cast<int>(flags.get_int("shots")),
                       static_cast<int>(flags.get_int("fewshot-k")));
  po.draws = draws_for(po.shots, static_cast<int>(flags.get_int("draws")));
  po.limit = flags.get_int("limit");
  po.scoring = parse_scoring(flags.get_str("scoring"));
  po.batch_size = static_cast<int>(flags.get_int("batch-size"));
  po.progress = s.progress;
  GPTScorer scorer(*s.model, s.tok->eos_id());
  const PrimingResult pr = evaluate_priming(task, scorer, make_text_encoder(*s.tok), po);

  ResultRow row = base_row(s.results);
  row.task = name;
  row.setting = po.shots > 0 ? "few-shot" : "zero-shot";
  row.shots = po.shots;
  row.draws = po.draws;
  row.n = pr.n_items;
  row.scoring = scoring_name(po.scoring);
  row.split = task.split;
  row.skipped = task.stats.skipped;
  row.items_per_s = pr.items_per_s;
  row.note = (po.shots > 0 ? "demos: " + task.pool_name : std::string("")) +
             (task.note.empty() ? "" : (po.shots > 0 ? "; " : "") + task.note);
  std::vector<std::pair<std::string, double DrawMetrics::*>> metrics = {{"acc", &DrawMetrics::acc}};
  if (task.is_record) metrics = {{"em", &DrawMetrics::em}, {"f1", &DrawMetrics::f1}};
  for (const auto& [metric, field] : metrics) {
    std::vector<double> xs;
    for (const DrawMetrics& d : pr.draws) xs.push_back(d.*field);
    const MeanStd ms = mean_std(xs);
    row.metric = metric;
    row.mean = ms.mean;
    row.std = ms.std;
    s.results.rows.push_back(row);
  }
}

void run_ppl(const Flags& flags, Session& s) {
  std::vector<std::string> files = split_list(flags.get_str("ppl-data"), ',');
  if (files.empty()) files = default_ppl_files(flags.get_str("data-dir"));
  GPTScorer scorer(*s.model, s.tok->eos_id());
  for (size_t i = 0; i < files.size(); ++i) {
    const std::vector<int32_t> stream = perplexity_stream(read_text_file(files[i]), *s.tok);
    const PerplexityResult p =
        evaluate_perplexity(stream, scorer, static_cast<int>(flags.get_int("batch-size")),
                            flags.get_int("limit"), s.progress,
                            fs::path(files[i]).filename().string());
    ResultRow row = base_row(s.results);
    row.task = "ppl";
    row.setting = i == 0 ? "in-domain" : "out-of-domain";  // the first file is in-domain
    row.metric = "ppl";
    row.mean = p.ppl();
    row.n = p.tokens;
    row.split = files[i];
    row.items_per_s = p.tokens / std::max(p.seconds, 1e-9);
    row.note = str_cat(fs::path(files[i]).filename().string(), ", ", p.windows, " windows");
    s.results.rows.push_back(row);
  }
}

std::string output_dir(const Flags& flags) {
  if (flags.was_set("out-dir")) return flags.get_str("out-dir");
  const std::string ckpt = flags.get_str("ckpt");
  if (!ckpt.empty() && fs::path(ckpt).has_parent_path())
    return (fs::path(ckpt).parent_path() / "eval").string();
  return "runs/eval";
}

std::string results_name(const Flags& flags) {
  std::string tag = task_flag(flags);
  for (char& c : tag) if (c == ',') c = '+';
  if (flags.get_int("shots") >= 0) tag += str_cat("_k", flags.get_int("shots"));
  return "eval_" + tag + ".json";
}

}  // namespace

int run_evaluation(const Flags& flags, Device device) {
  const std::vector<std::string> tasks = expand_task_list(task_flag(flags));
  const bool all = task_flag(flags) == "all";
  Session s = load_session(flags, device);
  // The largest GPU buffers of an evaluation are one call's hidden states (batch x T x C) and
  // logits (rows x V): both shrink with --batch-size.
  if (device.is_cuda())
    cuda_set_oom_hint(str_cat("lower --batch-size (now ", flags.get_int("batch-size"), ")"));
  const GPTConfig& c = s.model->config();
  std::cout << "model: L" << c.n_layer << " C" << c.d_model << " NH" << c.n_head << " T"
            << c.seq_len << " V" << c.vocab_size << (c.is_moe() ? str_cat(" E", c.moe_experts) : "")
            << "; training compute "
            << (std::isfinite(s.results.training_compute) ? str_cat(s.results.training_compute)
                                                          : std::string("unknown"))
            << " FLOPs\nscoring: " << scoring_description(parse_scoring(flags.get_str("scoring")))
            << "\nMoE eval capacity: " << s.results.eval_capacity_rule << std::endl;
  for (const std::string& t : tasks) {
    if (t == "record" && all && flags.get_str("record-file").empty()) {
      std::cout << "record: skipped — ReCoRD has no data in the data folder (MANIFEST.md); "
                   "pass --record-file FILE to include it" << std::endl;
      continue;
    }
    if (t == "ppl") run_ppl(flags, s);
    else run_priming_task(t, flags, s);
  }
  add_summary_rows(&s.results);
  std::cout << "\n" << results_table(s.results.rows);
  const std::string path = output_dir(flags) + "/" + results_name(flags);
  write_results(path, s.results);
  std::cout << "results: " << path << std::endl;
  return 0;
}

int run_speedup_mode(const Flags& flags) {
  const std::string out = flags.was_set("out-dir") ? flags.get_str("out-dir") : "runs/eval";
  run_speedup(split_list(flags.get_str("dense"), ','), split_list(flags.get_str("moe"), ','), out);
  return 0;
}

int run_check_data(const Flags& flags) {
  const std::string dir = flags.get_str("check-data");
  std::cout << "checking the evaluation files of " << dir << " (MANIFEST.md counts)\n";
  return print_data_checks(check_data(dir)) == 0 ? 0 : 1;
}

}  // namespace moe
