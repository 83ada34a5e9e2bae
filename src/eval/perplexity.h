// perplexity.h — language-modelling perplexity of a text file (SPEC §6 "Perplexity").
//
//   ppl = exp( (1/N) * sum_t -log p(x_t | x_<t within its block) )
//
// The file is encoded as training data is (BpeTokenizer::encode_document, SPEC §5: every line
// ends in </s>, an empty line adds one), after one leading </s> that marks the document start, so
// every token of the text — line ends included — is predicted once and counted in N.
// Blocks: the stream is cut into non-overlapping runs of T-1 predicted tokens; the model sees each
// run with the token just before it, i.e. windows of T tokens that share one boundary token:
//     window w = stream[w(T-1) .. w(T-1)+T)   predicts stream[w(T-1)+1 .. w(T-1)+T)
// No token is predicted twice and no context crosses into a window from the one before (beyond
// that one token), which is what "non-overlapping blocks" means for a model with T positions.
// The last window may be shorter.
// Batching: `batch_size` windows go to the scorer in one call; with GPTScorer that is one forward
// pass on the model's device, and only the windows' per-token log-probabilities come back.
//
// Left out: sliding-window (strided) evaluation, which gives every token a long context at T
// times the cost; per-document resets of the context.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/scoring.h"

namespace moe {

class BpeTokenizer;

struct PerplexityResult {
  std::string name;       // the file it was computed on
  int64_t tokens = 0;     // N: predicted tokens
  int64_t windows = 0;    // model windows (of up to T tokens)
  double nll_sum = 0.0;   // sum of -log p over the N tokens (nats)
  double seconds = 0.0;
  double mean_nll() const { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : 0.0; }
  double ppl() const;     // exp(mean_nll)
};

// </s> followed by encode_document(text).
std::vector<int32_t> perplexity_stream(const std::string& text, const BpeTokenizer& tok);

// Perplexity of `stream` under `scorer`, `batch_size` windows per model call; `limit_windows` > 0
// stops after that many windows (a quick estimate on a prefix of the file).
PerplexityResult evaluate_perplexity(const std::vector<int32_t>& stream,
                                     LanguageModelScorer& scorer, int batch_size,
                                     int64_t limit_windows, bool progress,
                                     const std::string& name);

}  // namespace moe
