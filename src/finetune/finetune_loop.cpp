// finetune_loop.cpp — Finetuner::run(): epochs, dev accuracy, the best checkpoint, progress bar,
// logs, the results file, stop requests and non-finite losses (see finetuner.h;
// notes/finetune.md), and claim_out_dir (the --out-dir checks of notes/design.md "Hardening").
//
// Design decisions:
//  * Ctrl-C and SIGTERM only set a flag (StopSignals, io/run_dir.h); the step in flight finishes,
//    the current weights go to out-dir/interrupted.bin, results.json is rewritten with
//    "interrupted": true, exit 130 (Ctrl-C) or 143 (SIGTERM).
//  * best.bin is replaced only when dev accuracy strictly improves, so ties keep the earlier
//    (less trained) epoch; results.json is rewritten after every epoch, so a killed run still
//    leaves the epochs it finished.
//  * The progress bar redraws in place (\r) at most 4 times a second on a terminal; when stderr
//    is a file or pipe it prints a plain line every 15 s instead, so logs stay readable.
//  * Every write is checked where it happens (log lines through append_to_file, results.json
//    through write_file_atomic, checkpoints through save_checkpoint): a full disk stops the run at
//    the first write that fails, with the file's name, instead of at the end or never.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "finetune/finetuner.h"
#include "io/json.h"
#include "io/program.h"
#include "io/text_io.h"

namespace fs = std::filesystem;

namespace moe {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

std::string num(double v) { return std::isfinite(v) ? fmt("%.6g", v) : "null"; }

std::string signal_name(int sig) {
  if (sig == SIGINT) return "Ctrl-C (SIGINT)";
  if (sig == SIGTERM) return "SIGTERM";
  return str_cat("signal ", sig);
}

}  // namespace

void Finetuner::say(const std::string& s) const {
  if (!cfg_.quiet && root()) std::cout << s << std::endl;  // rank 0 alone prints
}

void Finetuner::log_line(const std::string& json) const {
  if (!root()) return;  // rank 0 alone writes files
  append_to_file(log_path_, json + "\n");  // flushed and checked: a full disk stops the run here
}

void Finetuner::progress(const std::string& what, int64_t done, int64_t total, double loss,
                         double elapsed, bool force) const {
  if (cfg_.quiet || !root()) return;
  // A terminal redraws from the first step; a log file gets a line after each 15 s and at the end.
  const double min_gap = progress_tty_ ? 0.25 : 15.0;
  const double last = last_progress_s_ >= 0 ? last_progress_s_ : (progress_tty_ ? -min_gap : 0.0);
  if (!force && elapsed - last < min_gap) return;
  last_progress_s_ = force ? -1.0 : elapsed;  // a finished bar resets the clock for the next one
  const int width = 24;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string line = what + " [" + std::string(filled, '#') + std::string(width - filled, '.') +
                     "] " + std::to_string(done) + "/" + std::to_string(total) + " ex | " +
                     fmt("%.1f", rate) + " ex/s";
  if (std::isfinite(loss)) line += " | loss " + fmt("%.4f", loss);
  line += done < total ? " | ETA " + hms(rate > 0 ? (total - done) / rate : NAN)
                       : " | " + hms(elapsed);
  if (progress_tty_) std::cerr << "\r" << line << "\033[K" << (done == total ? "\n" : "") << std::flush;
  else std::cerr << line << "\n";
}

std::vector<std::pair<std::string, std::string>> Finetuner::save_meta(int epoch, double acc) const {
  return {{"finetune.epoch", std::to_string(epoch)},
          {"finetune.dev-accuracy", num(acc)},
          {"finetune.steps", std::to_string(step_)},
          {"finetune.seed", std::to_string(cfg_.seed)},
          {"finetune.from", cfg_.ckpt}};
}

void Finetuner::write_results(bool interrupted) const {
  if (!root()) return;
  const FinetuneDataConfig& d = data_.used;  // the files really read, defaults filled in
  std::string j = "{\n  \"task\": " + json_quote(data_.task.name) + ",\n  \"labels\": [";
  for (size_t k = 0; k < data_.task.labels.size(); ++k)
    j += (k ? ", " : "") + json_quote(data_.task.labels[k]);
  j += "],\n  \"checkpoint_in\": " + json_quote(cfg_.ckpt) + ",\n  \"data_dir\": " +
       json_quote(d.data_dir) + ",\n  \"train_file\": " + json_quote(d.train_file) +
       ",\n  \"dev_file\": " + json_quote(d.dev_file) +
       ",\n  \"carve\": " +
       (data_.carve_from.empty() ? "null" : str_cat("{\"from\": ", json_quote(data_.carve_from),
                                                   ", \"n_train\": ", d.carve_train,
                                                   ", \"seed\": ", d.carve_seed, "}")) +
       ",\n  \"notes\": [";
  for (size_t k = 0; k < data_.notes.size(); ++k) j += (k ? ", " : "") + json_quote(data_.notes[k]);
  j += str_cat("],\n  \"n_train\": ", data_.train.size(), ",\n  \"n_dev\": ", data_.dev.size(),
               ",\n  \"skipped_no_gold\": ", data_.skipped_no_gold, ",\n  \"truncated_train\": ",
               truncated_train_, ",\n  \"truncated_dev\": ", truncated_dev_,
               ",\n  \"majority_baseline\": ", num(majority_baseline()), ",\n  \"epochs\": [");
  for (size_t k = 0; k < history_.size(); ++k) {
    const EpochResult& e = history_[k];
    j += str_cat(k ? ",\n    " : "\n    ", "{\"epoch\": ", e.epoch, ", \"train_loss\": ",
                 num(e.train_loss), ", \"dev_accuracy\": ", num(e.dev_accuracy), ", \"seconds\": ",
                 num(e.seconds), ", \"examples_per_s\": ", num(e.examples_per_s), "}");
  }
  j += history_.empty() ? "],\n" : "\n  ],\n";
  j += "  \"best\": " + (best_epoch_ > 0 ? str_cat("{\"epoch\": ", best_epoch_, ", \"dev_accuracy\": ",
                                                   num(best_accuracy_), ", \"checkpoint\": ",
                                                   json_quote(best_path_), "}")
                                         : std::string("null"));
  j += str_cat(",\n  \"interrupted\": ", interrupted ? "true" : "false", ",\n  \"settings\": {",
               "\"epochs\": ", cfg_.epochs, ", \"batch_size\": ", cfg_.batch_size, ", \"lr\": ",
               num(cfg_.lr), ", \"warmup\": ", num(cfg_.warmup), ", \"steps\": ", total_steps_,
               ", \"weight_decay\": ", num(cfg_.adam.weight_decay), ", \"beta1\": ",
               num(cfg_.adam.beta1), ", \"beta2\": ", num(cfg_.adam.beta2), ", \"adam_eps\": ",
               num(cfg_.adam.eps), ", \"clip_grad\": ", num(cfg_.adam.clip_grad), ", \"dropout\": ",
               num(cfg_.dropout), ", \"seed\": ", cfg_.seed, ", \"aux_loss_weight\": ",
               num(cfg_.aux_loss_weight), ", \"freeze_experts\": ", cfg_.freeze_experts ? "true" : "false",
               ", \"freeze_router\": ", cfg_.freeze_router ? "true" : "false", ", \"frozen_params\": ",
               frozen_.size(), ", \"eval_capacity_fraction\": ", num(cfg_.eval_capacity_fraction),
               ", \"context\": ", model_->context(), ", \"limit_train\": ", d.limit_train,
               ", \"limit_dev\": ", d.limit_dev, "},\n  \"model\": {\"n_layer\": ",
               model_->gpt().config().n_layer, ", \"d_model\": ", model_->gpt().config().d_model,
               ", \"parameters\": ", model_->param_count_all_ranks(), ", \"ranks\": ", world_,
               ", \"head_from_checkpoint\": ",
               model_->head_from_checkpoint() ? "true" : "false", "}\n}\n");
  write_file_atomic(results_path_, j);  // a reader never sees half a file; a failed write throws
}

int Finetuner::report_nonfinite() const {
  if (!root()) return 3;  // every rank stops; rank 0 says why
  std::cerr << "error: the fine-tuning loss or gradient is not finite at step " << step_ + 1
            << "; that update and the later ones were not applied, and nothing was saved after it"
            << (best_epoch_ > 0 ? "; best.bin is kept" : "")
            << ". HINT: lower --lr, or set --clip-grad 1.0\n";
  return 3;
}

int Finetuner::save_interrupted(int epoch, int sig) const {
  const std::string path = (fs::path(cfg_.out_dir) / "interrupted.bin").string();
  model_->save(path, save_meta(epoch, NAN));  // every rank: the experts gather on rank 0
  write_results(true);
  if (root())
    std::cerr << "stopped by " << signal_name(sig) << " in epoch " << epoch << " after " << step_
              << " steps; weights saved to " << path << " (continue from them with --ckpt "
              << path << ")\n";
  return StopSignals::exit_code(sig);
}

int Finetuner::run() {
  if (root()) {
    std::ofstream log(log_path_, std::ios::trunc);  // a new run starts a new log
    CHECK(log.good(), "cannot create ", log_path_, ". HINT: is --out-dir writable?");
  }
  const GPTConfig& mc = model_->gpt().config();
  say(str_cat("task: ", data_.task.name, " (", data_.task.num_classes(), " classes), ",
              data_.train.size(), " train / ", data_.dev.size(), " dev examples; ", truncated_train_,
              " train and ", truncated_dev_, " dev inputs cut from the left to T = ", mc.seq_len));
  for (const std::string& n : data_.notes) say("note: " + n);
  say(str_cat("model: ", cfg_.ckpt, " (L=", mc.n_layer, " C=", mc.d_model, " NH=", mc.n_head,
              ", ", model_->param_count_all_ranks(), " parameters incl. the head; head ",
              model_->head_from_checkpoint() ? "from the checkpoint" : "newly initialised", ")"));
  if (world_ > 1) say(ranks_line());
  if (cfg_.freeze_experts || cfg_.freeze_router)
    say(frozen_.empty() ? std::string("note: --freeze-experts/--freeze-router freeze nothing: the "
                                      "model has no MoE parameters (dense)")
                        : str_cat("frozen: ", frozen_.size(), " parameter tensors (",
                                  frozen_.front(), ", ...)"));
  say(str_cat("majority-class baseline on dev: ", fmt("%.4f", majority_baseline()), "; ",
              total_steps_, " steps of batch ", cfg_.batch_size));
  int code = 0;
  if (cfg_.epochs == 0) {  // evaluation only
    const double acc = evaluate();
    if (stop_sig_ != 0) {  // a partial accuracy is not written anywhere
      if (root())
        std::cerr << "stopped by " << signal_name(stop_sig_)
                  << " during the evaluation; nothing was written\n";
      code = StopSignals::exit_code(stop_sig_);
    } else {
      say(str_cat("dev accuracy of the checkpoint: ", fmt("%.4f", acc)));
      history_.push_back({0, NAN, acc, 0, 0});
    }
  }
  for (int epoch = 1; epoch <= cfg_.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t steps_before = step_;
    const double loss = train_epoch(epoch);
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // train_epoch read the optimizer's non-finite flag on its way out (also when interrupted):
    // a poisoned model is never saved, not even to interrupted.bin.
    if (!std::isfinite(loss)) {
      code = report_nonfinite();
      break;
    }
    // Stops are decided by the signal every rank agreed on (agreed_stop), never by this rank's
    // own flag: a signal that reached one rank a moment later must not send it another way.
    if (stop_sig_ != 0) {
      code = save_interrupted(epoch, stop_sig_);
      break;
    }
    const double acc = evaluate();
    if (stop_sig_ != 0) {  // stopped during evaluation: the accuracy is partial
      code = save_interrupted(epoch, stop_sig_);
      break;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history_.push_back({epoch, loss, acc, seconds,
                        static_cast<double>(data_.train.size()) / std::max(train_s, 1e-9)});
    const bool improved = acc > best_accuracy_;
    if (improved) {
      best_accuracy_ = acc;
      best_epoch_ = epoch;
      model_->save(best_path_, save_meta(epoch, acc));
    }
    log_line(str_cat("{\"epoch\":", epoch, ",\"step\":", step_, ",\"train_loss\":", num(loss),
                     ",\"dev_accuracy\":", num(acc), ",\"seconds\":", num(seconds), "}"));
    say(str_cat("epoch ", epoch, "/", cfg_.epochs, " | train loss ", fmt("%.4f", loss),
                " | dev accuracy ", fmt("%.4f", acc), improved ? " (best, saved)" : "", " | ",
                step_ - steps_before, " steps in ", hms(seconds)));
    write_results(false);
  }
  if (cfg_.epochs == 0 && code == 0) write_results(false);
  StopSignals::request(0);  // handled: a later run in this process starts clean
  stop_sig_ = 0;
  if (code == 0 && best_epoch_ > 0)
    say(str_cat("done: best dev accuracy ", fmt("%.4f", best_accuracy_), " at epoch ", best_epoch_,
                "; checkpoint ", best_path_, ", results ", results_path_));
  return code;
}

std::unique_ptr<RunDirLock> claim_out_dir(const FinetuneConfig& cfg) {
  check_out_dir(cfg.out_dir);
  auto lock = std::make_unique<RunDirLock>(cfg.out_dir, "finetune");
  // refuse_to_replace's rule in finetune's words: its HINT offers `--resume FILE`, which finetune
  // does not have (a stopped run continues from its weights with --ckpt interrupted.bin).
  for (const char* name : {"best.bin", "results.json"}) {
    const std::string path = (fs::path(cfg.out_dir) / name).string();
    std::error_code ec;
    CHECK(cfg.overwrite || !fs::exists(path, ec), path, " already exists: an earlier fine-tuning "
          "run wrote it, and this run would replace it. HINT: choose another --out-dir, or pass "
          "--overwrite to replace that run's outputs");
  }
  return lock;
}

}  // namespace moe
