// bench_train_gpu — training throughput on the GPU (make bench; notes/benchmarks.md).
//
// For each shape: build the model on cuda:0, run warm-up steps, then time N optimizer steps
// (forward + backward + AdamW, all on the device) with device events around the region, and
// report tokens/s, ms/step, MFU and the peak GPU memory of the caching allocator. MFU counts
// model FLOPs of the *active* parameters (6 N_active + 12 L T C per token, SPEC §5) against the
// H100/H200 dense peak of the precision in use: 495 TFLOP/s for TF32 (the default here), 67 for
// strict f32. Dropout is 0, as in ../shared/bench/torch_ref.py, whose rows these are compared
// with (same shapes: B=16, T=1024, V=50304 for the 125M rows; torch_ref's own "tiny" shape).
// One fixed batch of random tokens is reused: a step's arithmetic does not depend on the tokens.
//
// Usage: bench_train_gpu [steps] [only]   (only: run the rows whose name contains it)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/autograd.h"
#include "core/device.h"
#include "core/rng.h"
#include "nn/gpt.h"
#include "ops/elementwise.h"
#include "optim/adamw.h"

using namespace moe;

namespace {

GPTConfig shape(int L, int C, int NH, int T, int V, int E) {
  GPTConfig c;
  c.n_layer = L;
  c.d_model = C;
  c.n_head = NH;
  c.seq_len = T;
  c.vocab_size = V;
  c.moe_experts = E;
  c.dropout = 0.0;
  return c;
}

Tensor random_tokens(int B, int T, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(B) * T);
  for (int32_t& x : v) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  return Tensor::from_i32(v, {B, T}).to(cuda());
}

void bench(const char* name, const GPTConfig& cfg, int B, int steps) {
  cuda_empty_cache();
  GPT model(cfg, 1, cuda());
  AdamW opt(model.params(), AdamWConfig{});
  CounterRng rng(7, 1);
  const int T = cfg.seq_len;
  const Tensor x = random_tokens(B, T, cfg.vocab_size, 3), y = random_tokens(B, T, cfg.vocab_size, 4);
  auto step = [&] {
    Tensor loss = model.forward_loss(x, y, true, rng);
    if (model.aux_loss().defined()) loss = add(loss, scale(model.aux_loss(), 0.01));
    backward(loss);
    opt.step(1e-4, nullptr, loss.detach());
    model.params().zero_grad();
    return loss;
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator cache, cuBLAS heuristics
  cuda_synchronize();
  cuda_reset_peak_memory();
  const auto t0 = std::chrono::steady_clock::now();
  Tensor last;
  for (int i = 0; i < steps; ++i) last = step();
  cuda_synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(B) * T * steps;
  const double flops = model_flops_per_token(cfg, model.active_param_count()) * tokens;
  const double peak = cuda_allow_tf32() ? 495e12 : 67e12;
  std::printf("%-14s L=%d C=%d NH=%d T=%d V=%d B=%d E=%d params=%.1fM (active %.1fM) | %9.0f tok/s"
              " | %7.2f ms/step | %6.1f TFLOP/s | MFU %5.1f%% | peak mem %.1f GiB | loss %.3f\n",
              name, cfg.n_layer, cfg.d_model, cfg.n_head, T, cfg.vocab_size, B, cfg.moe_experts,
              model.params().count() / 1e6, model.active_param_count() / 1e6, tokens / s,
              1e3 * s / steps, flops / s / 1e12, 100.0 * flops / s / peak,
              static_cast<double>(cuda_memory_stats().peak_bytes_in_use) / double(1 << 30),
              last.item());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  devices_init();
  if (!cuda_available()) {
    std::printf("bench_train_gpu: skipped, no GPU (%s)\n", devices_describe().c_str());
    return 0;
  }
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string only = argc > 2 ? argv[2] : "";
  cuda_set_allow_tf32(true);  // fp32 storage, TF32 tensor cores (notes/cuda.md: f32 data, TF32 products)
  std::printf("bench_train_gpu: %s, TF32 on, %d timed steps\n", devices_describe().c_str(), steps);
  struct Row {
    const char* name;
    GPTConfig cfg;
    int B;
  };
  const Row rows[] = {
      {"tiny", shape(4, 128, 4, 1024, 50304, 0), 16},
      {"small", shape(6, 256, 8, 1024, 50304, 0), 16},
      {"dense125M", shape(12, 768, 12, 1024, 50304, 0), 16},
      {"moe125M-E16", shape(12, 768, 12, 1024, 50304, 16), 16},
      {"torchtiny-dense", shape(6, 384, 6, 256, 8192, 0), 64},
      {"torchtiny-moe-E8", shape(6, 384, 6, 256, 8192, 8), 64},
  };
  for (const Row& r : rows)
    if (only.empty() || std::string(r.name).find(only) != std::string::npos)
      bench(r.name, r.cfg, r.B, steps);
  return 0;
}
