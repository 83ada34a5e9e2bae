// scoring.cpp — see scoring.h: the scored span of each candidate, its score, and GPTScorer.
#include "eval/scoring.h"

#include <algorithm>
#include <cstdint>

#include "core/autograd.h"
#include "core/check.h"
#include "dist/dist.h"
#include "nn/gpt.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/softmax_xent.h"

namespace moe {

// -------------------------------------------------------------------------------------------------
// scoring rules

Scoring parse_scoring(const std::string& s) {
  if (s == "mean") return Scoring::Mean;
  if (s == "sum") return Scoring::Sum;
  if (s == "char") return Scoring::Char;
  CHECK(false, "unknown scoring rule '", s, "'. HINT: --scoring mean|sum|char");
}

const char* scoring_name(Scoring s) {
  switch (s) {
    case Scoring::Mean: return "mean";
    case Scoring::Sum: return "sum";
    case Scoring::Char: return "char";
  }
  return "?";
}

const char* scoring_description(Scoring s) {
  switch (s) {
    case Scoring::Mean:
      return "mean log-prob of the tokens after the candidates' common prefix (paper's framework)";
    case Scoring::Sum: return "sum of the continuation's token log-probs (lm-eval-harness acc)";
    case Scoring::Char:
      return "sum of the continuation's token log-probs / its length in characters "
             "(lm-eval-harness acc_norm)";
  }
  return "?";
}

size_t common_prefix_length(const std::vector<std::vector<int32_t>>& seqs) {
  // ASSIGNMENT 7 BEGIN common_prefix_length
  if (seqs.empty()) return 0;
  size_t n = seqs[0].size();
  for (const auto& s : seqs) {
    size_t k = 0;
    while (k < n && k < s.size() && s[k] == seqs[0][k]) ++k;
    n = k;
  }
  return n;
  // ASSIGNMENT 7 END
}

ItemSequences build_item_sequences(const EncodedItem& item, const std::vector<int32_t>& prefix,
                                   int max_len, Scoring rule) {
  ASSERT_INTERNAL(!item.candidates.empty() && max_len >= 2);
  ItemSequences out;
  std::vector<int> continuation_start;
  for (const EncodedCandidate& c : item.candidates) {
    std::vector<int32_t> s = prefix;
    s.insert(s.end(), c.context.begin(), c.context.end());
    continuation_start.push_back(static_cast<int>(s.size()));
    s.insert(s.end(), c.continuation.begin(), c.continuation.end());
    out.seqs.push_back(std::move(s));
    out.chars.push_back(c.continuation_chars);
  }
  const int shared = static_cast<int>(common_prefix_length(out.seqs));
  for (size_t i = 0; i < out.seqs.size(); ++i) {
    std::vector<int32_t>& s = out.seqs[i];
    const int len = static_cast<int>(s.size());
    CHECK(len >= 2, "a candidate of ", len, " token(s) has nothing to score. HINT: this happens "
          "when both the context and the continuation encode to no tokens");
    // A span [begin, len) is never empty, so a candidate that is a prefix of another still
    // scores its last token.
    const auto clamp = [&](int b) { return std::max(1, std::min(b, len - 1)); };
    const int b_cont = clamp(continuation_start[i]);
    const int b_shared = item.continuation_only ? b_cont : clamp(shared);
    // Left truncation: keep the last max_len tokens; the spans move with them.
    const int drop = std::max(0, len - max_len);
    if (drop > 0) s.erase(s.begin(), s.begin() + drop);
    out.shared_begin.push_back(std::max(1, b_shared - drop));
    out.continuation_begin.push_back(std::max(1, b_cont - drop));
    out.end.push_back(len - drop);
    out.dropped.push_back(drop);
    out.begin.push_back(span_begin(out, i, rule));
  }
  return out;
}

int span_begin(const ItemSequences& item, size_t i, Scoring rule) {
  return rule == Scoring::Mean ? item.shared_begin[i] : item.continuation_begin[i];
}

int first_scored(const ItemSequences& item, size_t i) {
  return std::min(item.shared_begin[i], item.continuation_begin[i]);
}

std::vector<double> candidate_scores(const ItemSequences& item,
                                     const std::vector<std::vector<double>>& logprobs,
                                     Scoring rule) {
  // ASSIGNMENT 7 BEGIN candidate_scores
  ASSERT_INTERNAL(logprobs.size() == item.seqs.size());
  std::vector<double> scores;
  for (size_t i = 0; i < item.seqs.size(); ++i) {
    ASSERT_INTERNAL(logprobs[i].size() == item.seqs[i].size());
    const int begin = span_begin(item, i, rule);
    double sum = 0.0;
    for (int p = begin; p < item.end[i]; ++p) sum += logprobs[i][static_cast<size_t>(p)];
    const int n = item.end[i] - begin;
    switch (rule) {
      case Scoring::Mean: scores.push_back(sum / std::max(n, 1)); break;
      case Scoring::Sum: scores.push_back(sum); break;
      case Scoring::Char:
        scores.push_back(sum / static_cast<double>(std::max<int64_t>(item.chars[i], 1)));
        break;
    }
  }
  return scores;
  // ASSIGNMENT 7 END
}

// -------------------------------------------------------------------------------------------------
// GPTScorer

GPTScorer::GPTScorer(GPT& model, int eos_id) : model_(model), eos_id_(eos_id) {}

int GPTScorer::context_length() const { return model_.config().seq_len; }

std::vector<std::vector<double>> GPTScorer::token_logprobs(
    const std::vector<std::vector<int32_t>>& seqs) {
  return token_logprobs_from(seqs, std::vector<int>(seqs.size(), 1));
}

// W ranks (SPEC §4): every rank gets the same `seqs`, scores rows [r*per, (r+1)*per) of them
// (per = ceil(B / W); a rank short of rows pads with empty ones, which the padding mask routes
// nowhere, so every rank runs the same shapes in step, as the all-to-all needs), and the rows'
// log-probabilities are collected on every rank by summing zero-filled buffers (exact). With an
// eval capacity where nothing drops, each row scores as it would in one process.
std::vector<std::vector<double>> GPTScorer::token_logprobs_from(
    const std::vector<std::vector<int32_t>>& seqs, const std::vector<int>& first) {
  const ExpertParallel& ep = model_.expert_parallel();
  if (ep.world <= 1) return score_rows(seqs, first, 1);
  const size_t B = seqs.size(), W = static_cast<size_t>(ep.world);
  const size_t per = (B + W - 1) / W, lo = std::min(B, per * ep.rank), hi = std::min(B, lo + per);
  std::vector<std::vector<int32_t>> mine(seqs.begin() + lo, seqs.begin() + hi);
  std::vector<int> mine_first(first.begin() + lo, first.begin() + hi);
  mine.resize(per);  // empty rows: padding only
  mine_first.resize(per, 1);
  size_t width = 1;  // every rank pads to the longest row of the whole batch: equal shapes
  for (const auto& q : seqs) width = std::max(width, q.size());
  const std::vector<std::vector<double>> part = score_rows(mine, mine_first, static_cast<int>(width));
  std::vector<size_t> offset(B + 1, 0);
  for (size_t b = 0; b < B; ++b) offset[b + 1] = offset[b] + seqs[b].size();
  std::vector<double> flat(offset[B], 0.0);
  for (size_t b = lo; b < hi; ++b)
    std::copy(part[b - lo].begin(), part[b - lo].end(), flat.begin() + offset[b]);
  dist_sum_inplace(flat);
  std::vector<std::vector<double>> out(B);
  for (size_t b = 0; b < B; ++b) out[b].assign(flat.begin() + offset[b], flat.begin() + offset[b + 1]);
  return out;
}

std::vector<std::vector<double>> GPTScorer::score_rows(
    const std::vector<std::vector<int32_t>>& seqs, const std::vector<int>& first, int width) {
  ASSERT_INTERNAL(first.size() == seqs.size());
  std::vector<std::vector<double>> out(seqs.size());
  if (seqs.empty()) return out;  // the same on every rank: B = 0 gives per = 0 everywhere
  NoGradGuard no_grad;
  const int B = static_cast<int>(seqs.size());
  int L = width;
  for (const auto& s : seqs) L = std::max(L, static_cast<int>(s.size()));
  CHECK(L <= context_length(), "a sequence of ", L, " tokens is longer than the context (",
        context_length(), ")");
  // ids (B, L), L at least `width`: right-padded with </s>; padding follows every real token, so causal attention
  // never lets it reach a real position, and the lengths tell the MoE gate which positions are
  // padding, so they take no expert slot (SPEC §3 step 5a): a score does not depend on the other
  // items of the batch except through capacity. forward_hidden moves both to the model's device.
  std::vector<int32_t> ids(static_cast<size_t>(B) * L, eos_id_), lengths(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    std::copy(seqs[b].begin(), seqs[b].end(), ids.begin() + b * L);
    lengths[b] = static_cast<int32_t>(seqs[b].size());
  }
  const Tensor h = model_.forward_hidden(Tensor::from_i32(ids, {B, L}), false, rng_,
                                         Tensor::from_i32(lengths, {B}));
  const int64_t C = h.size(2);
  const Tensor h_rows = h.contiguous().view({static_cast<int64_t>(B) * L, C});  // (B*L, C)
  const Device dev = h_rows.device();

  // Position i of sequence b is predicted by the hidden state at i-1, row b*L + i-1 of h_rows.
  std::vector<std::pair<int, int>> where;  // (b, i) per gathered row
  for (int b = 0; b < B; ++b) {
    out[b].assign(seqs[b].size(), 0.0);
    for (int i = std::max(1, first[b]); i < static_cast<int>(seqs[b].size()); ++i)
      where.emplace_back(b, i);
  }
  const Tensor wte = model_.params().get("wte");  // (V, C), tied output embedding
  const int64_t V = wte.size(0);
  // Rows per output-layer call, so that the (rows, V) logits stay near 128 MB even for GPT-2's
  // 50k vocabulary and long perplexity blocks.
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(1, (int64_t{1} << 25) / V));
  for (size_t r0 = 0; r0 < where.size(); r0 += chunk) {
    const int64_t M = static_cast<int64_t>(std::min(chunk, where.size() - r0));
    // The row numbers and targets are known on the host; they travel to the device (a copy
    // that does not wait for the GPU), and the gather, the output layer and the log-softmax
    // all run where the hidden states are. Only the (M,) NLLs come back.
    std::vector<int32_t> rows_idx(static_cast<size_t>(M)), targets(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) {
      const auto [b, i] = where[r0 + static_cast<size_t>(m)];
      rows_idx[static_cast<size_t>(m)] = b * L + (i - 1);
      targets[static_cast<size_t>(m)] = seqs[b][static_cast<size_t>(i)];
    }
    // A gather of table rows is an embedding lookup into h_rows (bitwise a copy on both
    // devices, so the CPU path gives exactly what the host-side copy gave).
    const Tensor rows = embedding(Tensor::from_i32(rows_idx, {M}).to(dev), h_rows);  // (M, C)
    const Tensor logits = linear(rows, wte, Tensor());                                 // (M, V)
    const std::vector<double> nll =
        cross_entropy_rows(logits, Tensor::from_i32(targets, {M}).to(dev)).to_f64_vector();
    for (int64_t m = 0; m < M; ++m) {
      const auto [b, i] = where[r0 + static_cast<size_t>(m)];
      out[b][static_cast<size_t>(i)] = -nll[static_cast<size_t>(m)];
    }
  }
  return out;
}

}  // namespace moe
