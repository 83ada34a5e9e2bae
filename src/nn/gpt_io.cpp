// gpt_io.cpp — see gpt_io.h.
#include "nn/gpt_io.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace moe {

static std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The tokenizer reads and writes files; a private temp folder bridges it to checkpoint strings.
static fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() /
               ("moe-gpt-tok-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()));
  fs::create_directories(d);
  return d;
}

void add_tokenizer_to_checkpoint(Checkpoint& ck, const BpeTokenizer& tok) {
  fs::path d = temp_dir();
  tok.save((d / "encoder.json").string(), (d / "vocab.bpe").string());
  ck.set_meta("tokenizer.encoder.json", slurp((d / "encoder.json").string()));
  ck.set_meta("tokenizer.vocab.bpe", slurp((d / "vocab.bpe").string()));
  fs::remove_all(d);
}

BpeTokenizer tokenizer_from_checkpoint(const Checkpoint& ck) {
  fs::path d = temp_dir();
  std::ofstream(d / "encoder.json", std::ios::binary) << ck.get_meta("tokenizer.encoder.json");
  std::ofstream(d / "vocab.bpe", std::ios::binary) << ck.get_meta("tokenizer.vocab.bpe");
  BpeTokenizer tok = BpeTokenizer::load((d / "encoder.json").string(), (d / "vocab.bpe").string());
  fs::remove_all(d);
  CHECK(!ck.has_meta("tokenizer") || ck.get_meta("tokenizer") == tok.fingerprint(),
        "checkpoint ", ck.path, ": its tokenizer files do not match its tokenizer fingerprint");
  return tok;
}

void add_gpt_to_checkpoint(Checkpoint& ck, const GPT& model) {
  for (const auto& [k, v] : model.config().to_meta()) ck.set_meta(k, v);
  ck.set_meta("dropout", str_cat(model.config().dropout));
  for (const auto& [name, t] : model.params().all()) ck.add_tensor("param/" + name, t);
}

void load_gpt_params(GPT& model, const Checkpoint& ck) {
  for (const auto& [name, t] : model.params().all()) {
    Tensor p = t;
    const Tensor& saved = ck.get_tensor("param/" + name);
    CHECK(saved.shape() == p.shape(), "checkpoint ", ck.path, ": parameter ", name, " has shape ",
          shape_str(saved.shape()), ", the model has ", shape_str(p.shape()));
    p.copy_from(saved);
  }
}

std::unique_ptr<GPT> gpt_from_checkpoint(const Checkpoint& ck, Device device) {
  GPTConfig cfg = GPTConfig::from_meta(ck.meta);
  if (ck.has_meta("dropout")) cfg.dropout = std::stod(ck.get_meta("dropout"));
  auto model = std::make_unique<GPT>(cfg, 0, device);
  load_gpt_params(*model, ck);
  return model;
}

}  // namespace moe
