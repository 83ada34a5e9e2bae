// gpt_io.h — a model (and its tokenizer) in and out of a checkpoint, for every program.
//
// A pretraining checkpoint is self-contained: besides the parameters ("param/<name>") and the
// configuration keys of GPTConfig::to_meta(), it carries the tokenizer's two files verbatim
// (meta "tokenizer.encoder.json" and "tokenizer.vocab.bpe"), so eval and finetune need nothing but
// the checkpoint to tokenize text exactly as training did.
//
// Loading never trusts the meta: the model shape is parsed and range-checked (GPTConfig::
// from_meta), every parameter tensor it implies is looked up and its dtype and shape compared,
// and the model is judged against the device's memory, all before a model is built
// (notes/design.md "Hardening": a forged `n-layer` fails at once).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/bpe.h"
#include "io/checkpoint.h"
#include "nn/gpt.h"

namespace moe {

void add_tokenizer_to_checkpoint(Checkpoint& ck, const BpeTokenizer& tok);
BpeTokenizer tokenizer_from_checkpoint(const Checkpoint& ck);

// Config meta + parameters. Under expert parallelism (SPEC §4) every rank must call it: the
// expert slices are gathered into full (E, ...) tensors on rank 0, which alone gets them (the
// other ranks' `ck` stays without them and is not meant to be saved).
void add_gpt_to_checkpoint(Checkpoint& ck, const GPT& model);
// `t`, or for an expert tensor (GPT::is_expert_param of the name after its "param/", "adam_m/" or
// "adam_v/" prefix) the gather of every rank's slice on rank 0, undefined on the others.
Tensor gather_if_expert(const std::string& name, const Tensor& t, const ExpertParallel& ep);
// Replaces every full expert tensor of `ck` (parameters and AdamW moments) by this rank's slice
// [rank*E/W, (rank+1)*E/W), so that a checkpoint written by any number of ranks loads on W ranks.
// CHECK-fails, naming the file, when E % W != 0 or E < W.
void slice_experts_for_rank(Checkpoint& ck, int num_experts, const ExpertParallel& ep);
// Build the model the checkpoint describes on `device` and load its parameters (CHECK-fails,
// naming the file and the key or parameter, on malformed meta, a parameter count the meta does not
// explain, a non-f32 or mis-shaped tensor, or a model too big for the device). Checkpoints hold
// CPU tensors whatever device wrote them, so any checkpoint loads on any device.
// With `ep`, the model holds this rank's experts only (the checkpoint's full tensors are sliced).
std::unique_ptr<GPT> gpt_from_checkpoint(const Checkpoint& ck, Device device = cpu(),
                                         const ExpertParallel& ep = {});
// The name and shape of every parameter GPT(cfg) has, in its order, computed without building it
// (so a checkpoint's tensors can be checked against its meta first).
std::vector<std::pair<std::string, Shape>> gpt_param_shapes(const GPTConfig& cfg);

// Copy the checkpoint's parameters into an existing model of the same configuration.
void load_gpt_params(GPT& model, const Checkpoint& ck);

// CHECK-fails when estimated_bytes(cfg, batch, T, training) exceeds the memory of `device` (the
// host's RAM for the CPU, the card's size for a GPU): the message gives the estimate and the
// size, then "HINT: " + `hint` (which flags to lower). Unknown sizes pass.
void check_model_fits(const GPTConfig& cfg, int batch, int T, const Device& device, bool training,
                      const std::string& hint);

}  // namespace moe
