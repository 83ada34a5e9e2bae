// metrics.cpp — see metrics.h.
#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <sstream>

namespace moe {

std::string normalize_answer(const std::string& s) {
  // lower-case and drop ASCII punctuation
  std::string t;
  for (const char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::ispunct(u)) continue;
    t.push_back(u < 0x80 ? static_cast<char>(std::tolower(u)) : c);
  }
  // drop the articles as whole words, and collapse whitespace
  std::istringstream words(t);
  std::string w, out;
  while (words >> w) {
    if (w == "a" || w == "an" || w == "the") continue;
    out += (out.empty() ? "" : " ") + w;
  }
  return out;
}

double exact_match(const std::string& prediction, const std::string& gold) {
  return normalize_answer(prediction) == normalize_answer(gold) ? 1.0 : 0.0;
}

static std::vector<std::string> words_of(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

double token_f1(const std::string& prediction, const std::string& gold) {
  const std::vector<std::string> p = words_of(normalize_answer(prediction));
  const std::vector<std::string> g = words_of(normalize_answer(gold));
  if (p.empty() || g.empty()) return p == g ? 1.0 : 0.0;  // both empty counts as a match
  std::map<std::string, int> gold_count;
  for (const std::string& w : g) ++gold_count[w];
  int common = 0;  // size of the multiset intersection
  for (const std::string& w : p) {
    auto it = gold_count.find(w);
    if (it != gold_count.end() && it->second > 0) { --it->second; ++common; }
  }
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / p.size();
  const double recall = static_cast<double>(common) / g.size();
  return 2.0 * precision * recall / (precision + recall);
}

double max_exact_match(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0.0;
  for (const std::string& g : golds) best = std::max(best, exact_match(prediction, g));
  return best;
}

double max_token_f1(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0.0;
  for (const std::string& g : golds) best = std::max(best, token_f1(prediction, g));
  return best;
}

int argmax_first(const std::vector<double>& scores) {
  int best = 0;
  for (size_t i = 1; i < scores.size(); ++i)
    if (scores[i] > scores[static_cast<size_t>(best)]) best = static_cast<int>(i);
  return best;
}

MeanStd mean_std(const std::vector<double>& xs) {
  MeanStd r;
  if (xs.empty()) return r;
  for (const double x : xs) r.mean += x;
  r.mean /= static_cast<double>(xs.size());
  double ss = 0.0;
  for (const double x : xs) ss += (x - r.mean) * (x - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(xs.size()));
  return r;
}

double items_standard_error(const std::vector<double>& per_item) {
  if (per_item.empty()) return 0.0;
  const MeanStd ms = mean_std(per_item);
  return ms.std / std::sqrt(static_cast<double>(per_item.size()));
}

double draws_standard_error(const std::vector<double>& per_draw) {
  const size_t n = per_draw.size();
  if (n < 2) return 0.0;
  const MeanStd ms = mean_std(per_draw);
  const double sample_var = ms.std * ms.std * static_cast<double>(n) / static_cast<double>(n - 1);
  return std::sqrt(sample_var / static_cast<double>(n));
}

}  // namespace moe
