// train_loop.cpp — Trainer::run(): the outer loop with progress, logs, checkpoints and stops.
//
// Design decisions (notes/training.md):
//  * log.jsonl gets one JSON object per logged step, whose "loss" is the mean training loss of
//    the steps since the previous line (summed on the device, read once per line). Every line is
//    valid JSON (a NaN is null) and every append is checked, so a full disk stops the run at the
//    first line it cannot write. On resume, lines past the checkpoint's step are dropped, so the
//    log describes exactly one loss curve (train/run_log.h).
//  * SIGINT (Ctrl-C) and SIGTERM (`timeout`, a cluster's time limit) only set a flag
//    (io/run_dir.h StopSignals); the loop finishes the step in flight, saves a checkpoint and
//    exits with 128 + the signal (130, 143), so a stopped run loses nothing.
//  * The loop reads values from the device only when it logs or saves. A non-finite loss or
//    gradient is caught on the device by the optimizer, which skips that update and every later
//    one; the loop sees the flag at its next log or save. Before every save the parameters and
//    AdamW moments are also checked for NaN/inf on the device (one read), which catches an update
//    that overflowed with a finite gradient norm. Either way the run stops with exit code 3
//    without saving, and the message says which checkpoint, if any, is left.
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "core/device.h"
#include "dist/dist.h"
#include "io/text_io.h"
#include "ops/elementwise.h"
#include "train/cpu_peak.h"
#include "train/loss_plot.h"
#include "train/run_log.h"
#include "nn/generate.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace moe {

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

static const char* signal_name(int sig) { return sig == SIGTERM ? "SIGTERM" : "SIGINT (Ctrl-C)"; }

void Trainer::start_or_trim_log() {
  if (!root()) return;  // rank 0 alone writes files
  if (cfg_.resume.empty()) {
    start_log(log_path_);
    return;
  }
  const LogTrim t = trim_log_for_resume(log_path_, step_);
  if (t.dropped_partial)
    std::cerr << "note: dropped the half-written last line of " << log_path_
              << " (the previous run stopped while writing it)\n";
  if (t.dropped > 0)
    say_line(str_cat("log: dropped ", t.dropped, " line(s) of ", log_path_, " past step ", step_,
                     " (written after the checkpoint by the interrupted run)"));
}

void Trainer::log_line(const std::string& json) const {
  if (root()) append_to_file(log_path_, json + "\n");
}

// The peak MFU is measured against, and what it is ("mfu_peak" in log.jsonl). On an H100/H200
// the dense peak of this run's precision (notes/design.md "Performance": 989 TFLOP/s bf16, 495
// TF32, 67 plain f32); on the CPU the rate our own GEMM reaches on this machine, measured once
// (train/cpu_peak.h); none (flops 0, no MFU) on other GPUs.
struct MfuPeak {
  double flops = 0;
  std::string label;
};
static MfuPeak peak_flops(const Device& dev) {
  if (!dev.is_cuda()) {
    const CpuPeak p = cpu_gemm_peak();
    return {p.flops_per_s, cpu_peak_label(p)};
  }
  const std::string name = describe_device(dev);
  if (name.find("H100") == std::string::npos && name.find("H200") == std::string::npos) return {};
  return cuda_allow_tf32() ? MfuPeak{495e12, "H100/H200 dense TF32 495 TFLOP/s"}
                           : MfuPeak{67e12, "H100/H200 dense f32 67 TFLOP/s"};
}

static double gib(size_t bytes) { return static_cast<double>(bytes) / double(size_t(1) << 30); }

std::string Trainer::progress_json(const StepResult& s, double loss, double elapsed,
                                   double tps) const {
  const double paper_ftok = paper_flops_per_token(cfg_.model);
  const double model_ftok = model_flops_per_token(cfg_.model, model_->active_param_count());
  MfuPeak peak = peak_flops(cfg_.device);
  peak.flops *= world_;  // W ranks, one device each: tokens/s counts all of them
  std::ostringstream js;
  js << "{\"step\":" << step_ << ",\"tokens\":" << static_cast<int64_t>(tokens_seen_)
     << ",\"loss\":" << json_fixed("%.6f", loss) << ",\"lr\":" << json_fixed("%.6g", s.lr)
     << ",\"grad_norm\":" << json_fixed("%.4g", s.grad_norm.item())
     << ",\"tokens_per_s\":" << json_fixed("%.1f", tps)
     << ",\"elapsed_s\":" << json_fixed("%.2f", elapsed)
     << ",\"compute_paper_flops\":" << json_fixed("%.6g", paper_ftok * tokens_seen_)
     << ",\"compute_model_flops\":" << json_fixed("%.6g", model_ftok * tokens_seen_);
  if (peak.flops > 0)
    js << ",\"mfu\":" << json_fixed("%.4f", tps * model_ftok / peak.flops) << ",\"mfu_peak\":\""
       << peak.label << "\"";
  if (cfg_.device.is_cuda())
    js << ",\"peak_mem_gib\":" << fmt("%.2f", gib(cuda_memory_stats().peak_bytes_in_use));
  return js.str();
}

std::string Trainer::kept_checkpoint_note() const {
  std::error_code ec;
  if (last_saved_step_ >= 0)
    return str_cat("The last good checkpoint, step ", last_saved_step_, ", is kept at ",
                   ckpt_path_, "; continue with --resume ", ckpt_path_);
  if (resumed_step_ >= 0)
    return str_cat("No checkpoint was written by this run; the one it resumed from, ",
                   cfg_.resume, " (step ", resumed_step_, "), is unchanged");
  if (fs::exists(ckpt_path_, ec))
    return str_cat("No checkpoint was written by this run (", ckpt_path_,
                   " is an earlier run's, unchanged)");
  return "No checkpoint was written";
}

// A non-finite loss or gradient made the optimizer skip that step and every later one (the
// parameters are those before it); stop without saving.
bool Trainer::stop_if_nonfinite(int* code) const {
  const int64_t bad = opt_->first_nonfinite_step();
  if (!any_rank(bad != 0)) return false;  // the global norm makes ranks agree; make sure
  *code = 3;
  if (!root()) return true;  // rank 0 reports it
  std::cerr << "error: the training loss or gradient is not finite at step " << bad
            << "; that update and later ones were not applied. " << kept_checkpoint_note()
            << ". HINT: lower --lr (or --moe-loss-weight), set --clip-grad 1.0, or check the "
               "data\n";
  *code = 3;
  return true;
}

// The optimizer's guard looks at the loss and the gradient norm; an update can still overflow
// (a huge first moment, a squared gradient past the f32 range) with both finite. No checkpoint
// may hold such a state, so the tensors themselves are checked before every save.
bool Trainer::stop_if_state_nonfinite(int* code) {
  const std::string bad = first_nonfinite_state();
  if (bad.empty()) return false;
  *code = 3;
  if (!root()) return true;  // rank 0 reports it
  std::cerr << "error: after step " << step_ << ", " << bad << " holds a value that is not "
            << "finite (an update overflowed); it was not saved. " << kept_checkpoint_note()
            << ". HINT: lower --lr (or --moe-loss-weight), or set --clip-grad 1.0\n";
  *code = 3;
  return true;
}

// loss.svg at every evaluation and at the end; the MoE pictures (which run the model) only at the
// end of a complete run. A picture must never end a run that trained well, so a failure here is
// reported and the run's own result stands.
void Trainer::write_pictures(bool with_moe) const {
  if (!root()) return;
  const std::string plot = (fs::path(cfg_.out_dir) / "loss.svg").string();
  try {
    write_loss_plot(log_path_, plot, str_cat("moe-gpt train, ", cfg_.out_dir));
    if (!with_moe || !cfg_.model.is_moe()) return;
    const std::string a = (fs::path(cfg_.out_dir) / "moe_tokens_per_expert.svg").string();
    routing_.write_svg(a, model_->moe_layer_indices());
    std::string msg = "wrote " + a;
    if (cfg_.data.data.empty() && world_ == 1) {  // it runs the model: one rank only
      const std::string b = (fs::path(cfg_.out_dir) / "moe_domain_routing.svg").string();
      write_domain_routing_svg(*model_, data_.tokenizer, b);
      msg += " and " + b;
    }
    say_line(msg);
  } catch (const Error& e) {
    std::cerr << "warning: a picture of the run was not written: " << e.what() << "\n";
  }
}

// A short continuation of an empty prompt (nanoGPT-style), so a run shows what the model has
// learned at each validation: 32 tokens, temperature 0.8, top-40, seeded by the step. Newlines
// (the </s> ends of lines) are shown as " / " to keep the sample on one line.
std::string Trainer::sample_text() {
  GenerateConfig g;
  g.max_new_tokens = 32;
  g.temperature = 0.8;
  g.top_k = 40;
  g.seed = static_cast<uint64_t>(step_);
  std::string text = generate_text(*model_, data_.tokenizer, g), out;
  for (char c : text) out += c == '\n' ? std::string(" / ") : std::string(1, c);
  return out;
}

// One log line (and the progress line, and validation when `eval_now`): `loss` is the mean
// training loss since the last line, `elapsed` the seconds since the run (or resume) began.
void Trainer::log_step(const StepResult& s, double loss, bool eval_now, double elapsed,
                       int64_t first_step) {
  const double tps = static_cast<double>(cfg_.batch_size) * cfg_.model.seq_len *
                     static_cast<double>(step_ - first_step) / elapsed;
  std::string js = progress_json(s, loss, elapsed, tps);
  const std::vector<MoEStats> moe_stats = model_->moe_stats();  // before validation reruns it
  if (!moe_stats.empty())
    js += str_cat(",\"aux_loss\":", json_fixed("%.6f", s.aux.item()), ",\"moe\":",
                  moe_stats_json(model_->moe_layer_indices(), moe_stats));
  if (eval_now) {
    const double vl = validation_loss(cfg_.eval_batches);
    js += str_cat(",\"val_loss\":", json_fixed("%.6f", vl), ",\"val_ppl\":",
                  json_fixed("%.4f", std::exp(vl)));
    say_line(str_cat("step ", step_, " | validation loss ", fmt("%.4f", vl), " | ppl ",
                     fmt("%.2f", std::exp(vl))));
    if (!cfg_.quiet) say_line("sample: " + sample_text());
  }
  log_line(js + "}");
  if (!moe_stats.empty()) routing_.add(step_, moe_stats);
  const double eta = elapsed / static_cast<double>(step_ - first_step) *
                     static_cast<double>(cfg_.steps - step_);
  // MFU where a peak is known: an H100/H200, or the CPU's measured GEMM peak (notes/training.md).
  MfuPeak peak = peak_flops(cfg_.device);
  peak.flops *= world_;  // W ranks, one device each: tokens/s counts all of them
  const double model_ftok = model_flops_per_token(cfg_.model, model_->active_param_count());
  std::string gpu;
  if (peak.flops > 0)
    gpu += str_cat(" | MFU ", fmt("%.1f", 100.0 * tps * model_ftok / peak.flops), "%");
  if (cfg_.device.is_cuda())
    gpu += str_cat(" | mem ", fmt("%.1f", gib(cuda_memory_stats().peak_bytes_in_use)), " GiB");
  say_line(str_cat("step ", step_, "/", cfg_.steps, " | loss ", fmt("%.4f", loss), " | lr ",
                   fmt("%.2e", s.lr), " | ", fmt("%.0f", tps), " tok/s", gpu, " | ",
                   hms(elapsed), " elapsed | ETA ", hms(eta), moe_stats_line(moe_stats)));
}

// Where the time of a multi-rank step went (rank 0's view; notes/benchmarks.md). The steps run
// back to back without waiting for the device; at each log or checkpoint point the device is idle
// anyway, so the window since the previous point is closed there: its wall time over its steps,
// and what the transport measured of its exchanges (collect_stats). The first window (the first
// step, which pays for set-up) and the pauses (logging, validation, checkpoints) are left out.
void Trainer::close_comm_window(double now) {
  cuda_synchronize();
  transport_->collect_stats();
  if (comm_mark_step_ >= 0 && step_ > comm_mark_step_) {
    const CommStats& st = comm_stats();
    const CommStats& m = comm_mark_;
    step_comm_.a2a_seconds += st.a2a_seconds - m.a2a_seconds;
    step_comm_.a2a_bytes += st.a2a_bytes - m.a2a_bytes;
    step_comm_.a2a_calls += st.a2a_calls - m.a2a_calls;
    step_comm_.ar_seconds += st.ar_seconds - m.ar_seconds;
    step_comm_.ar_exposed_seconds += st.ar_exposed_seconds - m.ar_exposed_seconds;
    step_comm_.ar_bytes += st.ar_bytes - m.ar_bytes;
    step_comm_.ar_calls += st.ar_calls - m.ar_calls;
    step_seconds_ += now - comm_mark_time_;
    comm_steps_ += step_ - comm_mark_step_;
  }
}

void Trainer::open_comm_window(double now) {
  comm_mark_ = comm_stats();
  comm_mark_time_ = now;
  comm_mark_step_ = step_;
}

void Trainer::say_comm_breakdown() const {
  const CommStats& st = step_comm_;
  const double steps = static_cast<double>(comm_steps_);
  const double step_ms = 1e3 * step_seconds_ / steps;
  const double a2a_ms = 1e3 * st.a2a_seconds / steps;
  const double ar_ms = 1e3 * st.ar_seconds / steps;
  const double exposed_ms = 1e3 * st.ar_exposed_seconds / steps;
  std::string a2a = "none (dense)";
  if (st.a2a_calls > 0)
    a2a = str_cat(fmt("%.1f", a2a_ms), " ms (", fmt("%.0f", st.a2a_calls / steps),
                  " exchanges of ",
                  fmt("%.1f", st.a2a_bytes / static_cast<double>(st.a2a_calls) / 1e6),
                  " MB sent per rank, ", fmt("%.1f", st.a2a_bytes / st.a2a_seconds / 1e9),
                  " GB/s)");
  const std::string how = transport_->asynchronous()
                              ? "timed on the device; the all-reduce runs on its own stream"
                              : "timed on the host; each exchange blocks";
  say_line(str_cat("per training step, over ", comm_steps_, " steps on ", world_, " ranks (",
                   transport_->name(), ", ", how, "): ", fmt("%.1f", step_ms),
                   " ms = compute and the rest ", fmt("%.1f", step_ms - a2a_ms - exposed_ms),
                   " ms + all-to-all ", a2a, " + gradient all-reduce exposed ",
                   fmt("%.1f", exposed_ms), " ms (of ", fmt("%.1f", ar_ms), " ms for ",
                   fmt("%.0f", st.ar_bytes / steps / 1e6), " MB; ",
                   fmt("%.1f", std::max(0.0, ar_ms - exposed_ms)),
                   " ms overlapped the backward); validation and logging not included"));
}

int Trainer::run() {
  StopSignals stop;  // SIGINT and SIGTERM now only ask the loop to stop
  start_or_trim_log();
  if (!cfg_.quiet) say_config();
  // The CPU's peak is measured here, before the clock starts, so it costs no tokens/s.
  if (!cfg_.device.is_cuda()) say_line(cpu_peak_description(cpu_gemm_peak()));
  if (cfg_.device.is_cuda()) cuda_reset_peak_memory();
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
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
    bool out_of_time = cfg_.max_minutes > 0 && seconds() > cfg_.max_minutes * 60;
    int stop_signal = StopSignals::requested();
    if (world_ > 1) {  // every rank must stop (and save) at the same step
      const double agreed = dist_max(stop_signal * 2.0 + (out_of_time ? 1.0 : 0.0));
      stop_signal = static_cast<int>(agreed) / 2;
      out_of_time = static_cast<int>(agreed) % 2 == 1;
    }
    const bool save_now = (cfg_.ckpt_every > 0 && step_ % cfg_.ckpt_every == 0) || last ||
                          stop_signal != 0 || out_of_time;
    if (!log_now && !save_now) continue;
    // From here on values are read from the device (it waits for the step to finish).
    if (world_ > 1) close_comm_window(seconds());
    if (stop_if_nonfinite(&code)) break;
    if (log_now) {
      // The mean over ranks: each rank's loss is the mean over its B/W rows of the global batch.
      double loss = loss_window.item() / static_cast<double>(window_steps);
      if (world_ > 1) loss = dist_sum(loss) / world_;
      loss_window.fill(0.0);
      window_steps = 0;
      log_step(s, loss, eval_now, seconds(), first_step);
      if (eval_now && !last) write_pictures(false);
    }
    if (save_now) {
      if (stop_if_state_nonfinite(&code)) break;
      write_checkpoint(ckpt_path_);
      last_saved_step_ = step_;
    }
    if (stop_signal != 0) {
      if (root())
        std::cerr << "stopped by " << signal_name(stop_signal) << ": saved a checkpoint at step "
                  << step_ << " to " << ckpt_path_ << "; continue with --resume " << ckpt_path_
                  << "\n";
      code = StopSignals::exit_code(stop_signal);
      break;
    }
    if (out_of_time) {
      say_line(str_cat("--max-minutes reached: saved step ", step_, " to ", ckpt_path_));
      break;
    }
    if (world_ > 1) open_comm_window(seconds());
  }
  if (world_ > 1 && comm_steps_ > 0) say_comm_breakdown();
  write_pictures(code == 0 && !cfg_.quiet);
  if (code == 0)
    say_line(str_cat("done: ", step_, " steps, checkpoint ", ckpt_path_, ", log ", log_path_,
                     ", loss plot ", (fs::path(cfg_.out_dir) / "loss.svg").string()));
  return code;
}

}  // namespace moe
