// scoring.h — how a candidate continuation gets a number (SPEC §6 "Scoring"), and the model
// interface the evaluation talks to.
//
// The model is anything that returns per-token log-probabilities (LanguageModelScorer). GPTScorer
// wraps our GPT; tests use a hand-built scorer whose answers are known in advance, so that
// templates, spans and few-shot prompts can be checked exactly.
//
// One candidate's token sequence is   prefix ++ tokens(context) ++ tokens(continuation)
// where the prefix is </s> (a document start; it also lets the first text token be scored) and,
// in few-shot runs, the demonstrations, each followed by </s> (fewshot.h). Which positions count:
//   mean (default; the paper's framework): the tokens after the longest token prefix that ALL
//        candidates of the item share, averaged: mean log p. Choices that begin with the same
//        word do not get credit for it. At least the last token is always scored.
//   sum  (lm-evaluation-harness `acc`): the continuation's tokens, summed.
//   char (lm-evaluation-harness `acc_norm`): that sum divided by the continuation's length in
//        characters (UTF-8 code points), which removes most of the bias towards short answers.
// An item flagged continuation_only (WinoGrande partial scoring) scores its continuation's tokens
// under every rule (mean: averaged), because its candidates differ in the context instead.
// Too long: a sequence longer than the context length T loses tokens on the left (each candidate
// on its own, as lm-evaluation-harness does); scored positions move with it and never include
// position 0 (nothing predicts it).
//
// All three rules come from the same log-probabilities, so one pass reports all of them (the
// --scoring rule picks the headline accuracy; report.h).
//
// Left out: caching of shared prefixes across candidates (the batched pass recomputes them),
// calibration (e.g. dividing by an unconditional probability).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/philox.h"
#include "core/rng.h"

namespace moe {

class GPT;

// ---- the model interface ------------------------------------------------------------------------

class LanguageModelScorer {
 public:
  virtual ~LanguageModelScorer() = default;
  virtual int context_length() const = 0;  // T: the longest sequence token_logprobs accepts
  virtual int eos_id() const = 0;          // </s>: document start and few-shot separator
  // For each sequence (1 <= length <= context_length()): out[s][i] = log p(seq[i] | seq[<i]) for
  // i >= 1; out[s][0] = 0 (nothing predicts the first token). Sequences of one call may differ
  // in length.
  virtual std::vector<std::vector<double>> token_logprobs(
      const std::vector<std::vector<int32_t>>& seqs) = 0;
  // The same, when only positions i >= first[s] will be read (the others may be left 0). Priming
  // scores a few tokens at the end of long prompts, and the output layer (V columns per position)
  // is most of a small model's work, so GPTScorer skips it where it is not needed. The default
  // computes everything.
  virtual std::vector<std::vector<double>> token_logprobs_from(
      const std::vector<std::vector<int32_t>>& seqs, const std::vector<int>& first) {
    (void)first;
    return token_logprobs(seqs);
  }
};

// Our GPT as a scorer: all sequences of one call are right-padded to the longest and run in ONE
// forward pass without autograd; padding sits after every real token, so causal attention keeps
// it from changing any real position. The tied output layer (h @ wte^T, as GPT::forward_logits)
// is applied only to the positions asked for, and log p comes from cross_entropy_rows (a stable
// log-softmax per row). A test checks the result against forward_logits.
// Devices: everything runs on the model's device (the GPU when the program chose it). The host
// builds the padded ids, the row numbers of the positions asked for and their targets (it knows
// them already) and sends them over; the rows are gathered from the hidden states there (an
// embedding lookup into the (B*L, C) states), multiplied by the tied embedding and turned into
// NLLs there, and only the NLL vector — one number per scored position — comes back, once per
// chunk of rows (a chunk keeps the (rows, V) logits near 128 MB; usually one chunk per call).
class GPTScorer : public LanguageModelScorer {
 public:
  GPTScorer(GPT& model, int eos_id);
  int context_length() const override;
  int eos_id() const override { return eos_id_; }
  std::vector<std::vector<double>> token_logprobs(
      const std::vector<std::vector<int32_t>>& seqs) override;
  std::vector<std::vector<double>> token_logprobs_from(
      const std::vector<std::vector<int32_t>>& seqs, const std::vector<int>& first) override;

 private:
  // The forward of these rows on this rank (token_logprobs_from splits a batch over W ranks),
  // padded to at least `width` positions.
  std::vector<std::vector<double>> score_rows(const std::vector<std::vector<int32_t>>& seqs,
                                              const std::vector<int>& first, int width);
  GPT& model_;
  int eos_id_;
  CounterRng rng_;  // forward_hidden wants one; evaluation draws nothing (dropout off)
};

// ---- scoring rules ------------------------------------------------------------------------------

enum class Scoring { Mean, Sum, Char };
Scoring parse_scoring(const std::string& s);  // "mean" | "sum" | "char"
const char* scoring_name(Scoring s);
const char* scoring_description(Scoring s);   // one line for the output

// A candidate after tokenisation.
struct EncodedCandidate {
  std::vector<int32_t> context, continuation;
  int64_t continuation_chars = 0;  // code points of the continuation text (for `char`)
};
struct EncodedItem {
  std::vector<EncodedCandidate> candidates;
  bool continuation_only = false;
};

// The sequences of one item, ready for the scorer, with the positions [begin, end) to score.
// Every rule's span ends at `end`; they differ in where they start, and both starts are kept so
// that one scorer call (positions from first_scored()) gives the scores of all three rules.
struct ItemSequences {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int> begin, end;        // the span of the rule the item was built for
  std::vector<int> shared_begin;      // mean: after the candidates' common prefix
  std::vector<int> continuation_begin;  // sum, char (and mean when continuation_only)
  std::vector<int64_t> chars;
  std::vector<int> dropped;           // tokens cut on the left of each sequence (left truncation)
};

// Build prefix ++ context ++ continuation for every candidate, find each rule's scored span,
// then cut each sequence to its last `max_len` tokens (see the file comment).
ItemSequences build_item_sequences(const EncodedItem& item, const std::vector<int32_t>& prefix,
                                   int max_len, Scoring rule);

// Where candidate i's span starts under `rule`, and the first position any rule reads.
int span_begin(const ItemSequences& item, size_t i, Scoring rule);
int first_scored(const ItemSequences& item, size_t i);

// Longest prefix shared by all sequences (0 for an empty list).
size_t common_prefix_length(const std::vector<std::vector<int32_t>>& seqs);

// One score per candidate from the scorer's log-probabilities of item.seqs (same order); the
// rows must hold positions from first_scored() on.
std::vector<double> candidate_scores(const ItemSequences& item,
                                     const std::vector<std::vector<double>>& logprobs,
                                     Scoring rule);

// The three rules in the order of this array, for code that reports all of them.
constexpr Scoring kAllScorings[3] = {Scoring::Mean, Scoring::Sum, Scoring::Char};
inline int scoring_index(Scoring s) { return static_cast<int>(s); }

}  // namespace moe
