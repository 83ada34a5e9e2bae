// bench_eval.cpp — priming throughput: items/s of a randomly initialised GPT on a synthetic
// 4-choice task, scored as eval scores them (candidates of each item in one batched forward,
// several items per call, output layer only on the scored positions; SPEC §6).
//
//   ./build/cpu/bench_eval            (make bench)   or   bench_eval <seconds per config>
//
// Configurations: tiny (L4 C128 NH4 T64) and small (L6 C256 NH8 T128), V = 2048 (a trained BPE)
// and V = 50257 (GPT-2's vocabulary, where the output layer dominates). Synthetic items: a context
// of ~60% of T and 4 continuations of T/8..T/4 random tokens. Zero-shot, batch 16 sequences.
// Also timed: the same work with the full output layer (token_logprobs), to show what computing
// logits only where they are read saves. Numbers go to notes/benchmarks.md.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "eval/priming.h"
#include "eval/scoring.h"
#include "nn/gpt.h"

namespace {

using namespace moe;

std::vector<EncodedItem> synthetic_items(int n, int T, int V, Rng& rng) {
  std::vector<EncodedItem> items;
  for (int i = 0; i < n; ++i) {
    EncodedItem it;
    std::vector<int32_t> ctx(static_cast<size_t>(T * 6 / 10));
    for (auto& t : ctx) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V - 1)));
    for (int c = 0; c < 4; ++c) {
      EncodedCandidate ec;
      ec.context = ctx;
      const int len = T / 8 + static_cast<int>(rng.below(static_cast<uint64_t>(T / 8 + 1)));
      for (int k = 0; k < len; ++k)
        ec.continuation.push_back(static_cast<int32_t>(rng.below(static_cast<uint64_t>(V - 1))));
      ec.continuation_chars = 4 * len;
      it.candidates.push_back(ec);
    }
    items.push_back(it);
  }
  return items;
}

// A scorer that hides token_logprobs_from, so every position goes through the output layer.
class FullOutputScorer : public LanguageModelScorer {
 public:
  explicit FullOutputScorer(GPTScorer& s) : s_(s) {}
  int context_length() const override { return s_.context_length(); }
  int eos_id() const override { return s_.eos_id(); }
  std::vector<std::vector<double>> token_logprobs(
      const std::vector<std::vector<int32_t>>& seqs) override {
    return s_.token_logprobs(seqs);
  }

 private:
  GPTScorer& s_;
};

// Items per second over at least `seconds` of scoring (whole passes over the items).
double items_per_second(LanguageModelScorer& scorer, const std::vector<EncodedItem>& items,
                        double seconds) {
  const int eos = scorer.eos_id();
  int64_t done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds) {
    for (size_t j = 0; j < items.size(); j += 4) {  // 4 items x 4 candidates = 16 sequences
      std::vector<ItemSequences> batch;
      for (size_t k = j; k < std::min(items.size(), j + 4); ++k)
        batch.push_back(
            build_item_sequences(items[k], {eos}, scorer.context_length(), Scoring::Mean));
      choose_candidates(batch, scorer, Scoring::Mean);
      done += static_cast<int64_t>(batch.size());
    }
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return static_cast<double>(done) / elapsed;
}

void bench(const char* name, int L, int C, int NH, int T, int V, double seconds) {
  GPTConfig cfg;
  cfg.n_layer = L;
  cfg.d_model = C;
  cfg.n_head = NH;
  cfg.seq_len = T;
  cfg.vocab_size = V;
  GPT model(cfg, 1);
  GPTScorer scorer(model, V - 1);
  FullOutputScorer full(scorer);
  Rng rng(7);
  const std::vector<EncodedItem> items = synthetic_items(32, T, V, rng);
  const double fast = items_per_second(scorer, items, seconds);
  const double slow = items_per_second(full, items, seconds);
  std::printf("%-6s L%d C%d NH%d T%-4d V%-6d  %8.1f items/s  (full output layer: %8.1f items/s)\n",
              name, L, C, NH, T, V, fast, slow);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  std::printf("bench_eval: zero-shot 4-choice priming, batch 16 sequences, %d threads\n",
              moe::num_threads());
  for (const int V : {2048, 50257}) {
    bench("tiny", 4, 128, 4, 64, V, seconds);
    bench("small", 6, 256, 8, 128, V, seconds);
  }
  return 0;
}
