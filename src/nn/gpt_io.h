// gpt_io.h — a model (and its tokenizer) in and out of a checkpoint, for every program.
//
// A pretraining checkpoint is self-contained: besides the parameters ("param/<name>") and the
// configuration keys of GPTConfig::to_meta(), it carries the tokenizer's two files verbatim
// (meta "tokenizer.encoder.json" and "tokenizer.vocab.bpe"), so eval and finetune need nothing but
// the checkpoint to tokenize text exactly as training did.
#pragma once
#include <memory>
#include <string>

#include "data/bpe.h"
#include "io/checkpoint.h"
#include "nn/gpt.h"

namespace moe {

void add_tokenizer_to_checkpoint(Checkpoint& ck, const BpeTokenizer& tok);
BpeTokenizer tokenizer_from_checkpoint(const Checkpoint& ck);

void add_gpt_to_checkpoint(Checkpoint& ck, const GPT& model);  // config meta + parameters
// Build the model the checkpoint describes on `device` and load its parameters (CHECK-fails,
// naming the file and the parameter, on a missing or mis-shaped tensor). Checkpoints hold CPU
// tensors whatever device wrote them, so any checkpoint loads on any device.
std::unique_ptr<GPT> gpt_from_checkpoint(const Checkpoint& ck, Device device = cpu());
// Copy the checkpoint's parameters into an existing model of the same configuration.
void load_gpt_params(GPT& model, const Checkpoint& ck);

}  // namespace moe
