// perplexity.cpp — see perplexity.h.
#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "data/bpe.h"
#include "eval/report.h"

namespace moe {

double PerplexityResult::ppl() const { return std::exp(mean_nll()); }

std::vector<int32_t> perplexity_stream(const std::string& text, const BpeTokenizer& tok) {
  std::vector<int32_t> out{tok.eos_id()};
  const std::vector<int32_t> doc = tok.encode_document(text);
  out.insert(out.end(), doc.begin(), doc.end());
  return out;
}

PerplexityResult evaluate_perplexity(const std::vector<int32_t>& stream,
                                     LanguageModelScorer& scorer, int batch_size,
                                     int64_t limit_windows, bool progress,
                                     const std::string& name) {
  PerplexityResult r;
  r.name = name;
  const int64_t T = scorer.context_length();
  CHECK(T >= 2, "perplexity needs a context of at least 2 tokens, the model has ", T);
  CHECK(stream.size() >= 2, name, ": the text encodes to no tokens");
  const int64_t N = static_cast<int64_t>(stream.size());
  const int64_t stride = T - 1;  // predicted tokens per full window
  int64_t n_windows = (N - 1 + stride - 1) / stride;
  if (limit_windows > 0) n_windows = std::min(n_windows, limit_windows);

  const auto t0 = std::chrono::steady_clock::now();
  Progress bar("ppl " + name, n_windows, progress);
  for (int64_t w0 = 0; w0 < n_windows; w0 += batch_size) {
    const int64_t w1 = std::min(n_windows, w0 + batch_size);
    std::vector<std::vector<int32_t>> seqs;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w * stride, e = std::min(N, b + T);
      seqs.emplace_back(stream.begin() + b, stream.begin() + e);
    }
    const std::vector<std::vector<double>> lp = scorer.token_logprobs(seqs);
    CHECK(lp.size() == seqs.size(), "the scorer returned ", lp.size(), " rows for ", seqs.size(),
          " windows");
    for (size_t s = 0; s < seqs.size(); ++s)
      for (size_t i = 1; i < seqs[s].size(); ++i) {  // position 0 is the shared boundary token
        r.nll_sum -= lp[s][i];
        ++r.tokens;
      }
    r.windows = w1;
    bar.update(w1);
  }
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace moe
