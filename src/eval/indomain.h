// indomain.h — "in-domain" perplexity measured on the data the checkpoint was really trained on
// (SPEC §6 "Perplexity"; notes/design.md "Hardening" "Honest perplexity").
//
// The paper's in-domain perplexity is the held-out part of the training distribution. A
// checkpoint written by train records where its text came from and how validation was cut
// (meta keys, absolute paths):
//   train.data          the --data file or folder; "" = the embedded synthetic corpus
//   train.val-data      the --val-data file or folder; "" = a tail split of train.data
//   train.val-fraction  the tail fraction (when train.val-data is "")
//   train.cache-dir     the --cache-dir (where the synthetic corpus and token caches live)
// From these, the held-out tokens are rebuilt exactly as train cut them (src/data/dataset.h): the
// --val-data stream, or the last max(1, floor(f * blocks)) blocks of T tokens plus one of the
// training stream. The training stream comes from train's token cache when it is still there and
// up to date (same tokenizer, same files), else the files are encoded again (nothing is written).
//
// A checkpoint without these keys (written before them) gets today's default, the data folder's
// Gutenberg validation file, and the output says so. `--ppl-data` overrides all of this.
//
// Left out: checkpoints whose training files moved (the error names the path and the flag to
// use instead).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace moe {

class BpeTokenizer;
struct Checkpoint;

struct HeldOutText {
  std::vector<int32_t> tokens;     // the held-out stream; its first token is context only
  std::vector<std::string> files;  // the text files it was cut from
  std::string description;         // one line for the output and the results note
};

// The held-out split of the checkpoint's training data, tokenized with `tok` for a model of
// context `T`; nullopt when the checkpoint does not record its data, or trained without a
// validation split. CHECK-fails, naming the file and the flag to use, when the recorded files
// are gone. `log` gets one line when the files have to be encoded again.
std::optional<HeldOutText> training_held_out(const Checkpoint& ck, const BpeTokenizer& tok,
                                             int T, const std::function<void(const std::string&)>& log);

}  // namespace moe
