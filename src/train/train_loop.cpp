// train_loop.cpp — Trainer::run(): the outer loop with progress, logs, checkpoints and stops.
//
// Design decisions (notes/training.md):
//  * log.jsonl gets one JSON object per logged step; on resume, lines past the checkpoint's step
//    (written by the run that was interrupted after its last checkpoint) are dropped, so the log
//    describes exactly one loss curve.
//  * Ctrl-C only sets a flag; the loop finishes the step in flight, saves a checkpoint and exits
//    with 130 (the shell's code for SIGINT), so an interrupted run loses nothing.
//  * A non-finite loss stops before the update: no checkpoint is written, so the last good one
//    (at most --ckpt-every steps old) stays intact; exit code 3.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "train/trainer.h"

namespace moe {

static void on_sigint(int) { Trainer::interrupt_flag().store(true); }

static std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

static std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// Keep only log lines whose "step" is <= last_step (see the file comment).
static void truncate_log(const std::string& path, int64_t last_step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    const size_t at = line.find("\"step\":");
    if (at != std::string::npos && std::stoll(line.substr(at + 7)) > last_step) continue;
    kept << line << '\n';
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  out << kept.str();
}

void Trainer::log_line(const std::string& json) const {
  std::ofstream out(log_path_, std::ios::app);
  CHECK(out.good(), "cannot append to ", log_path_, ". HINT: is --out-dir writable?");
  out << json << '\n';
}

int Trainer::run() {
  interrupt_flag().store(false);
  auto prev_handler = std::signal(SIGINT, on_sigint);
  if (cfg_.resume.empty()) std::ofstream(log_path_, std::ios::trunc);
  else truncate_log(log_path_, step_);
  if (!cfg_.quiet) say_config();
  const double tok_per_step = static_cast<double>(cfg_.batch_size) * cfg_.model.seq_len;
  const double paper_ftok = paper_flops_per_token(cfg_.model);
  const double model_ftok = model_flops_per_token(cfg_.model, model_->params().count());
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first_step = step_;
  int code = 0;
  while (step_ < cfg_.steps) {
    StepStats s = train_step();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(s.loss)) {
      std::cerr << "error: the training loss is " << s.loss << " at step " << step_ + 1
                << "; stopping without updating the model. The last good checkpoint is kept at "
                << ckpt_path_ << ". HINT: lower --lr, set --clip-grad 1.0, or check the data\n";
      code = 3;
      break;
    }
    const bool last = step_ == cfg_.steps;
    const double tps = tok_per_step * static_cast<double>(step_ - first_step) / elapsed;
    std::ostringstream js;
    js << "{\"step\":" << step_ << ",\"tokens\":" << static_cast<int64_t>(tokens_seen_)
       << ",\"loss\":" << fmt("%.6f", s.loss) << ",\"lr\":" << fmt("%.6g", s.lr)
       << ",\"grad_norm\":" << fmt("%.4g", s.grad_norm) << ",\"tokens_per_s\":" << fmt("%.1f", tps)
       << ",\"elapsed_s\":" << fmt("%.2f", elapsed)
       << ",\"compute_paper_flops\":" << fmt("%.6g", paper_ftok * tokens_seen_)
       << ",\"compute_model_flops\":" << fmt("%.6g", model_ftok * tokens_seen_);
    const std::vector<MoEStats> moe_stats = model_->moe_stats();  // before validation reruns it
    if (!moe_stats.empty())
      js << ",\"aux_loss\":" << fmt("%.6f", s.aux) << ",\"moe\":"
         << moe_stats_json(model_->moe_layer_indices(), moe_stats);
    const bool eval_now = (cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || last;
    if (eval_now) {
      const double vl = validation_loss(cfg_.eval_batches);
      js << ",\"val_loss\":" << fmt("%.6f", vl) << ",\"val_ppl\":" << fmt("%.4f", std::exp(vl));
      if (!cfg_.quiet) say_line(str_cat("step ", step_, " | validation loss ", fmt("%.4f", vl), " | ppl ", fmt("%.2f", std::exp(vl))));
    }
    js << "}";
    if (step_ % cfg_.log_every == 0 || eval_now || step_ == first_step + 1) {
      log_line(js.str());
      if (!moe_stats.empty()) routing_.add(step_, moe_stats);
      const double eta = elapsed / static_cast<double>(step_ - first_step) * static_cast<double>(cfg_.steps - step_);
      if (!cfg_.quiet)
        say_line(str_cat("step ", step_, "/", cfg_.steps, " | loss ", fmt("%.4f", s.loss), " | lr ",
                         fmt("%.2e", s.lr), " | ", fmt("%.0f", tps), " tok/s | ", hms(elapsed),
                         " elapsed | ETA ", hms(eta), moe_stats_line(moe_stats)));
    }
    const bool out_of_time = cfg_.max_minutes > 0 && elapsed > cfg_.max_minutes * 60;
    if ((cfg_.ckpt_every > 0 && step_ % cfg_.ckpt_every == 0) || last || interrupt_flag().load() || out_of_time)
      save_checkpoint_to(ckpt_path_);
    if (interrupt_flag().load()) {
      std::cerr << "interrupted: saved a checkpoint at step " << step_ << " to " << ckpt_path_
                << "; continue with --resume " << ckpt_path_ << "\n";
      code = 130;
      break;
    }
    if (out_of_time) {
      say_line(str_cat("--max-minutes reached: saved step ", step_, " to ", ckpt_path_));
      break;
    }
  }
  std::signal(SIGINT, prev_handler);
  if (code == 0 && !cfg_.quiet) write_moe_pictures();
  if (code == 0 && !cfg_.quiet) say_line(str_cat("done: ", step_, " steps, checkpoint ", ckpt_path_, ", log ", log_path_));
  return code;
}

}  // namespace moe
