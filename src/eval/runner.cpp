// runner.cpp — see runner.h.
#include "eval/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>

#include "core/check.h"
#include "core/device.h"
#include "data/bpe.h"
#include "eval/check_data.h"
#include "eval/indomain.h"
#include "eval/metrics.h"
#include "eval/perplexity.h"
#include "eval/report.h"
#include "eval/samples.h"
#include "dist/dist.h"
#include "dist/transport.h"
#include "eval/speedup.h"
#include "eval/tasks.h"
#include "io/checkpoint.h"
#include "io/flags.h"
#include "io/program.h"
#include "io/text_io.h"
#include "nn/generate.h"
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
  CHECK(!tasks.empty(), "--task is empty. HINT: --task all, ppl, generate, or task names joined "
        "by commas");
  for (const std::string& t : tasks) {
    CHECK(t != "generate" || tasks.size() == 1, "--task generate cannot be combined with other "
          "tasks. HINT: run eval once with --task generate and once for the evaluation");
    bool known = t == "ppl" || t == "generate";
    for (const std::string& n : priming_task_names()) known = known || t == n;
    CHECK(known, "unknown task '", t, "' in --task. HINT: all, ppl, generate, hellaswag, piqa, "
          "winogrande, storycloze, openbookqa, record (comma-separated)");
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

std::string eval_capacity_rule_text(double eval_capacity_fraction) {
  const std::string cap = eval_capacity_fraction > 0
      ? str_cat("Cap = ceil(", eval_capacity_fraction, " * N) slots per expert "
                "(--eval-capacity-fraction ", eval_capacity_fraction, ")")
      : std::string("Cap = 2 * ceil(N / E) slots per expert, the training formula "
                    "(--eval-capacity-fraction 0)");
  return cap + ", N = the positions of one model call (up to --batch-size sequences); padding "
               "takes no slot, but the real tokens of a batch's sequences compete for the "
               "slots, as in the paper, so a score can depend on --batch-size" +
         (eval_capacity_fraction >= 1.0 ? "" : "; --eval-capacity-fraction 1 drops no token");
}

// The first non-finite value of a CPU tensor: (count, index of the first, its value).
template <typename T>
static void scan_nonfinite(const T* p, int64_t n, int64_t* bad, int64_t* first, double* value) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i]) && (*bad)++ == 0) {
      *first = i;
      *value = static_cast<double>(p[i]);
    }
}

void check_finite_parameters(const Checkpoint& ck) {
  for (const auto& [name, stored] : ck.tensors) {
    if (name.rfind("param/", 0) != 0 || !stored.is_floating()) continue;
    const Tensor t = stored.to(cpu()).contiguous();  // load_checkpoint gives these already
    int64_t bad = 0, first = -1;
    double value = 0.0;
    if (t.dtype() == DType::F32) scan_nonfinite(t.data<float>(), t.numel(), &bad, &first, &value);
    else scan_nonfinite(t.data<double>(), t.numel(), &bad, &first, &value);
    CHECK(bad == 0, ck.path, ": parameter ", name.substr(6), " holds ", bad, " non-finite "
          "value(s) (the first, at index ", first, ", is ", value, "), so every score would be "
          "NaN. HINT: the training run diverged before this checkpoint was saved; evaluate an "
          "earlier checkpoint, or retrain with a lower --lr");
  }
}

namespace {

struct Session {
  std::unique_ptr<Transport> transport;  // W ranks: the all-to-alls of the MoE layers (SPEC §4)
  std::unique_ptr<GPT> model;
  std::unique_ptr<BpeTokenizer> tok;
  Checkpoint meta;  // the checkpoint's meta and path (its tensors are in the model)
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
  if (!ck.has_meta(key)) return std::numeric_limits<double>::quiet_NaN();
  try {
    return std::stod(ck.get_meta(key));
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

std::string checkpoint_path(const Flags& flags) {
  const std::string path = flags.get_str("ckpt");
  CHECK(!path.empty(), "eval needs a model: --ckpt FILE (a checkpoint written by train). "
        "HINT: --speedup and --check-data need no checkpoint");
  std::error_code ec;
  CHECK(fs::is_regular_file(path, ec), "--ckpt ", path, ": no such file. HINT: train writes "
        "<out-dir>/checkpoint.bin");
  return path;
}

Session load_session(const Flags& flags, Device device) {
  Session s;
  Checkpoint ck = load_checkpoint(checkpoint_path(flags));
  check_finite_parameters(ck);
  // Under mpirun (W ranks) each rank holds its slice of the experts and scores its share of every
  // batch's rows (eval/scoring.cpp); the checkpoint's CPU tensors are copied over.
  ExpertParallel ep;
  if (dist().world > 1) {
    s.transport = make_transport(flags.get_str("transport"), device);
    ep = ExpertParallel{dist().rank, dist().world, s.transport.get()};
    std::cout << "ranks: " << ep.world << " (each scores its share of every batch"
              << ", transport " << s.transport->name() << ")" << std::endl;
  }
  s.model = gpt_from_checkpoint(ck, device, ep);
  s.tok = std::make_unique<BpeTokenizer>(tokenizer_from_checkpoint(ck));
  s.meta.meta = std::move(ck.meta);
  s.meta.path = ck.path;
  ResultsFile& r = s.results;
  r.checkpoint = ck.path;
  r.training_compute = meta_number(s.meta, "compute-paper-flops");
  const double tokens = meta_number(s.meta, "tokens"), step = meta_number(s.meta, "step");
  r.tokens = std::isfinite(tokens) ? static_cast<int64_t>(tokens) : -1;
  r.step = std::isfinite(step) ? static_cast<int64_t>(step) : -1;
  r.scoring = flags.get_str("scoring");
  r.winogrande_mode = flags.get_str("winogrande-mode");
  r.limit = flags.get_int("limit");
  r.settings = flags.effective(PROG_EVAL);
  r.eval_capacity_fraction = eval_capacity_fraction(flags);
  s.model->set_eval_capacity_fraction(r.eval_capacity_fraction);  // SPEC §3 step 2, MoE only
  r.eval_capacity_rule = s.model->config().is_moe() ? eval_capacity_rule_text(r.eval_capacity_fraction)
                                                    : "none: a dense model has no experts";
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
  row.limit = r.limit;
  return row;
}

void report_skipped(const std::string& what, const ReadStats& stats, int64_t pool_skipped) {
  if (stats.skipped == 0 && pool_skipped == 0) return;
  std::cerr << what << ": skipped " << stats.skipped << " malformed record(s) of the evaluated "
            << "split and " << pool_skipped << " of the demonstration pool (--skip-bad)"
            << (stats.first_error.empty() ? "" : "; first: " + stats.first_error) << "\n";
}

// One results row per metric of a priming task: the headline acc (--scoring), then every rule's
// accuracy (ReCoRD: em and f1 under --scoring), each with its spread and standard errors.
void add_priming_rows(const TaskData& task, const PrimingResult& pr, const PrimingOptions& po,
                      ResultRow row, ResultsFile* out) {
  struct Metric {
    std::string name;
    Scoring rule;
    std::function<double(const DrawMetrics&)> of_draw;
    const std::vector<double>* per_item;
  };
  std::vector<Metric> metrics;
  const int h = scoring_index(po.scoring);
  if (task.is_record) {
    metrics.push_back({"em", po.scoring, [](const DrawMetrics& d) { return d.em; }, &pr.item_em});
    metrics.push_back({"f1", po.scoring, [](const DrawMetrics& d) { return d.f1; }, &pr.item_f1});
  } else {
    metrics.push_back({"acc", po.scoring, [h](const DrawMetrics& d) { return d.acc_by_rule[h]; },
                       &pr.item_acc[h]});
    const char* names[3] = {"acc_mean", "acc_sum", "acc_norm"};
    for (const Scoring rule : kAllScorings) {
      const int k = scoring_index(rule);
      metrics.push_back({names[k], rule, [k](const DrawMetrics& d) { return d.acc_by_rule[k]; },
                         &pr.item_acc[k]});
    }
  }
  for (const Metric& m : metrics) {
    std::vector<double> xs;
    for (const DrawMetrics& d : pr.draws) xs.push_back(m.of_draw(d));
    const MeanStd ms = mean_std(xs);
    row.metric = m.name;
    row.scoring = scoring_name(m.rule);
    row.mean = ms.mean;
    row.std = ms.std;
    row.std_err = items_standard_error(*m.per_item);
    row.std_err_draws = draws_standard_error(xs);
    out->rows.push_back(row);
  }
}

void run_priming_task(const std::string& name, const Flags& flags, const std::string& out_dir,
                      Session& s) {
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
  std::unique_ptr<SamplesWriter> samples;
  if (flags.get_bool("log-samples") && is_root()) {
    samples = std::make_unique<SamplesWriter>(task, out_dir + "/samples_" + name + ".jsonl");
    po.on_item = [&samples](const ItemRecord& r) { samples->write(r); };
  }
  GPTScorer scorer(*s.model, s.tok->eos_id());
  const PrimingResult pr = evaluate_priming(task, scorer, make_text_encoder(*s.tok), po);
  if (samples) {
    samples->finish();
    std::cout << name << ": per-item records in " << samples->path() << std::endl;
  }

  ResultRow row = base_row(s.results);
  row.task = name;
  row.setting = po.shots > 0 ? "few-shot" : "zero-shot";
  row.shots = po.shots;
  row.draws = po.draws;
  row.n = pr.n_items;
  row.split = task.split;
  row.files = task.files;
  row.skipped = task.stats.skipped;
  row.items_per_s = pr.items_per_s;
  std::string demos;
  if (po.shots > 0) {
    row.demos_mean = pr.demos_complete_mean;
    row.demos_min = pr.demos_complete_min;
    demos = str_cat("demos: ", task.pool_name, "; ", pr.demos_complete_mean, " of ", po.shots,
                    " fit (min ", pr.demos_complete_min, ")");
    std::cout << name << ": " << po.shots << "-shot prompts kept " << pr.demos_complete_mean
              << " of " << po.shots << " demonstrations whole on average (min "
              << pr.demos_complete_min << ") in the context of " << scorer.context_length()
              << " tokens" << std::endl;
  }
  row.note = demos + (task.note.empty() ? "" : (demos.empty() ? "" : "; ") + task.note);
  add_priming_rows(task, pr, po, row, &s.results);
}

// One perplexity corpus: its token stream, where it came from, and what it stands for.
struct PplInput {
  std::string name, setting, note, split;  // split: the file, or what the stream was cut from
  std::vector<int32_t> stream;
  std::vector<std::string> files;
};

PplInput ppl_file(const std::string& path, const std::string& setting, const BpeTokenizer& tok) {
  const std::string name = fs::path(path).filename().string();
  return {name, setting, name, path, perplexity_stream(read_text_file(path), tok), {path}};
}

// --ppl-data's files (the first in-domain); else the checkpoint's held-out training text (or the
// data folder's Gutenberg validation text for a checkpoint that does not record its data), and
// the data folder's out-of-domain corpora.
std::vector<PplInput> ppl_inputs(const Flags& flags, const Session& s) {
  std::vector<PplInput> in;
  const std::vector<std::string> files = split_list(flags.get_str("ppl-data"), ',');
  for (size_t i = 0; i < files.size(); ++i)
    in.push_back(ppl_file(files[i], i == 0 ? "in-domain" : "out-of-domain", *s.tok));
  if (!in.empty()) return in;
  const std::string dir = flags.get_str("data-dir");
  const auto log = [](const std::string& line) { std::cout << line << std::endl; };
  if (std::optional<HeldOutText> held =
          training_held_out(s.meta, *s.tok, s.model->config().seq_len, log)) {
    std::cout << "in-domain perplexity: " << held->description << std::endl;
    in.push_back({"held-out", "in-domain", held->description, held->description,
                  std::move(held->tokens), held->files});
  } else {
    const std::string f = default_ppl_files(dir).front();
    std::cout << "in-domain perplexity: " << f << " — " << s.meta.path << " does not record a "
              << "validation split of its training data (written before train recorded it, or "
              << "trained with --val-fraction 0); pass --ppl-data FILE to choose" << std::endl;
    in.push_back(ppl_file(f, "in-domain", *s.tok));
    in.back().note += " (the checkpoint does not record its training data)";
  }
  for (const std::string& f : default_out_of_domain_files(dir))
    in.push_back(ppl_file(f, "out-of-domain", *s.tok));
  return in;
}

void run_ppl(const Flags& flags, Session& s) {
  GPTScorer scorer(*s.model, s.tok->eos_id());
  for (const PplInput& in : ppl_inputs(flags, s)) {
    const PerplexityResult p = evaluate_perplexity(
        in.stream, scorer, static_cast<int>(flags.get_int("batch-size")), flags.get_int("limit"),
        s.progress, in.name);
    CHECK(std::isfinite(p.ppl()), "the perplexity of ", in.name, " is ", p.ppl(), " (mean NLL ",
          p.mean_nll(), "): the model's log-probabilities are not finite, so the number would "
          "mean nothing. HINT: the checkpoint's weights overflow in the forward pass; evaluate "
          "an earlier checkpoint");
    ResultRow row = base_row(s.results);
    row.task = "ppl";
    row.setting = in.setting;
    row.metric = "ppl";
    row.mean = p.ppl();
    row.n = p.tokens;
    row.split = in.split;
    row.files = in.files;
    row.items_per_s = p.tokens / std::max(p.seconds, 1e-9);
    row.note = str_cat(in.note, ", ", p.windows, " windows");
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

// The generation flags mean nothing to the other tasks: a --prompt given to them is a mistake.
void check_generate_flags(const Flags& flags, bool generating) {
  if (generating) return;
  for (const char* f : {"prompt", "max-new-tokens", "temperature", "top-k"})
    CHECK(!flags.was_set(f), "--", f, " applies to --task generate only. HINT: add --task "
          "generate, or drop --", f);
}

int run_generation(const Flags& flags, Device device) {
  Session s = load_session(flags, device);
  GenerateConfig g;
  g.prompt = flags.get_str("prompt");
  g.max_new_tokens = static_cast<int>(flags.get_int("max-new-tokens"));
  g.temperature = flags.get_float("temperature");
  g.top_k = static_cast<int>(flags.get_int("top-k"));
  g.seed = static_cast<uint64_t>(flags.get_int("seed"));
  const GPTConfig& c = s.model->config();
  std::cout << "generating " << g.max_new_tokens << " tokens: "
            << (g.temperature == 0 ? std::string("greedy") : str_cat("temperature ", g.temperature,
                                                                     ", top-k ", g.top_k,
                                                                     ", seed ", g.seed))
            << "; context " << c.seq_len << " tokens (KV cache; a full window restarts from its "
            << "last half)" << (c.is_moe() ? "; MoE layers route each token with no drop" : "")
            << "\n---- prompt ----\n" << g.prompt << "\n---- continuation ----" << std::endl;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = generate_text(*s.model, *s.tok, g);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << text << "\n---- end (" << g.max_new_tokens / std::max(sec, 1e-9)
            << " tokens/s) ----" << std::endl;
  return 0;
}

void print_model(const Session& s, const Flags& flags, const std::string& results_path) {
  const GPTConfig& c = s.model->config();
  const double compute = s.results.training_compute;
  std::cout << "model: L" << c.n_layer << " C" << c.d_model << " NH" << c.n_head << " T"
            << c.seq_len << " V" << c.vocab_size << (c.is_moe() ? str_cat(" E", c.moe_experts) : "")
            << "; step " << s.results.step << "; training compute "
            << (std::isfinite(compute) ? str_cat(compute) : std::string("unknown"))
            << " FLOPs\nscoring: " << scoring_description(parse_scoring(flags.get_str("scoring")))
            << " (acc; acc_mean, acc_sum and acc_norm are reported from the same pass)\n";
  if (c.is_moe()) std::cout << "MoE capacity: " << s.results.eval_capacity_rule << "\n";
  std::cout << "results will be written to " << results_path << std::endl;
}

}  // namespace

int run_evaluation(const Flags& flags, Device device) {
  const std::vector<std::string> tasks = expand_task_list(task_flag(flags));
  const bool generating = tasks.front() == "generate";
  check_generate_flags(flags, generating);
  if (generating) return run_generation(flags, device);
  const bool all = task_flag(flags) == "all";
  checkpoint_path(flags);
  // The output folder is checked before any model is loaded: a bad --out-dir must not cost an
  // evaluation.
  const std::string out_dir = output_dir(flags);
  if (is_root()) check_out_dir(out_dir);  // rank 0 alone writes files (dist.h)
  Session s = load_session(flags, device);
  // The largest GPU buffers of an evaluation are one call's hidden states (batch x T x C) and
  // logits (rows x V): both shrink with --batch-size.
  if (device.is_cuda())
    cuda_set_oom_hint(str_cat("lower --batch-size (now ", flags.get_int("batch-size"), ")"));
  const std::string path = out_dir + "/" + results_name(flags);
  print_model(s, flags, path);
  for (const std::string& t : tasks) {
    if (t == "record" && all && flags.get_str("record-file").empty()) {
      std::cout << "record: skipped — ReCoRD has no data in the data folder (MANIFEST.md); "
                   "pass --record-file FILE to include it" << std::endl;
      continue;
    }
    if (t == "ppl") run_ppl(flags, s);
    else run_priming_task(t, flags, out_dir, s);
  }
  add_summary_rows(&s.results);
  std::cout << "\n" << results_table(s.results.rows);
  if (is_root()) write_results(path, s.results);
  std::cout << "results: " << path << std::endl;
  return 0;
}

int run_speedup_mode(const Flags& flags) {
  if (!is_root()) return 0;  // no model to share: rank 0 does it all
  const std::string out = flags.was_set("out-dir") ? flags.get_str("out-dir") : "runs/eval";
  check_out_dir(out);
  run_speedup(split_list(flags.get_str("dense"), ','), split_list(flags.get_str("moe"), ','), out);
  return 0;
}

int run_check_data(const Flags& flags) {
  const std::string dir = flags.get_str("check-data");
  std::cout << "checking the evaluation files of " << dir << " (MANIFEST.md counts)\n";
  return print_data_checks(check_data(dir)) == 0 ? 0 : 1;
}

}  // namespace moe
