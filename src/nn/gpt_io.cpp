// gpt_io.cpp — see gpt_io.h.
#include "nn/gpt_io.h"

#include <stdlib.h>  // mkdtemp
#include <unistd.h>  // sysconf

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/device.h"
#include "dist/dist.h"
#include "io/text_io.h"

namespace fs = std::filesystem;

namespace moe {

namespace {

// The tokenizer reads and writes files; a private folder bridges it to checkpoint strings. It is
// made with mkdtemp (a fresh name, never shared) and removed by the destructor, so neither an
// error (a damaged tokenizer in a checkpoint, a full disk) nor a second process leaves a
// moe-gpt-tok-* folder behind in the system temp directory.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "moe-gpt-tok-XXXXXX").string();
    CHECK(::mkdtemp(&pattern[0]) != nullptr, "cannot create a temporary folder like ", pattern,
          ". HINT: is the temp directory (TMPDIR) writable and not full?");
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Bytes of the host's RAM, or of the current GPU; 0 when unknown.
double device_memory_bytes(const Device& dev) {
  if (dev.is_cpu()) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
  }
  return static_cast<double>(cuda_total_memory());
}

double gib(double bytes) { return bytes / double(size_t(1) << 30); }

}  // namespace

void check_model_fits(const GPTConfig& cfg, int batch, int T, const Device& device,
                      bool training, const std::string& hint) {
  const double need = estimated_bytes(cfg, batch, T, training);
  const double have = device_memory_bytes(device);
  if (have <= 0) return;  // unknown size: the allocator's own error will have to do
  char need_s[32], have_s[32];
  std::snprintf(need_s, sizeof need_s, "%.3g", gib(need));
  std::snprintf(have_s, sizeof have_s, "%.3g", gib(have));
  CHECK(need <= have, "this model (", param_count(cfg), " parameters, L=", cfg.n_layer,
        " C=", cfg.d_model, " E=", cfg.moe_experts, ") needs about ", need_s, " GiB to ",
        training ? "train" : "run", " with ", batch, " sequences of ", T,
        " tokens (parameters", training ? ", gradients, AdamW moments" : "",
        " and activations; a rough lower estimate), but ", describe_device(device), " has ",
        have_s, " GiB: it would run out of memory. HINT: ", hint);
}

void add_tokenizer_to_checkpoint(Checkpoint& ck, const BpeTokenizer& tok) {
  TempFolder d;
  tok.save(d.file("encoder.json"), d.file("vocab.bpe"));
  ck.set_meta("tokenizer.encoder.json", read_text_file(d.file("encoder.json")));
  ck.set_meta("tokenizer.vocab.bpe", read_text_file(d.file("vocab.bpe")));
}

BpeTokenizer tokenizer_from_checkpoint(const Checkpoint& ck) {
  const std::string& encoder = ck.get_meta("tokenizer.encoder.json");
  const std::string& merges = ck.get_meta("tokenizer.vocab.bpe");
  TempFolder d;
  write_file_atomic(d.file("encoder.json"), encoder);
  write_file_atomic(d.file("vocab.bpe"), merges);
  BpeTokenizer tok = BpeTokenizer::load(d.file("encoder.json"), d.file("vocab.bpe"));
  CHECK(!ck.has_meta("tokenizer") || ck.get_meta("tokenizer") == tok.fingerprint(),
        "checkpoint ", ck.path, ": its tokenizer files do not match its tokenizer fingerprint");
  return tok;
}

// "param/blocks.1.moe.experts.w1" -> is it an expert tensor (of a parameter or its moments)?
static bool names_expert_tensor(const std::string& name) {
  const size_t slash = name.find('/');
  return GPT::is_expert_param(slash == std::string::npos ? name : name.substr(slash + 1));
}

Tensor gather_if_expert(const std::string& name, const Tensor& t, const ExpertParallel& ep) {
  if (ep.world <= 1 || !names_expert_tensor(name)) return t;
  return dist_gather_dim0(t);
}

void add_gpt_to_checkpoint(Checkpoint& ck, const GPT& model) {
  for (const auto& [k, v] : model.config().to_meta()) ck.set_meta(k, v);
  ck.set_meta("dropout", str_cat(model.config().dropout));
  for (const auto& [name, t] : model.params().all()) {
    const Tensor full = gather_if_expert("param/" + name, t, model.expert_parallel());
    if (full.defined()) ck.add_tensor("param/" + name, full);
  }
}

// A checkpoint's E experts must split evenly over the W ranks that load it.
static void check_split(const Checkpoint& ck, int num_experts, const ExpertParallel& ep) {
  CHECK(num_experts % ep.world == 0 && num_experts >= ep.world, "checkpoint ", ck.path, " has ",
        num_experts, " experts per MoE layer, which cannot be split evenly over ", ep.world,
        " ranks (E % W must be 0 and E >= W). HINT: run it with a number of ranks that divides ",
        num_experts);
}

void slice_experts_for_rank(Checkpoint& ck, int num_experts, const ExpertParallel& ep) {
  if (ep.world <= 1) return;
  check_split(ck, num_experts, ep);
  const int64_t first = ep.first_expert(num_experts), n = ep.local_experts(num_experts);
  for (auto& [name, t] : ck.tensors) {
    if (!names_expert_tensor(name)) continue;
    CHECK(t.dim() >= 1 && t.size(0) == num_experts, "checkpoint ", ck.path, ": ", name,
          " has shape ", shape_str(t.shape()), ", expected ", num_experts, " experts first");
    t = t.slice_view(0, first, first + n).clone();
  }
}

void load_gpt_params(GPT& model, const Checkpoint& ck) {
  for (const auto& [name, t] : model.params().all()) {
    Tensor p = t;
    const Tensor& saved = ck.get_tensor("param/" + name);
    CHECK(saved.dtype() == DType::F32, "checkpoint ", ck.path, ": parameter ", name, " is ",
          dtype_name(saved.dtype()), ", expected f32. HINT: the file was damaged or written by "
          "another program; use another checkpoint");
    CHECK(saved.shape() == p.shape(), "checkpoint ", ck.path, ": parameter ", name, " has shape ",
          shape_str(saved.shape()), ", the model has ", shape_str(p.shape()));
    p.copy_from(saved);
  }
}

std::vector<std::pair<std::string, Shape>> gpt_param_shapes(const GPTConfig& c) {
  const int64_t C = c.d_model, H = c.d_ff(), V = c.vocab_size, E = c.moe_experts;
  std::vector<std::pair<std::string, Shape>> out = {{"wte", {V, C}}};
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    out.push_back({pre + "ln1.weight", {C}});
    out.push_back({pre + "ln1.bias", {C}});
    out.push_back({pre + "attn.qkv.weight", {3 * C, C}});
    out.push_back({pre + "attn.qkv.bias", {3 * C}});
    out.push_back({pre + "attn.proj.weight", {C, C}});
    out.push_back({pre + "attn.proj.bias", {C}});
    out.push_back({pre + "ln2.weight", {C}});
    out.push_back({pre + "ln2.bias", {C}});
    if (c.is_moe_layer(l)) {
      out.push_back({pre + "moe.gate.weight", {E, C}});
      out.push_back({pre + "moe.experts.w1", {E, C, H}});
      out.push_back({pre + "moe.experts.b1", {E, H}});
      out.push_back({pre + "moe.experts.w2", {E, H, C}});
      out.push_back({pre + "moe.experts.b2", {E, C}});
    } else {
      out.push_back({pre + "ffn.fc1.weight", {H, C}});
      out.push_back({pre + "ffn.fc1.bias", {H}});
      out.push_back({pre + "ffn.fc2.weight", {C, H}});
      out.push_back({pre + "ffn.fc2.bias", {C}});
    }
  }
  out.push_back({"ln_f.weight", {C}});
  out.push_back({"ln_f.bias", {C}});
  return out;
}

// Before a model is built from a checkpoint's meta, the meta must agree with the tensors the
// file really holds: a forged `n-layer` would otherwise make us allocate (and initialise) a model
// many times the file's size before the first shape check could fail. Every message names the
// file, the tensor and the meta that asked for it.
static void check_params_match_meta(const Checkpoint& ck, const GPTConfig& cfg) {
  const std::string meta = str_cat("its meta: n-layer=", cfg.n_layer, ", d-model=", cfg.d_model,
                                   ", vocab-size=", cfg.vocab_size, ", moe-experts=",
                                   cfg.moe_experts, ", moe-freq=", cfg.moe_freq);
  const char* hint = "HINT: the file was damaged or edited, or written for another model; use "
                     "another checkpoint";
  for (const auto& [name, shape] : gpt_param_shapes(cfg)) {
    CHECK(ck.has_tensor("param/" + name), "no tensor 'param/", name, "' in checkpoint '",
          ck.path, "', which its model needs (", meta, "). ", hint);
    const Tensor& t = ck.get_tensor("param/" + name);
    CHECK(t.dtype() == DType::F32, "checkpoint ", ck.path, ": parameter ", name, " is ",
          dtype_name(t.dtype()), ", expected f32. ", hint);
    CHECK(t.shape() == shape, "checkpoint ", ck.path, ": parameter ", name, " has shape ",
          shape_str(t.shape()), ", the model has ", shape_str(shape), " (", meta, "). ", hint);
  }
}

std::unique_ptr<GPT> gpt_from_checkpoint(const Checkpoint& ck_in, Device device,
                                         const ExpertParallel& ep) {
  const GPTConfig cfg = GPTConfig::from_meta(ck_in.meta, ck_in.path);  // reads "dropout" too
  check_params_match_meta(ck_in, cfg);
  check_model_fits(cfg, 1, cfg.seq_len, device, false,
                   "run it on a device with more memory (--device)");
  if (ep.world > 1 && cfg.is_moe()) check_split(ck_in, cfg.moe_experts, ep);  // names the file
  auto model = std::make_unique<GPT>(cfg, 0, device, ep);
  if (ep.world <= 1 || !cfg.is_moe()) {
    load_gpt_params(*model, ck_in);
    return model;
  }
  Checkpoint ck = ck_in;  // the expert tensors become this rank's slices
  slice_experts_for_rank(ck, cfg.moe_experts, ep);
  load_gpt_params(*model, ck);
  return model;
}

}  // namespace moe
