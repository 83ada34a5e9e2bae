// metrics.h — the numbers a priming run reports (SPEC §6): accuracy, ReCoRD's exact match and F1,
// and the mean and standard deviation over few-shot draws.
//
// ReCoRD's EM and F1 follow the SQuAD evaluation script's conventions (written here from its
// description, not copied): both strings are normalised — lower-cased, ASCII punctuation removed,
// the articles "a", "an", "the" removed as whole words, whitespace collapsed — then
//   EM = 1 if the normalised strings are equal, else 0
//   F1 = harmonic mean of token precision and recall over the bag of whitespace tokens
// and the item's score is the maximum over its gold answers.
//
// Standard errors (notes/design.md "Hardening": each accuracy carries one): over items, the
// binomial error of an accuracy (lm-evaluation-harness reports the same quantity), and over few-shot draws, how much
// the mean would move with another set of draws.
//
// Left out: Unicode punctuation and case folding beyond ASCII (SQuAD's script strips Unicode
// punctuation too; for English entities the difference is negligible), bootstrap confidence
// intervals.
#pragma once
#include <string>
#include <vector>

namespace moe {

std::string normalize_answer(const std::string& s);  // "The  Eiffel-Tower!" -> "eiffeltower"
double exact_match(const std::string& prediction, const std::string& gold);  // 0 or 1
double token_f1(const std::string& prediction, const std::string& gold);     // [0, 1]
double max_exact_match(const std::string& prediction, const std::vector<std::string>& golds);
double max_token_f1(const std::string& prediction, const std::vector<std::string>& golds);

// Index of the largest score; ties go to the lowest index (deterministic, documented bias).
int argmax_first(const std::vector<double>& scores);

struct MeanStd {
  double mean = 0.0;
  double std = 0.0;  // population standard deviation (divide by n): the spread of these draws
};
MeanStd mean_std(const std::vector<double>& xs);  // empty -> {0, 0}

// Standard error of the mean of per-item values over the items: sqrt(var / n) with the population
// variance, which for 0/1 outcomes is the binomial sqrt(p (1 - p) / n). Empty -> 0.
double items_standard_error(const std::vector<double>& per_item);
// Standard error of the mean over few-shot draws: sample std (n - 1) / sqrt(n); 0 for n < 2.
double draws_standard_error(const std::vector<double>& per_draw);

}  // namespace moe
