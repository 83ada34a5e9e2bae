// priming.cpp — see priming.h.
#include "eval/priming.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "core/check.h"
#include "data/bpe.h"
#include "eval/fewshot.h"
#include "eval/metrics.h"
#include "eval/report.h"
#include "io/text_io.h"

namespace moe {

TextEncoder make_text_encoder(const BpeTokenizer& tok) {
  return [&tok](const std::string& text) {
    std::vector<int32_t> out;
    size_t start = 0;
    while (true) {
      const size_t nl = text.find('\n', start);
      const std::vector<int32_t> part = tok.encode(text.substr(start, nl - start));
      out.insert(out.end(), part.begin(), part.end());
      if (nl == std::string::npos) break;
      out.push_back(tok.eos_id());
      start = nl + 1;
    }
    return out;
  };
}

EncodedItem encode_item(const TaskItem& item, const TextEncoder& encode) {
  EncodedItem e;
  e.continuation_only = item.continuation_only;
  const std::string* last_context = nullptr;  // candidates often share the context: encode once
  for (const Candidate& c : item.candidates) {
    EncodedCandidate ec;
    ec.context = (last_context && *last_context == c.context) ? e.candidates.back().context
                                                              : encode(c.context);
    ec.continuation = encode(c.continuation);
    ec.continuation_chars = utf8_length(c.continuation);
    last_context = &c.context;
    e.candidates.push_back(std::move(ec));
  }
  return e;
}

std::vector<int> choose_candidates(const std::vector<ItemSequences>& batch,
                                   LanguageModelScorer& scorer, Scoring rule) {
  // Flatten every candidate of every item into one scorer call.
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int> first;
  for (const ItemSequences& it : batch) {
    seqs.insert(seqs.end(), it.seqs.begin(), it.seqs.end());
    first.insert(first.end(), it.begin.begin(), it.begin.end());
  }
  const std::vector<std::vector<double>> lp = scorer.token_logprobs_from(seqs, first);
  CHECK(lp.size() == seqs.size(), "the scorer returned ", lp.size(), " rows for ", seqs.size(),
        " sequences");
  std::vector<int> chosen;
  size_t offset = 0;
  for (const ItemSequences& it : batch) {
    const std::vector<std::vector<double>> mine(lp.begin() + offset,
                                                lp.begin() + offset + it.seqs.size());
    chosen.push_back(argmax_first(candidate_scores(it, mine, rule)));
    offset += it.seqs.size();
  }
  return chosen;
}

namespace {

// Demonstration tokens, encoded the first time a draw asks for them.
class DemoCache {
 public:
  DemoCache(const std::vector<TaskItem>& pool, const TextEncoder& encode)
      : pool_(pool), encode_(encode), ids_(pool.size()), done_(pool.size(), false) {}
  const std::vector<int32_t>* get(int64_t i) {
    if (!done_[static_cast<size_t>(i)]) {
      ids_[static_cast<size_t>(i)] = encode_(pool_[static_cast<size_t>(i)].demo);
      done_[static_cast<size_t>(i)] = true;
    }
    return &ids_[static_cast<size_t>(i)];
  }
  int64_t size() const { return static_cast<int64_t>(pool_.size()); }

 private:
  const std::vector<TaskItem>& pool_;
  const TextEncoder& encode_;
  std::vector<std::vector<int32_t>> ids_;
  std::vector<bool> done_;
};

// Add item j's metrics (chosen candidate `pred`) to the running sums of a draw.
void count_item(const TaskData& task, const TaskItem& item, int pred, DrawMetrics* sums) {
  if (task.is_record) {
    const std::string& entity = item.labels.at(static_cast<size_t>(pred));
    const double em = max_exact_match(entity, item.answers);
    sums->acc += em;
    sums->em += em;
    sums->f1 += max_token_f1(entity, item.answers);
  } else {
    sums->acc += (pred == item.gold) ? 1.0 : 0.0;
  }
}

}  // namespace

PrimingResult evaluate_priming(const TaskData& task, LanguageModelScorer& scorer,
                               const TextEncoder& encode, const PrimingOptions& opts) {
  const int64_t n = opts.limit > 0 ? std::min<int64_t>(opts.limit, task.items.size())
                                   : static_cast<int64_t>(task.items.size());
  CHECK(n > 0, task.name, ": no items to evaluate");
  std::vector<EncodedItem> encoded;
  for (int64_t j = 0; j < n; ++j) encoded.push_back(encode_item(task.items[j], encode));
  DemoCache demos(task.pool_is_eval ? task.items : task.pool, encode);

  PrimingResult result;
  result.n_items = n;
  const auto t0 = std::chrono::steady_clock::now();
  Progress progress(task.name + (opts.shots > 0 ? str_cat(" ", opts.shots, "-shot") : " 0-shot"),
                    n * opts.draws, opts.progress);
  for (int d = 0; d < opts.draws; ++d) {
    DrawMetrics sums;
    for (int64_t j0 = 0; j0 < n;) {
      // Fill one model call with whole items (at least one) up to batch_size sequences.
      std::vector<ItemSequences> batch;
      int64_t j = j0;
      size_t n_seqs = 0;
      while (j < n && (batch.empty() || n_seqs + encoded[j].candidates.size() <=
                                            static_cast<size_t>(opts.batch_size))) {
        std::vector<const std::vector<int32_t>*> shown;
        if (opts.shots > 0)
          for (int64_t i : sample_demonstrations(demos.size(), opts.shots, static_cast<uint64_t>(d),
                                                 j, task.pool_is_eval ? j : -1))
            shown.push_back(demos.get(i));
        batch.push_back(build_item_sequences(encoded[j], fewshot_prefix(shown, scorer.eos_id()),
                                             scorer.context_length(), opts.scoring));
        n_seqs += encoded[j].candidates.size();
        ++j;
      }
      const std::vector<int> chosen = choose_candidates(batch, scorer, opts.scoring);
      for (int64_t k = j0; k < j; ++k) count_item(task, task.items[k], chosen[k - j0], &sums);
      progress.update(static_cast<int64_t>(d) * n + j);
      j0 = j;
    }
    result.draws.push_back({sums.acc / n, sums.em / n, sums.f1 / n});
  }
  progress.finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.items_per_s = static_cast<double>(n) * opts.draws / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace moe
