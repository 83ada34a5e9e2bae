// eval_ckpt_util.h — small checkpoints for the eval tests that run whole evaluations (in process
// or through the binary): a random GPT (dense or MoE) with a BPE trained on the fixture texts,
// saved the way train saves one, with an optional edit of the tensors or meta before saving.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/bpe.h"
#include "eval_test_util.h"
#include "io/checkpoint.h"
#include "io/flags.h"
#include "io/text_io.h"
#include "nn/gpt.h"
#include "nn/gpt_io.h"

namespace moe {
namespace testing_eval {

// The fixture texts a tokenizer is trained on (MANIFEST layout under kData).
inline std::string fixture_text() {
  std::string text;
  for (const char* f : {"/gutenberg/gutenberg.valid.txt", "/piqa/train.jsonl",
                        "/openbookqa/train.jsonl", "/winogrande/train_xl.jsonl"})
    text += read_text_file(kData + f);
  return text;
}

inline const BpeTokenizer& fixture_tokenizer() {
  static const BpeTokenizer tok = BpeTokenizer::train(fixture_text(), 300);
  return tok;
}

// A 1-layer model (E experts when E > 0, then with moe_freq 1 so its one layer is MoE), saved to
// dir/name; `edit` may change the checkpoint before it is written.
inline std::string save_eval_checkpoint(const std::string& dir, const std::string& name, int E = 0,
                                        const std::function<void(Checkpoint&)>& edit = nullptr) {
  const BpeTokenizer& tok = fixture_tokenizer();
  GPTConfig c;
  c.n_layer = 1;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 48;
  c.vocab_size = tok.vocab_size();
  c.moe_experts = E;
  c.moe_freq = 1;
  GPT model(c, 3);
  Checkpoint ck;
  add_gpt_to_checkpoint(ck, model);
  add_tokenizer_to_checkpoint(ck, tok);
  ck.set_meta("compute-paper-flops", "123456789");
  ck.set_meta("tokens", "1000");
  ck.set_meta("step", "5");
  if (edit) edit(ck);
  const std::string path = dir + "/" + name;
  save_checkpoint(path, ck);
  return path;
}

// A parameter tensor of a checkpoint, for edits (a copy-on-write clone so that the model that
// made it is not touched).
inline Tensor& checkpoint_param(Checkpoint& ck, const std::string& name) {
  for (auto& [n, t] : ck.tensors)
    if (n == "param/" + name) {
      t = t.clone();
      return t;
    }
  throw Error("no parameter " + name);
}

inline Flags eval_flags(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"eval"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return parse_flags(static_cast<int>(argv.size()), argv.data(), PROG_EVAL);
}

}  // namespace testing_eval
}  // namespace moe
