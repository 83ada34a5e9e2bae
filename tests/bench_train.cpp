// bench_train — training throughput of the dense presets on the CPU (make bench).
//
// For each preset: build the model, run a few warm-up steps, then time N optimizer steps
// (forward + backward + AdamW) on random token batches, and report tokens/s, ms/step, the
// model FLOPs rate and the process's peak resident memory. Random tokens are enough: the
// arithmetic of a step does not depend on which tokens it sees.
// Usage: bench_train [steps]    (MOE_THREADS sets the thread count)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/autograd.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "nn/gpt.h"
#include "optim/adamw.h"

using namespace moe;

static double peak_rss_mib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux reports KiB
}

static void bench(const char* name, GPTConfig cfg, int B, int steps) {
  GPT model(cfg, 1);
  AdamW opt(model.params(), AdamWConfig{});
  CounterRng rng(7, 1);
  Rng data_rng(3);
  const int T = cfg.seq_len;
  Tensor x = Tensor::empty({B, T}, DType::I32), y = Tensor::empty({B, T}, DType::I32);  // (B, T)
  auto step = [&] {
    for (int64_t i = 0; i < x.numel(); ++i) {
      x.data<int32_t>()[i] = static_cast<int32_t>(data_rng.below(cfg.vocab_size));
      y.data<int32_t>()[i] = static_cast<int32_t>(data_rng.below(cfg.vocab_size));
    }
    Tensor loss = model.forward_loss(x, y, true, rng);
    backward(loss);
    opt.step(1e-4);
    model.params().zero_grad();
  };
  for (int i = 0; i < 2; ++i) step();  // warm-up: first-touch allocations, thread start
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(B) * T * steps;
  // MoE: the model-FLOPs rate counts active parameters (shared + 2 of E experts per MoE layer).
  int64_t active = model.params().count();
  if (cfg.is_moe()) {
    const int64_t expert = 2LL * cfg.d_model * cfg.d_ff() + cfg.d_ff() + cfg.d_model;
    active -= static_cast<int64_t>(cfg.n_moe_layers()) * (cfg.moe_experts - 2) * expert;
  }
  const double flops_active = model_flops_per_token(cfg, active) * tokens;

  std::printf("%-9s L=%d C=%d NH=%d T=%d V=%d B=%d params=%.2fM (active %.2fM) threads=%d | %8.0f tok/s | "
              "%7.1f ms/step | %6.2f GFLOP/s | peak RSS %.0f MiB\n",
              name, cfg.n_layer, cfg.d_model, cfg.n_head, T, cfg.vocab_size, B,
              model.params().count() / 1e6, active / 1e6, num_threads(), tokens / s, 1e3 * s / steps,
              flops_active / s / 1e9, peak_rss_mib());
}

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 10;
  GPTConfig tiny;  // the `tiny` preset with the embedded corpus' vocabulary size
  tiny.n_layer = 4; tiny.d_model = 128; tiny.n_head = 4; tiny.seq_len = 64; tiny.vocab_size = 2048;
  bench("tiny", tiny, 16, steps);
  GPTConfig tiny_moe = tiny;  // its MoE counterpart (SPEC §2-3): E = 8, every other layer
  tiny_moe.moe_experts = 8;
  bench("tiny-e8", tiny_moe, 16, steps);
  GPTConfig small = tiny;  // the `small` preset with GPT-2's vocabulary
  small.n_layer = 6; small.d_model = 256; small.n_head = 8; small.seq_len = 128;
  small.vocab_size = 50258;
  bench("small", small, 16, std::max(2, steps / 4));
  GPTConfig small_moe = small;
  small_moe.moe_experts = 16;
  bench("small-e16", small_moe, 16, std::max(2, steps / 4));
  return 0;
}
