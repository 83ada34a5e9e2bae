// indomain.cpp — see indomain.h.
#include "eval/indomain.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "core/check.h"
#include "data/bpe.h"
#include "data/corpus.h"
#include "io/checkpoint.h"
#include "train/data_setup.h"

namespace fs = std::filesystem;

namespace moe {

namespace {

using Log = std::function<void(const std::string&)>;

std::string meta_or_empty(const Checkpoint& ck, const char* key) {
  return ck.has_meta(key) ? ck.get_meta(key) : std::string();
}

// The text files a recorded --data / --val-data value stands for, with an error that says what to
// do when they are gone (the checkpoint was copied to another machine, the data moved).
std::vector<std::string> recorded_files(const std::string& path, const char* flag,
                                        const std::string& ckpt) {
  std::error_code ec;
  CHECK(fs::exists(path, ec), "in-domain perplexity: ", ckpt, " was trained on --", flag, " ",
        path, ", which is not there any more. HINT: pass the held-out text yourself with "
        "--ppl-data FILE (the first file is in-domain)");
  return list_text_files(path);
}

// train's token cache name (src/train/data_setup.cpp): tokens-<tokenizer fp>-<source fp>.bin.
std::string cache_path(const std::string& cache_dir, const BpeTokenizer& tok,
                       const std::vector<std::string>& files) {
  char fp[17];
  std::snprintf(fp, sizeof fp, "%016llx",
                static_cast<unsigned long long>(source_fingerprint(files)));
  return (fs::path(cache_dir) / ("tokens-" + tok.fingerprint() + "-" + fp + ".bin")).string();
}

// The token stream of `files`: from train's cache when it matches them and the tokenizer (read,
// never rewritten), else encoded here.
std::vector<int32_t> corpus_tokens(const std::vector<std::string>& files, const BpeTokenizer& tok,
                                   const std::string& cache_dir, const Log& log) {
  const std::string cache = cache_dir.empty() ? "" : cache_path(cache_dir, tok, files);
  TokenCacheHeader h;
  std::string why;
  bool fresh = false;
  try {
    fresh = !cache.empty() && read_token_cache_header(cache, &h, &why) &&
            h.tokenizer_fingerprint == tok.fingerprint().substr(0, h.tokenizer_fingerprint.size()) &&
            h.source_fp == source_fingerprint(files);
  } catch (const Error&) {
    fresh = false;  // not a token cache: encode instead
  }
  if (fresh) {
    TokenCacheResult r = load_or_build_token_cache(files, tok, cache, nullptr);
    if (log) log(str_cat("in-domain text: ", r.tokens.size(), " tokens from train's token cache ",
                         cache));
    return std::move(r.tokens);
  }
  if (log) log(str_cat("in-domain text: encoding ", describe_file_list(files),
                       " (train's token cache is not there or out of date)"));
  return encode_text_files(files, tok, nullptr);
}

// The embedded corpus, written where train wrote it (same bytes, so train's cache still
// matches), or in a temporary folder when that folder cannot be written.
std::vector<std::string> synthetic_files(const std::string& cache_dir) {
  try {
    return {ensure_synthetic_corpus(cache_dir)};
  } catch (const Error&) {
    const fs::path tmp = fs::temp_directory_path() / "moe-gpt-eval-synthetic";
    return {ensure_synthetic_corpus(tmp.string())};
  }
}

}  // namespace

std::optional<HeldOutText> training_held_out(const Checkpoint& ck, const BpeTokenizer& tok, int T,
                                             const Log& log) {
  if (!ck.has_meta("train.data")) return std::nullopt;  // written before train recorded it
  const std::string data = ck.get_meta("train.data"), val = meta_or_empty(ck, "train.val-data");
  const std::string cache_dir = meta_or_empty(ck, "train.cache-dir");
  HeldOutText out;
  if (!val.empty()) {
    out.files = recorded_files(val, "val-data", ck.path);
    out.tokens = corpus_tokens(out.files, tok, cache_dir, log);
    out.description = "held-out: --val-data " + val + " of the training run";
    return out;
  }
  double fraction = 0.0;
  try {
    fraction = std::stod(meta_or_empty(ck, "train.val-fraction"));
  } catch (const std::exception&) {
    CHECK(false, ck.path, ": malformed meta train.val-fraction '",
          meta_or_empty(ck, "train.val-fraction"), "'. HINT: pass --ppl-data FILE");
  }
  if (!(fraction > 0.0 && fraction < 1.0)) return std::nullopt;  // trained without validation
  const std::vector<std::string> files =
      data.empty() ? synthetic_files(cache_dir) : recorded_files(data, "data", ck.path);
  std::vector<int32_t> all = corpus_tokens(files, tok, cache_dir, log);
  // The tail split of src/data/dataset.cpp: max(1, floor(f * blocks)) blocks of T, plus one.
  const int64_t blocks = all.empty() ? 0 : static_cast<int64_t>((all.size() - 1) / T);
  const int64_t n_val = std::max<int64_t>(1, static_cast<int64_t>(std::floor(fraction * blocks)));
  const size_t keep = static_cast<size_t>(n_val) * static_cast<size_t>(T) + 1;
  CHECK(all.size() > keep, "in-domain perplexity: the training text (", all.size(),
        " tokens) is too short for its validation split. HINT: pass --ppl-data FILE");
  out.tokens.assign(all.end() - static_cast<std::ptrdiff_t>(keep), all.end());
  out.files = files;
  out.description = str_cat("held-out: the last ", fraction, " of ",
                            data.empty() ? "the embedded synthetic corpus" : data,
                            " (the training run's validation split)");
  return out;
}

}  // namespace moe
