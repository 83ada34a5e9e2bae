// priming.cpp — see priming.h.
#include "eval/priming.h"

#include <algorithm>
#include <chrono>
#include <cmath>
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

std::vector<std::vector<std::vector<double>>> score_items(const std::vector<ItemSequences>& batch,
                                                         LanguageModelScorer& scorer) {
  // Flatten every candidate of every item into one scorer call, reading from the first position
  // any rule scores.
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int> first;
  for (const ItemSequences& it : batch) {
    seqs.insert(seqs.end(), it.seqs.begin(), it.seqs.end());
    for (size_t i = 0; i < it.seqs.size(); ++i) first.push_back(first_scored(it, i));
  }
  const std::vector<std::vector<double>> lp = scorer.token_logprobs_from(seqs, first);
  CHECK(lp.size() == seqs.size(), "the scorer returned ", lp.size(), " rows for ", seqs.size(),
        " sequences");
  std::vector<std::vector<std::vector<double>>> out;
  size_t offset = 0;
  for (const ItemSequences& it : batch) {
    const std::vector<std::vector<double>> mine(lp.begin() + offset,
                                                lp.begin() + offset + it.seqs.size());
    std::vector<std::vector<double>> by_rule;
    for (const Scoring rule : kAllScorings) by_rule.push_back(candidate_scores(it, mine, rule));
    for (const double x : by_rule[0])
      CHECK(!std::isnan(x), "a candidate's score is NaN: the model's log-probabilities are not "
            "finite. HINT: the checkpoint's weights overflow in the forward pass; evaluate an "
            "earlier checkpoint");
    out.push_back(std::move(by_rule));
    offset += it.seqs.size();
  }
  return out;
}

std::vector<int> choose_candidates(const std::vector<ItemSequences>& batch,
                                   LanguageModelScorer& scorer, Scoring rule) {
  std::vector<int> chosen;
  for (const auto& by_rule : score_items(batch, scorer))
    chosen.push_back(argmax_first(by_rule[static_cast<size_t>(scoring_index(rule))]));
  return chosen;
}

int demonstrations_kept(const std::vector<int>& demo_lengths, int dropped) {
  int kept = 0, start = 1;  // demonstration 1 starts after the leading </s>
  for (const int len : demo_lengths) {
    if (start >= dropped) ++kept;
    start += len + 1;  // the demonstration and its </s>
  }
  return kept;
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

// The running sums of one draw, and per item across draws.
struct Tally {
  DrawMetrics draw;
  PrimingResult* result;
  int64_t demos_sum = 0, demo_prompts = 0;
};

// Count item j of a draw, given its scores under every rule.
void count_item(const TaskData& task, int64_t j, const std::vector<std::vector<double>>& scores,
                Scoring headline, Tally* t) {
  const TaskItem& item = task.items[static_cast<size_t>(j)];
  PrimingResult& r = *t->result;
  for (const Scoring rule : kAllScorings) {
    const int k = scoring_index(rule);
    const int pred = argmax_first(scores[static_cast<size_t>(k)]);
    const double ok = task.is_record
        ? max_exact_match(item.labels.at(static_cast<size_t>(pred)), item.answers)
        : (pred == item.gold ? 1.0 : 0.0);
    t->draw.acc_by_rule[k] += ok;
    r.item_acc[k][static_cast<size_t>(j)] += ok;
    if (rule != headline) continue;
    t->draw.acc += ok;
    if (!task.is_record) continue;
    const double f1 = max_token_f1(item.labels.at(static_cast<size_t>(pred)), item.answers);
    t->draw.em += ok;
    t->draw.f1 += f1;
    r.item_em[static_cast<size_t>(j)] += ok;
    r.item_f1[static_cast<size_t>(j)] += f1;
  }
}

// One item's prompt for draw d: the demonstrations shown (pool indices) and the sequences.
ItemSequences build_prompt(const TaskData& task, const EncodedItem& item, int64_t j, int d,
                           DemoCache* demos, LanguageModelScorer& scorer,
                           const PrimingOptions& opts, std::vector<int64_t>* shown_ids,
                           std::vector<int>* demo_lengths) {
  std::vector<const std::vector<int32_t>*> shown;
  if (opts.shots > 0)
    for (int64_t i : sample_demonstrations(demos->size(), opts.shots, static_cast<uint64_t>(d), j,
                                           task.pool_is_eval ? j : -1)) {
      shown.push_back(demos->get(i));
      shown_ids->push_back(i);
      demo_lengths->push_back(static_cast<int>(shown.back()->size()));
    }
  return build_item_sequences(item, fewshot_prefix(shown, scorer.eos_id()),
                              scorer.context_length(), opts.scoring);
}

// Score items [j0, j) of draw d in one call, count them, and report them to opts.on_item.
void run_batch(const TaskData& task, const std::vector<EncodedItem>& encoded, int64_t j0,
               int64_t j, int d, DemoCache* demos, LanguageModelScorer& scorer,
               const PrimingOptions& opts, Tally* t) {
  std::vector<ItemSequences> batch;
  std::vector<ItemRecord> records(static_cast<size_t>(j - j0));
  for (int64_t k = j0; k < j; ++k) {
    ItemRecord& rec = records[static_cast<size_t>(k - j0)];
    std::vector<int> lengths;
    batch.push_back(build_prompt(task, encoded[static_cast<size_t>(k)], k, d, demos, scorer, opts,
                                 &rec.demos, &lengths));
    rec.dropped_tokens = *std::max_element(batch.back().dropped.begin(),
                                           batch.back().dropped.end());
    rec.demos_complete = demonstrations_kept(lengths, rec.dropped_tokens);
  }
  const auto scores = score_items(batch, scorer);
  for (int64_t k = j0; k < j; ++k) {
    ItemRecord& rec = records[static_cast<size_t>(k - j0)];
    count_item(task, k, scores[static_cast<size_t>(k - j0)], opts.scoring, t);
    if (opts.shots > 0) {
      t->demos_sum += rec.demos_complete;
      t->result->demos_complete_min = t->demo_prompts++ == 0
          ? rec.demos_complete : std::min(t->result->demos_complete_min, rec.demos_complete);
    }
    if (rec.dropped_tokens > 0) ++t->result->truncated_prompts;
    if (!opts.on_item) continue;
    rec.draw = d;
    rec.index = k;
    rec.scores = scores[static_cast<size_t>(k - j0)];
    rec.prediction = argmax_first(rec.scores[static_cast<size_t>(scoring_index(opts.scoring))]);
    opts.on_item(rec);
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
  for (auto& v : result.item_acc) v.assign(static_cast<size_t>(n), 0.0);
  if (task.is_record) {
    result.item_em.assign(static_cast<size_t>(n), 0.0);
    result.item_f1.assign(static_cast<size_t>(n), 0.0);
  }
  Tally tally{DrawMetrics{}, &result};
  const auto t0 = std::chrono::steady_clock::now();
  Progress progress(task.name + (opts.shots > 0 ? str_cat(" ", opts.shots, "-shot") : " 0-shot"),
                    n * opts.draws, opts.progress);
  for (int d = 0; d < opts.draws; ++d) {
    tally.draw = DrawMetrics{};
    for (int64_t j0 = 0; j0 < n;) {
      // Fill one model call with whole items (at least one) up to batch_size sequences.
      int64_t j = j0;
      size_t n_seqs = 0;
      while (j < n && (j == j0 || n_seqs + encoded[j].candidates.size() <=
                                      static_cast<size_t>(opts.batch_size)))
        n_seqs += encoded[j++].candidates.size();
      run_batch(task, encoded, j0, j, d, &demos, scorer, opts, &tally);
      progress.update(static_cast<int64_t>(d) * n + j);
      j0 = j;
    }
    DrawMetrics m = tally.draw;
    for (double* x : {&m.acc, &m.em, &m.f1, &m.acc_by_rule[0], &m.acc_by_rule[1],
                      &m.acc_by_rule[2]})
      *x /= static_cast<double>(n);
    result.draws.push_back(m);
  }
  progress.finish();
  for (auto* v : {&result.item_acc[0], &result.item_acc[1], &result.item_acc[2], &result.item_em,
                  &result.item_f1})
    for (double& x : *v) x /= opts.draws;
  if (tally.demo_prompts > 0)
    result.demos_complete_mean = static_cast<double>(tally.demos_sum) / tally.demo_prompts;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.items_per_s = static_cast<double>(n) * opts.draws / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace moe
