// eval_test_util.h — hand-built pieces the eval tests share.
//
// FixedLogitsScorer: a "language model" whose every position predicts the same distribution,
// log_softmax(logits) over a fixed logits vector. Scores are then known in advance: the
// log-probability of a token does not depend on its context, so a candidate's score is a sum or
// mean of numbers the test can compute by hand, and a wrong span (one token too many or too few)
// changes the result. It records every sequence it is given, so tests can check prompts exactly.
//
// char_encoder: one token per byte (id = the byte's value), </s> = 256. With it, token positions
// are character positions and expected sequences can be written as strings.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eval/priming.h"
#include "eval/scoring.h"

namespace moe {
namespace testing_eval {

constexpr int32_t kCharEos = 256;

inline std::vector<int32_t> char_ids(const std::string& s) {
  std::vector<int32_t> out;
  for (const unsigned char c : s) out.push_back(c);
  return out;
}

inline TextEncoder char_encoder() {
  return [](const std::string& s) { return char_ids(s); };
}

class FixedLogitsScorer : public LanguageModelScorer {
 public:
  // logits: one value per token id (V = logits.size()).
  FixedLogitsScorer(std::vector<double> logits, int context_length, int eos)
      : context_length_(context_length), eos_(eos) {
    double mx = -INFINITY;
    for (const double l : logits) mx = std::max(mx, l);
    double z = 0.0;
    for (const double l : logits) z += std::exp(l - mx);
    for (const double l : logits) logp_.push_back(l - mx - std::log(z));
  }
  int context_length() const override { return context_length_; }
  int eos_id() const override { return eos_; }
  std::vector<std::vector<double>> token_logprobs(
      const std::vector<std::vector<int32_t>>& seqs) override {
    calls.push_back(seqs);
    std::vector<std::vector<double>> out;
    for (const auto& s : seqs) {
      if (static_cast<int>(s.size()) > context_length_) too_long = true;
      std::vector<double> lp(s.size(), 0.0);
      for (size_t i = 1; i < s.size(); ++i) lp[i] = logp_.at(static_cast<size_t>(s[i]));
      out.push_back(lp);
    }
    return out;
  }
  double lp(int32_t token) const { return logp_.at(static_cast<size_t>(token)); }
  double lp(char c) const { return lp(static_cast<int32_t>(static_cast<unsigned char>(c))); }

  std::vector<std::vector<std::vector<int32_t>>> calls;  // every call's sequences
  bool too_long = false;                                 // a sequence exceeded the context

 private:
  int context_length_, eos_;
  std::vector<double> logp_;
};

// Logits over the 257 char-encoder ids: token id t gets -0.01 * t, so every character has its
// own, distinct log-probability (smaller ids are likelier).
inline std::vector<double> char_logits() {
  std::vector<double> l(257);
  for (int t = 0; t < 257; ++t) l[static_cast<size_t>(t)] = -0.01 * t;
  return l;
}

// A fresh, empty temporary folder for one test.
inline std::string fresh_temp_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p = fs::temp_directory_path() / ("moe-gpt-eval-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline const std::string kFixtures = "tests/fixtures/eval/";
inline const std::string kData = "tests/fixtures/eval/data";

}  // namespace testing_eval
}  // namespace moe
