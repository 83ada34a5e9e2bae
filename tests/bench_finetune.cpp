// bench_finetune.cpp — fine-tuning throughput (SPEC §7) in examples per second, CPU.
//
// For the tiny (L4 C128 NH4 T64) and small (L6 C256 NH8 T128) shapes, dense and with experts in
// every other layer (E = 8, 16: the MoE counterparts bench_train uses), randomly initialised, on
// synthetic full-length inputs (B = 16 rows of T random token ids, as a batch of long BoolQ
// passages would be): one training step is forward + last-token head + cross-entropy + backward +
// AdamW; evaluation is a forward without the tape. No output-vocabulary projection is computed
// (the head reads C values), so the vocabulary size barely matters here.
//
//   make bench                      (all benchmarks)
//   build/cpu/bench_finetune [steps] [threads]
// Numbers go to notes/benchmarks.md; they come from here, never from timed unit tests.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/autograd.h"
#include "core/parallel.h"
#include "finetune/classifier.h"
#include "nn/gpt_io.h"
#include "ops/softmax_xent.h"
#include "optim/adamw.h"

using namespace moe;

namespace {

struct Shape4 {
  const char* name;
  int L, C, NH, T, E;  // E = 0: dense; E > 0: experts in every other layer (SPEC §2)
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void bench_shape(const Shape4& s, const BpeTokenizer& tok, int steps) {
  const int B = 16;
  GPTConfig cfg;
  cfg.n_layer = s.L;
  cfg.d_model = s.C;
  cfg.n_head = s.NH;
  cfg.seq_len = s.T;
  cfg.vocab_size = tok.vocab_size();
  cfg.moe_experts = s.E;
  Checkpoint ck;  // in memory: what ./train would have written
  add_gpt_to_checkpoint(ck, GPT(cfg, 1));
  add_tokenizer_to_checkpoint(ck, tok);
  SequenceClassifier model(ck, task_info("boolq"), 0.1, 1);
  AdamW opt(model.params(), AdamWConfig{});
  CounterRng rng(3, 2);
  Rng data_rng(5);
  std::vector<int32_t> ids(B * s.T), labels(B);
  for (auto& v : ids) v = static_cast<int32_t>(data_rng.below(static_cast<uint64_t>(cfg.vocab_size)));
  for (auto& v : labels) v = static_cast<int32_t>(data_rng.below(2));
  const Tensor x = Tensor::from_i32(ids, {B, s.T}), y = Tensor::from_i32(labels, {B});
  const Tensor len = Tensor::full({B}, s.T, DType::I32);
  auto train_step = [&] {
    Tensor loss = softmax_cross_entropy(model.forward(x, len, true, rng), y);
    backward(loss);
    opt.step(1e-4);
    model.params().zero_grad();
  };
  train_step();  // warm-up: first-touch allocations
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) train_step();
  const double train_s = seconds_since(t0) / steps;
  double eval_s = 0;
  {
    NoGradGuard ng;
    model.forward(x, len, false, rng);
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) model.forward(x, len, false, rng);
    eval_s = seconds_since(t0) / steps;
  }
  std::printf("%-9s L%d C%d NH%d T%d E%-2d B%d %9lld params | train %7.1f ex/s (%6.1f ms/step, %8.0f "
              "tok/s) | eval %7.1f ex/s (%6.1f ms/batch)\n",
              s.name, s.L, s.C, s.NH, s.T, s.E, B, static_cast<long long>(model.params().count()),
              B / train_s, 1e3 * train_s, B * s.T / train_s, B / eval_s, 1e3 * eval_s);
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 10;
  if (argc > 2) set_num_threads(std::atoi(argv[2]));
  try {
    std::string text;  // a small corpus just to give the model a tokenizer
    for (int i = 0; i < 200; ++i) text += "the passage says that question " + std::to_string(i) + " is answered\n";
    const BpeTokenizer tok = BpeTokenizer::train(text, 512);
    std::printf("bench_finetune: CPU, %d threads, %d timed steps per shape, vocab %d\n",
                num_threads(), steps, tok.vocab_size());
    bench_shape({"tiny", 4, 128, 4, 64, 0}, tok, steps);
    bench_shape({"tiny-e8", 4, 128, 4, 64, 8}, tok, steps);
    bench_shape({"small", 6, 256, 8, 128, 0}, tok, steps);
    bench_shape({"small-e16", 6, 256, 8, 128, 16}, tok, steps);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
