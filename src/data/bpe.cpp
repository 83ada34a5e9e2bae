// bpe.cpp — GPT-2 byte-level BPE: reading and writing encoder.json + vocab.bpe, encoding, decoding,
// and SPEC §5's document encoding (each line ends with </s>). The trainer is in bpe_train.cpp;
// UTF-8, character classes, the byte table and the pre-tokeniser are in unicode.cpp.
//
// Encoding is GPT-2's algorithm, done on ids instead of strings: every pre-token starts as its
// bytes' one-byte tokens; while some adjacent pair has a merge, the pair with the lowest rank is
// merged at every place it occurs, left to right. This equals the string version because load()
// checks that the two halves and the result of every merge are tokens of encoder.json.
//
// encoder.json is read and written through io/json.h, the project's one JSON reader and writer,
// so its escapes (and the rule for lone \uD800-\uDFFF escapes) are those of every other file.
//
// Thread safety: encode(), encode_document() and decode() may be called from several threads; the
// word cache is guarded by one mutex per call, so concurrent encodes run one after another.
//
// Left out: special-token parsing (encode() treats the text "</s>" or "<|endoftext|>" as ordinary
// bytes; only encode_document() emits </s>), and any normalisation of the input.
#include "data/bpe.h"

#include "io/text_io.h"  // write_file_atomic: no truncated file, no .tmp left on a failure

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/check.h"
#include "data/unicode.h"
#include "io/json.h"

namespace moe {

namespace {

constexpr const char* kGpt2Hint =
    "HINT: GPT-2's files are encoder.json and vocab.bpe in ../shared/data/gpt2_bpe/ (pass both "
    "paths, encoder.json first), or write a trained pair with BpeTokenizer::save().";
constexpr const char* kEos = "</s>";
constexpr size_t kMaxCachedWords = size_t{1} << 20;  // bounds memory on huge, varied corpora
constexpr size_t kMaxCachedWordBytes = 64;           // longer pieces are rare; not worth storing

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CHECK(in.good(), "cannot open tokenizer file '", path, "'. ", kGpt2Hint);
  std::ostringstream ss;
  ss << in.rdbuf();
  CHECK(!in.bad(), "error while reading tokenizer file '", path, "'. ", kGpt2Hint);
  return ss.str();
}

// The id of one encoder.json entry: a JSON number that is a whole number in [0, 2^31). It is
// checked as a double before the cast (a forged 1e300 must not overflow).
int64_t token_id(const Json& value, const std::string& token, const std::string& path) {
  CHECK(value.is_number(), path, ": the id of token \"", token, "\" is a ", value.kind_name(),
        "; expected an integer token id. ", kGpt2Hint);
  const double v = value.as_number();
  CHECK(v >= 0, path, ": token ids must be non-negative integers, got ", v, " for \"", token,
        "\".");
  CHECK(v == std::floor(v), path, ": token ids must be integers, got ", v, " for \"", token, "\".");
  CHECK(v <= INT32_MAX, path, ": token id ", v, " of \"", token, "\" is too large.");
  return static_cast<int64_t>(v);
}

// Checks that `token` is UTF-8 made only of GPT-2 byte-table characters and returns its bytes.
bool token_bytes(const std::string& token, std::string* bytes) {
  bytes->clear();
  for (size_t i = 0; i < token.size();) {
    uint32_t cp;
    i += utf8_decode(token, i, &cp);
    const int b = cp == kInvalidCodePoint ? -1 : unicode_to_byte(cp);
    if (b < 0) return false;
    bytes->push_back(static_cast<char>(b));
  }
  return true;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Loading

// encoder.json -> id_to_token_ and token_to_id_, read by the project's one JSON reader (io/json.h,
// whose surrogate rule applies here too). Ids must be exactly 0..N-1 (no holes), and every token
// must decode to bytes through GPT-2's table.
void BpeTokenizer::read_encoder_json(const std::string& path) {
  const std::string text = read_whole_file(path);
  Json doc;
  try {
    doc = parse_json_file(text, path);
  } catch (const Error& e) {
    CHECK(false, e.what(), " (malformed encoder.json). ", kGpt2Hint);
  }
  const std::string found = doc.is_object()  ? "an empty object"
                            : doc.is_array() ? "an array"
                                             : str_cat("a ", doc.kind_name());
  CHECK(doc.is_object() && !doc.as_object().empty(), path, ": expected a JSON object of ",
        "\"token\": id pairs, found ", found, ". ", kGpt2Hint);
  const auto& entries = doc.as_object();
  id_to_token_.assign(entries.size(), std::string());
  std::vector<bool> seen(entries.size(), false);
  for (const auto& [token, value] : entries) {
    const int64_t id = token_id(value, token, path);
    CHECK(id < static_cast<int64_t>(entries.size()), path, ": token id ", id, " of \"", token,
          "\" is out of range; ", entries.size(), " entries need ids 0..", entries.size() - 1,
          ". HINT: the ids must be a permutation of 0..N-1.");
    CHECK(!seen[id], path, ": token id ", id, " is used twice. HINT: the ids must be a ",
          "permutation of 0..N-1.");
    CHECK(!token.empty(), path, ": empty token string for id ", id, ".");
    CHECK(token_to_id_.emplace(token, static_cast<int32_t>(id)).second, path, ": token \"",
          token, "\" appears twice.");
    seen[id] = true;
    id_to_token_[id] = token;
  }
  std::string bytes;
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    const bool replaced = id_to_token_[id].find("\xEF\xBF\xBD") != std::string::npos;
    CHECK(token_bytes(id_to_token_[id], &bytes), path, ": token \"", id_to_token_[id], "\" (id ",
          id, ") has a character outside GPT-2's byte-to-unicode table, so it cannot be decoded ",
          "to bytes", replaced ? " (U+FFFD stands for a lone surrogate escape such as \\ud800, "
                                 "which has no UTF-8 form)" : "", ". ", kGpt2Hint);
  }
}

// vocab.bpe -> merges_ and merge_rank_ (rank = order of the merge lines). Needs the encoder.
void BpeTokenizer::read_vocab_bpe(const std::string& path, const std::string& encoder_path) {
  std::istringstream lines(read_whole_file(path));
  std::string line;
  std::getline(lines, line);
  CHECK(line.rfind("#version", 0) == 0, path, ":1: expected the header '#version: 0.2', found '",
        line.substr(0, 40), "'. ", kGpt2Hint);
  for (int line_no = 2; std::getline(lines, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // tolerate CRLF files
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() &&
              line.find(' ', sp + 1) == std::string::npos,
          path, ":", line_no, ": malformed merge '", line.substr(0, 60),
          "'; expected two tokens separated by one space. ", kGpt2Hint);
    std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    // Both halves and the result must be tokens; then id-space merging equals GPT-2's string one.
    const std::string need[3] = {a, b, a + b};
    for (const std::string& t : need)
      CHECK(token_to_id_.count(t), path, ":", line_no, ": merge '", line,
            "' uses or makes token \"", t, "\", which is not in ", encoder_path,
            ". HINT: encoder.json and vocab.bpe must come from the same tokenizer.");
    CHECK(merge_rank_.emplace(line, static_cast<int>(merges_.size())).second, path, ":", line_no,
          ": merge '", line, "' appears twice.");
    merges_.emplace_back(std::move(a), std::move(b));
  }
}

BpeTokenizer BpeTokenizer::load(const std::string& encoder_json_path,
                                const std::string& vocab_bpe_path) {
  BpeTokenizer tok;
  tok.read_encoder_json(encoder_json_path);
  tok.read_vocab_bpe(vocab_bpe_path, encoder_json_path);
  // GPT-2's encoder has no </s>; SPEC §5 needs one, so it takes the next free id.
  const auto eos = tok.token_to_id_.find(kEos);
  if (eos != tok.token_to_id_.end()) {
    tok.eos_id_ = eos->second;
  } else {
    tok.eos_id_ = static_cast<int32_t>(tok.id_to_token_.size());
    tok.id_to_token_.push_back(kEos);
    tok.token_to_id_.emplace(kEos, tok.eos_id_);
  }
  tok.finish_tables();
  return tok;
}

// Builds id_to_bytes_, byte_id_, pair_merge_ and a fresh cache from the validated token list and
// merges (load() and train() both end here).
void BpeTokenizer::finish_tables() {
  id_to_bytes_.assign(id_to_token_.size(), std::string());
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (static_cast<int32_t>(id) == eos_id_) {
      id_to_bytes_[id] = "\n";
      continue;
    }
    const bool ok = token_bytes(id_to_token_[id], &id_to_bytes_[id]);
    ASSERT_INTERNAL(ok, "token id ", id, " is not in byte-unicode form");
  }
  // A vocabulary may lack some one-byte tokens (small hand-written ones do); encoding such a byte
  // is then an error at encode time, as it is for GPT-2's Python encoder.
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8_append(byte_to_unicode()[b], &ch);
    const auto it = token_to_id_.find(ch);
    byte_id_[b] = it == token_to_id_.end() ? -1 : it->second;
  }
  pair_merge_.clear();
  pair_merge_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto& [a, b] = merges_[r];
    const uint64_t key = pair_key(token_to_id_.at(a), token_to_id_.at(b));
    pair_merge_[key] = {static_cast<int32_t>(r), token_to_id_.at(a + b)};
  }
  cache_ = std::make_shared<EncodeCache>();
}

// -------------------------------------------------------------------------------------------------
// Encoding and decoding

struct BpeTokenizer::EncodeCache {
  std::mutex mu;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> words;  // piece -> (offset, n)
  std::vector<int32_t> ids;                                               // storage of all values
  std::string key;                                                        // scratch for lookups
};

int32_t BpeTokenizer::byte_token(char c) const {
  const int32_t id = byte_id_[static_cast<unsigned char>(c)];
  CHECK(id >= 0, "cannot encode byte 0x", std::hex, static_cast<int>(static_cast<unsigned char>(c)),
        ": this vocabulary has no one-byte token for it. HINT: byte-level vocabularies (GPT-2's, ",
        "or BpeTokenizer::train's) have all 256; this encoder.json is incomplete.");
  return id;
}

// GPT-2's merge loop for one pre-token (see the file comment). O(len * merges applied), which is
// fine for words; the cache keeps it off the hot path.
void BpeTokenizer::bpe_word(std::string_view word, std::vector<int32_t>* out) const {
  // ASSIGNMENT 1 BEGIN BpeTokenizer::bpe_word
  std::vector<int32_t> sym(word.size());
  for (size_t i = 0; i < word.size(); ++i) sym[i] = byte_token(word[i]);
  while (sym.size() > 1) {
    PairMerge best{INT32_MAX, -1};
    int32_t left = -1, right = -1;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const auto it = pair_merge_.find(pair_key(sym[i], sym[i + 1]));
      if (it != pair_merge_.end() && it->second.rank < best.rank)
        best = it->second, left = sym[i], right = sym[i + 1];
    }
    if (best.merged < 0) break;
    size_t w = 0;
    for (size_t r = 0; r < sym.size();) {
      if (r + 1 < sym.size() && sym[r] == left && sym[r + 1] == right) {
        sym[w++] = best.merged;
        r += 2;
      } else {
        sym[w++] = sym[r++];
      }
    }
    sym.resize(w);
  }
  out->insert(out->end(), sym.begin(), sym.end());
  // ASSIGNMENT 1 END
}

void BpeTokenizer::encode_append(std::string_view text, std::vector<int32_t>* out) const {
  EncodeCache& cache = *cache_;
  for (size_t i = 0; i < text.size();) {
    const size_t end = pretoken_end(text, i);
    const std::string_view piece = text.substr(i, end - i);
    i = end;
    if (piece.size() == 1) {
      out->push_back(byte_token(piece[0]));
      continue;
    }
    if (piece.size() > kMaxCachedWordBytes) {
      bpe_word(piece, out);
      continue;
    }
    cache.key.assign(piece.data(), piece.size());
    auto it = cache.words.find(cache.key);
    if (it == cache.words.end()) {
      if (cache.words.size() >= kMaxCachedWords) cache.words.clear(), cache.ids.clear();
      const size_t offset = cache.ids.size();
      bpe_word(piece, &cache.ids);
      const auto value = std::make_pair(static_cast<uint32_t>(offset),
                                        static_cast<uint32_t>(cache.ids.size() - offset));
      it = cache.words.emplace(cache.key, value).first;
    }
    const int32_t* ids = cache.ids.data() + it->second.first;
    out->insert(out->end(), ids, ids + it->second.second);
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text) const {
  CHECK(cache_, "BpeTokenizer::encode called on a tokenizer that was never loaded or trained. ",
        "HINT: create it with BpeTokenizer::load() or BpeTokenizer::train().");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::lock_guard<std::mutex> lock(cache_->mu);
  encode_append(text, &ids);
  return ids;
}

// SPEC §5: every line, the last one included even without a trailing '\n', is its tokens plus
// </s>; "" gives no tokens, "a\n" gives {a, </s>}, "a\n\nb" gives {a, </s>, </s>, b, </s>}. A '\r'
// before the '\n' stays part of the line (CRLF text is not rewritten).
std::vector<int32_t> BpeTokenizer::encode_document(const std::string& text) const {
  CHECK(cache_, "BpeTokenizer::encode_document called on a tokenizer that was never loaded or ",
        "trained. HINT: create it with BpeTokenizer::load() or BpeTokenizer::train().");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::lock_guard<std::mutex> lock(cache_->mu);
  const std::string_view all(text);
  for (size_t start = 0; start < all.size();) {
    size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos) nl = all.size();
    encode_append(all.substr(start, nl - start), &ids);
    ids.push_back(eos_id_);
    start = nl + 1;
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  // ASSIGNMENT 1 BEGIN BpeTokenizer::decode
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    CHECK(id >= 0 && id < vocab_size(), "decode: token id ", id, " at position ", k,
          " is outside the vocabulary [0, ", vocab_size(), "). HINT: were these ids made with a ",
          "different tokenizer? Compare the tokenizer fingerprints.");
    out += id_to_bytes_[id];
  }
  return out;
  // ASSIGNMENT 1 END
}

// FNV-1a 64 over every token (in id order) and every merge (in rank order), each followed by the
// byte 0xFF, which never occurs in UTF-8, so no two different lists hash the same stream of bytes.
std::string BpeTokenizer::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  const auto feed = [&h](const std::string& s) {
    for (const unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xFFu) * 1099511628211ull;
  };
  for (const std::string& t : id_to_token_) feed(t);
  feed("#merges");
  for (const auto& [a, b] : merges_) feed(a + " " + b);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// -------------------------------------------------------------------------------------------------
// Saving

void BpeTokenizer::save(const std::string& encoder_json_path,
                        const std::string& vocab_bpe_path) const {
  CHECK(!id_to_token_.empty(), "BpeTokenizer::save called on an empty tokenizer.");
  std::string json = "{";
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (id > 0) json += ", ";
    json += json_quote_ascii(id_to_token_[id]);  // as GPT-2's file: ASCII, \uXXXX escapes
    json += ": " + std::to_string(id);
  }
  json += "}";
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : merges_) bpe += a + " " + b + "\n";
  write_file_atomic(encoder_json_path, json);
  write_file_atomic(vocab_bpe_path, bpe);
}

// -------------------------------------------------------------------------------------------------
// The pre-tokeniser, as strings (for tests and tools)

std::vector<std::string> gpt2_pretokenize(const std::string& text) {
  std::vector<TextSpan> spans;
  pretokenize_spans(text, &spans);
  std::vector<std::string> out;
  out.reserve(spans.size());
  for (const TextSpan& s : spans) out.push_back(text.substr(s.begin, s.size));
  return out;
}

}  // namespace moe
