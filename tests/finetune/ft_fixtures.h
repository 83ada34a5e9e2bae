// ft_fixtures.h — shared helpers of the fine-tuning tests: a tiny "pretrained" checkpoint
// (randomly initialised GPT + a BPE trained on the task's own text) and a synthetic
// sentence-classification task written to disk in the real SST-2 format (sentence<TAB>label).
//
// The synthetic task: each sentence is 2..5 filler words with exactly one of "good" / "bad" put
// at a random place; the label is 1 for "good". The word can be anywhere, so the last token's
// state has to gather it through attention — a small but real test that the whole path (reader,
// template, BPE, padding, last-token gather, head, AdamW schedule) learns.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/bpe.h"
#include "io/checkpoint.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"

namespace moe::testing {

inline std::string fresh_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path d = fs::temp_directory_path() / ("moe-gpt-ft-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

inline std::string good_bad_sentence(Rng& rng, int* label) {
  static const char* const kWords[] = {"the", "movie", "was", "plot", "actor", "really", "very",
                                       "scene", "music", "story", "quite", "long", "film", "it",
                                       "and", "a", "ending", "cast"};
  const int n = 2 + static_cast<int>(rng.below(4));
  const int at = static_cast<int>(rng.below(static_cast<uint64_t>(n + 1)));
  *label = static_cast<int>(rng.below(2));
  std::string s;
  for (int i = 0; i <= n; ++i) {
    const std::string w = i == at ? (*label ? "good" : "bad") : kWords[rng.below(std::size(kWords))];
    s += (i ? " " : "") + w;
  }
  return s;
}

// Writes dir/train.tsv and dir/dev.tsv (SST-2 format, trailing space as in GLUE); returns all text.
inline std::string write_good_bad_task(const std::string& dir, int n_train, int n_dev,
                                       uint64_t seed) {
  Rng rng(seed);
  std::string corpus;
  for (const char* split : {"train", "dev"}) {
    std::ofstream out(dir + "/" + split + ".tsv");
    out << "sentence\tlabel\n";
    const int n = std::string(split) == "train" ? n_train : n_dev;
    for (int i = 0; i < n; ++i) {
      int label = 0;
      const std::string s = good_bad_sentence(rng, &label);
      out << s << " \t" << label << "\n";
      corpus += s + "\n";
    }
  }
  return corpus;
}

// A "pretraining" checkpoint as ./train writes it: config, parameters, tokenizer (trained on
// `corpus` with `vocab` tokens), tokenizer fingerprint. Returns its path.
inline std::string write_tiny_checkpoint(const std::string& dir, const std::string& corpus,
                                         GPTConfig cfg, int vocab, uint64_t seed) {
  BpeTokenizer tok = BpeTokenizer::train(corpus, vocab);
  cfg.vocab_size = tok.vocab_size();
  GPT model(cfg, seed);
  Checkpoint ck;
  ck.set_meta("format", "moe-gpt pretraining checkpoint");
  add_gpt_to_checkpoint(ck, model);
  ck.set_meta("tokenizer", tok.fingerprint());
  ck.set_meta("step", "0");
  add_tokenizer_to_checkpoint(ck, tok);
  const std::string path = dir + "/pretrained.bin";
  save_checkpoint(path, ck);
  return path;
}

inline GPTConfig tiny_config(int L = 2, int C = 32, int NH = 2, int T = 16) {
  GPTConfig c;
  c.n_layer = L;
  c.d_model = C;
  c.n_head = NH;
  c.seq_len = T;
  c.dropout = 0.0;
  return c;
}

}  // namespace moe::testing
