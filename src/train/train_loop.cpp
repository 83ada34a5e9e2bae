// train_loop.cpp — Trainer::run(): the outer loop with progress, logs, checkpoints and stops.
//
// Design decisions (notes/training.md):
//  * log.jsonl gets one JSON object per logged step, whose "loss" is the mean training loss of
//    the steps since the previous line (summed on the device, read once per line); on resume, lines past the checkpoint's step
//    (written by the run that was interrupted after its last checkpoint) are dropped, so the log
//    describes exactly one loss curve.
//  * Ctrl-C only sets a flag; the loop finishes the step in flight, saves a checkpoint and exits
//    with 130 (the shell's code for SIGINT), so an interrupted run loses nothing.
//  * The loop reads values from the device only when it logs or saves. A non-finite loss or
//    gradient is caught on the device by the optimizer, which skips that update and every later
//    one; the loop sees the flag at its next log or save, stops without saving (the last good
//    checkpoint stays intact) and exits with code 3.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/device.h"
#include "ops/elementwise.h"
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

// The dense peak this run's precision can reach on this GPU, for MFU (DESIGN.md "Performance":
// H100/H200 989 TFLOP/s bf16, 495 TF32, 67 plain f32); 0 where unknown (the CPU, other GPUs).
static double peak_flops(const Device& dev) {
  if (!dev.is_cuda()) return 0.0;
  const std::string name = describe_device(dev);
  if (name.find("H100") == std::string::npos && name.find("H200") == std::string::npos) return 0.0;
  return cuda_allow_tf32() ? 495e12 : 67e12;
}

static double gib(size_t bytes) { return static_cast<double>(bytes) / double(size_t(1) << 30); }

std::string Trainer::progress_json(const StepResult& s, double loss, double elapsed,
                                   double tps) const {
  const double paper_ftok = paper_flops_per_token(cfg_.model);
  const double model_ftok = model_flops_per_token(cfg_.model, model_->active_param_count());
  const double peak = peak_flops(cfg_.device);
  std::ostringstream js;
  js << "{\"step\":" << step_ << ",\"tokens\":" << static_cast<int64_t>(tokens_seen_)
     << ",\"loss\":" << fmt("%.6f", loss) << ",\"lr\":" << fmt("%.6g", s.lr)
     << ",\"grad_norm\":" << fmt("%.4g", s.grad_norm.item()) << ",\"tokens_per_s\":" << fmt("%.1f", tps)
     << ",\"elapsed_s\":" << fmt("%.2f", elapsed)
     << ",\"compute_paper_flops\":" << fmt("%.6g", paper_ftok * tokens_seen_)
     << ",\"compute_model_flops\":" << fmt("%.6g", model_ftok * tokens_seen_);
  if (peak > 0) js << ",\"mfu\":" << fmt("%.4f", tps * model_ftok / peak);
  if (cfg_.device.is_cuda())
    js << ",\"peak_mem_gib\":" << fmt("%.2f", gib(cuda_memory_stats().peak_bytes_in_use));
  return js.str();
}

// A non-finite loss or gradient made the optimizer skip that step and every later one (the
// parameters are those before it); stop without saving, keeping the last good checkpoint.
bool Trainer::stop_if_nonfinite(int* code) const {
  const int64_t bad = opt_->first_nonfinite_step();
  if (bad == 0) return false;
  std::cerr << "error: the training loss or gradient is not finite at step " << bad
            << "; that update and later ones were not applied, and no checkpoint was written"
            << " after it. The last good checkpoint (if any) is kept at " << ckpt_path_
            << ". HINT: lower --lr, set --clip-grad 1.0, or check the data\n";
  *code = 3;
  return true;
}

int Trainer::run() {
  interrupt_flag().store(false);
  auto prev_handler = std::signal(SIGINT, on_sigint);
  if (cfg_.resume.empty()) std::ofstream(log_path_, std::ios::trunc);
  else truncate_log(log_path_, step_);
  if (!cfg_.quiet) say_config();
  const double tok_per_step = static_cast<double>(cfg_.batch_size) * cfg_.model.seq_len;
  const double model_ftok = model_flops_per_token(cfg_.model, model_->active_param_count());
  const double peak = peak_flops(cfg_.device);
  if (cfg_.device.is_cuda()) cuda_reset_peak_memory();
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first_step = step_;
  int code = 0;
  // The training loss logged is the mean over the steps since the last log line, summed on the
  // device (one read per log line, not one per step).
  Tensor loss_window = Tensor::zeros({}, DType::F32, cfg_.device);
  int64_t window_steps = 0;
  while (step_ < cfg_.steps) {
    StepResult s = train_step();  // queued on the device; nothing read back yet
    add_inplace(loss_window, s.loss);
    ++window_steps;
    const bool last = step_ == cfg_.steps;
    const bool eval_now = (cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || last;
    const bool log_now = step_ % cfg_.log_every == 0 || eval_now || step_ == first_step + 1;
    const double elapsed_now =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool out_of_time = cfg_.max_minutes > 0 && elapsed_now > cfg_.max_minutes * 60;
    const bool save_now = (cfg_.ckpt_every > 0 && step_ % cfg_.ckpt_every == 0) || last ||
                          interrupt_flag().load() || out_of_time;
    if (!log_now && !save_now) continue;
    // From here on values are read from the device (it waits for the step to finish).
    if (stop_if_nonfinite(&code)) break;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tps = tok_per_step * static_cast<double>(step_ - first_step) / elapsed;
    if (log_now) {
      const double loss = loss_window.item() / static_cast<double>(window_steps);
      loss_window.fill(0.0);
      window_steps = 0;
      std::string js = progress_json(s, loss, elapsed, tps);
      const std::vector<MoEStats> moe_stats = model_->moe_stats();  // before validation reruns it
      if (!moe_stats.empty())
        js += str_cat(",\"aux_loss\":", fmt("%.6f", s.aux.item()), ",\"moe\":",
                      moe_stats_json(model_->moe_layer_indices(), moe_stats));
      if (eval_now) {
        const double vl = validation_loss(cfg_.eval_batches);
        js += str_cat(",\"val_loss\":", fmt("%.6f", vl), ",\"val_ppl\":", fmt("%.4f", std::exp(vl)));
        say_line(str_cat("step ", step_, " | validation loss ", fmt("%.4f", vl), " | ppl ", fmt("%.2f", std::exp(vl))));
      }
      log_line(js + "}");
      if (!moe_stats.empty()) routing_.add(step_, moe_stats);
      const double eta = elapsed / static_cast<double>(step_ - first_step) * static_cast<double>(cfg_.steps - step_);
      std::string gpu;
      if (peak > 0) gpu += str_cat(" | MFU ", fmt("%.1f", 100.0 * tps * model_ftok / peak), "%");
      if (cfg_.device.is_cuda())
        gpu += str_cat(" | mem ", fmt("%.1f", gib(cuda_memory_stats().peak_bytes_in_use)), " GiB");
      say_line(str_cat("step ", step_, "/", cfg_.steps, " | loss ", fmt("%.4f", loss), " | lr ",
                       fmt("%.2e", s.lr), " | ", fmt("%.0f", tps), " tok/s", gpu, " | ", hms(elapsed),
                       " elapsed | ETA ", hms(eta), moe_stats_line(moe_stats)));
    }
    if (save_now) save_checkpoint_to(ckpt_path_);
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
