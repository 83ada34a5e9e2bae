// data_setup.cpp — corpus, tokenizer and dataset preparation for train (see data_setup.h).
#include "train/data_setup.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "data/synthetic.h"
#include "io/text_io.h"

namespace fs = std::filesystem;

namespace moe {

std::string ensure_synthetic_corpus(const std::string& cache_dir) {
  const std::string path = (fs::path(cache_dir) / "synthetic" / "corpus.txt").string();
  const std::string text = synthetic_corpus(kSyntheticCorpusSeed, kSyntheticCorpusBytes);
  // Rewrite only when the content differs, so the file's mtime (part of the token cache key)
  // stays put and the cached tokens are reused.
  std::error_code ec;
  if (fs::exists(path, ec) && fs::file_size(path, ec) == text.size() &&
      read_text_file(path) == text)
    return path;
  write_file_atomic(path, text);
  return path;
}

static std::string hex64(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

BpeTokenizer prepare_tokenizer(const DataConfig& cfg, const std::vector<std::string>& files,
                               const LogFn& log) {
  if (!cfg.bpe_dir.empty()) {
    const std::string enc = (fs::path(cfg.bpe_dir) / "encoder.json").string();
    const std::string voc = (fs::path(cfg.bpe_dir) / "vocab.bpe").string();
    CHECK(fs::exists(enc) && fs::exists(voc), "--bpe-dir ", cfg.bpe_dir,
          " must contain encoder.json and vocab.bpe. HINT: GPT-2's are in ../shared/data/gpt2_bpe");
    return BpeTokenizer::load(enc, voc);
  }
  // A trained tokenizer is cached per (sources, vocab size): same data, same tokenizer.
  const fs::path dir = fs::path(cfg.cache_dir) /
                       ("bpe-" + std::to_string(cfg.vocab_size) + "-" + hex64(source_fingerprint(files)));
  const std::string enc = (dir / "encoder.json").string(), voc = (dir / "vocab.bpe").string();
  if (fs::exists(enc) && fs::exists(voc)) return BpeTokenizer::load(enc, voc);
  // Train on the first few MB of text: enough to learn a small vocabulary, bounded time.
  const size_t budget = size_t(8) << 20;
  std::string text;
  for (const std::string& f : files) {
    if (text.size() >= budget) break;
    text += read_text_prefix(f, budget - text.size());  // .xz decompressed only that far
    text += '\n';
  }
  if (log) log(str_cat("training a BPE tokenizer of ", cfg.vocab_size, " tokens on ",
                       text.size() / 1024, " KiB of text (cached in ", dir.string(), ")"));
  BpeTokenizer tok = BpeTokenizer::train(text, cfg.vocab_size);
  std::error_code ec;
  fs::create_directories(dir, ec);
  try {
    tok.save(enc, voc);
  } catch (const Error& e) {
    // A failed save (a full disk) must leave no half tokenizer behind: the next run would find
    // one of the two files, or a stale .tmp, and the cache check looks for both.
    for (const std::string& f : {enc, voc, enc + ".tmp", voc + ".tmp"}) fs::remove(f, ec);
    fs::remove(dir, ec);  // only if empty
    throw Error(str_cat("cannot cache the trained tokenizer in ", dir.string(),
                        " (the disk may be full, or --cache-dir not writable; nothing was left "
                        "there): ", e.what()));
  }
  return tok;
}

static std::vector<int32_t> tokens_of(const std::vector<std::string>& files,
                                      const BpeTokenizer& tok, const std::string& cache_dir,
                                      const LogFn& log) {
  const std::string cache = (fs::path(cache_dir) / ("tokens-" + tok.fingerprint() + "-" +
                                                    hex64(source_fingerprint(files)) + ".bin"))
                                .string();
  // load_or_build_token_cache says itself whether it reused, built or wrote the cache: one line
  // each, no repetition here.
  TokenCacheResult r = load_or_build_token_cache(files, tok, cache, log);
  return std::move(r.tokens);
}

// The files a --data (or --val-data) value stands for, listed in the output so that what is
// trained on is never a surprise (a directory contributes only its *.txt / *.txt.xz files).
static std::vector<std::string> corpus_files(const std::string& path, const char* flag,
                                             const LogFn& log) {
  std::vector<std::string> files = list_text_files(path);
  if (log && (files.size() > 1 || files[0] != path))
    log(str_cat("--", flag, " ", path, ": ", files.size(), " text file",
                files.size() == 1 ? "" : "s", "\n", describe_file_list(files)));
  return files;
}

TrainData prepare_data(const DataConfig& cfg, const LogFn& log) {
  std::error_code ec;
  fs::create_directories(cfg.cache_dir, ec);
  CHECK(!ec && fs::is_directory(cfg.cache_dir), "--cache-dir ", cfg.cache_dir,
        ": cannot create the folder (", ec ? ec.message() : "a file has that name",
        "). HINT: choose a folder you can write to");
  const bool embedded = cfg.data.empty();
  const std::vector<std::string> files =
      embedded ? list_text_files(ensure_synthetic_corpus(cfg.cache_dir))
               : corpus_files(cfg.data, "data", log);
  TrainData td{prepare_tokenizer(cfg, files, log), nullptr, ""};
  std::vector<int32_t> tokens = tokens_of(files, td.tokenizer, cfg.cache_dir, log);
  if (!cfg.val_data.empty()) {
    std::vector<int32_t> val =
        tokens_of(corpus_files(cfg.val_data, "val-data", log), td.tokenizer, cfg.cache_dir, log);
    td.dataset = std::make_unique<BlockDataset>(std::move(tokens), std::move(val), cfg.seq_len,
                                                cfg.seed);
  } else {
    td.dataset = std::make_unique<BlockDataset>(std::move(tokens), cfg.seq_len, cfg.val_fraction,
                                                cfg.seed);
  }
  std::ostringstream os;
  os << (embedded ? "embedded synthetic corpus" : cfg.data) << " (" << files.size() << " file"
     << (files.size() == 1 ? "" : "s") << "), tokenizer "
     << (cfg.bpe_dir.empty() ? "trained BPE" : "BPE from " + cfg.bpe_dir) << " V="
     << td.tokenizer.vocab_size() << ", " << td.dataset->num_train_tokens() << " train tokens / "
     << td.dataset->num_train_blocks() << " blocks, " << td.dataset->num_val_blocks()
     << " validation blocks of T=" << cfg.seq_len;
  td.description = os.str();
  return td;
}

}  // namespace moe
