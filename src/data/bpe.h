// bpe.h — byte-level BPE tokenizer, GPT-2 compatible (SPEC §5 "Data").
//
// Loads GPT-2's two files (encoder.json: token string -> id; vocab.bpe: ranked merges) and encodes
// exactly as GPT-2 does: the same pre-tokenisation rules (contractions, letter runs, digit runs,
// other-symbol runs, whitespace handling), the same byte -> unicode-character table, the same
// lowest-rank-first merging. Decoding maps ids back to bytes, so any byte string round-trips,
// invalid UTF-8 included. A trainer learns a small vocabulary from a corpus and writes the same
// two-file format, so a trained tokenizer loads through the same code.
//
// The `</s>` token: SPEC §5 ends every text line with `</s>` (newlines are encoded as `</s>`, no
// BOS). encode_document() applies that rule; encode() is the plain GPT-2 encoder.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace moe {

class BpeTokenizer {
 public:
  // Load encoder.json + vocab.bpe. Throws moe::Error naming the file on any problem. If the
  // encoder has no "</s>" entry, one is appended with the next free id (GPT-2's own file has none).
  static BpeTokenizer load(const std::string& encoder_json_path, const std::string& vocab_bpe_path);

  // Learn `vocab_size` tokens (256 byte tokens + merges + "</s>") from `text`, pre-tokenised with
  // the same rules as encode(); newlines are not merged (they become </s> in documents).
  static BpeTokenizer train(const std::string& text, int vocab_size);

  // Write encoder.json + vocab.bpe in GPT-2's format (atomic: temp file + rename).
  void save(const std::string& encoder_json_path, const std::string& vocab_bpe_path) const;

  // Plain GPT-2 encoding of arbitrary bytes ("Hello world" -> {15496, 995} with GPT-2's files).
  std::vector<int32_t> encode(const std::string& text) const;
  // Inverse of encode: concatenated bytes of each token. </s> decodes to "\n".
  std::string decode(const std::vector<int32_t>& ids) const;

  // SPEC §5 document encoding: each line's tokens followed by </s> (the '\n' itself is not
  // encoded as a byte token); an empty line becomes a lone </s> (document separator).
  std::vector<int32_t> encode_document(const std::string& text) const;

  int vocab_size() const { return static_cast<int>(id_to_token_.size()); }
  int eos_id() const { return eos_id_; }
  // A short stable fingerprint (e.g. hex of a 64-bit FNV-1a over merges + vocab) naming this
  // tokenizer, stored in token-cache and checkpoint headers to detect mismatches.
  std::string fingerprint() const;

 private:
  std::vector<std::string> id_to_token_;                 // (V,) token strings in byte-unicode form
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<std::string, int> merge_rank_;      // "a b" -> rank
  std::vector<std::pair<std::string, std::string>> merges_;
  int32_t eos_id_ = -1;
  // implementation-private caches may be added here

  // Tables derived from the five members above by finish_tables(), used by encode/decode.
  struct PairMerge {
    int32_t rank;    // line order in vocab.bpe: lower merges first
    int32_t merged;  // id of the concatenated token
  };
  std::vector<std::string> id_to_bytes_;                 // (V,) raw bytes of each id; </s> -> "\n"
  std::array<int32_t, 256> byte_id_{};                   // one-byte token of each byte, or -1
  std::unordered_map<uint64_t, PairMerge> pair_merge_;   // (left id << 32 | right id) -> merge
  // Memo of pre-token -> ids, behind a mutex (bpe.cpp). Copies of a tokenizer share it, which is
  // safe because they share the vocabulary too.
  struct EncodeCache;
  std::shared_ptr<EncodeCache> cache_;

  void read_encoder_json(const std::string& path);
  void read_vocab_bpe(const std::string& path, const std::string& encoder_path);
  void finish_tables();
  int32_t byte_token(char c) const;  // byte_id_ lookup that throws for a missing token
  void bpe_word(std::string_view word, std::vector<int32_t>* out) const;
  void encode_append(std::string_view text, std::vector<int32_t>* out) const;  // cache locked
  friend struct BpeTokenizerAccess;
};

// The pre-tokeniser alone (GPT-2's regex, written by hand): exposed for tests.
std::vector<std::string> gpt2_pretokenize(const std::string& text);

}  // namespace moe
