// bpe_train.cpp — learning a byte-level BPE vocabulary from a corpus (SPEC §5: "a trainer for small
// vocabularies"), in GPT-2's format so that the result encodes, saves and loads like GPT-2's files.
//
// The recipe (Sennrich et al. 2016, byte-level as in GPT-2):
//   1. Split the text on '\n' (newlines become </s> in documents, so they are never merged) and
//      pre-tokenise each line with GPT-2's rules; count how often each distinct piece occurs.
//   2. Start from the 256 one-byte tokens. Their ids follow GPT-2's table order (bytes 33..126,
//      161..172, 174..255, then the other 68 bytes in byte order), so ids 0..255 mean the same
//      bytes as in GPT-2's encoder.json.
//   3. Repeatedly merge the adjacent pair with the highest count (summed over pieces, weighted by
//      piece frequency). Ties go to the smallest (left id, right id), so training is deterministic.
//      A merge replaces the pair at every place it occurs, left to right, exactly as encoding will.
//   4. Stop at vocab_size - 1 tokens and append "</s>" as the last id.
//
// Speed: pair counts are updated incrementally. Each pair keeps the list of pieces it occurs in, so
// a merge touches only those pieces, and a max-heap with lazy deletion picks the next pair (stale
// entries are re-checked against the live count when popped).
//
// Left out: a minimum pair frequency (pairs seen once are merged too, once nothing better is left),
// special tokens other than </s>, and training on more text than fits in memory.
#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"
#include "data/bpe.h"
#include "data/unicode.h"

namespace moe {
namespace {

uint64_t pair_of(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t left_of(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct HeapEntry {
  int64_t count;
  uint64_t pair;
};
// Max-heap order: higher count first, then the smaller pair key.
struct HeapLess {
  bool operator()(const HeapEntry& a, const HeapEntry& b) const {
    return a.count != b.count ? a.count < b.count : a.pair > b.pair;
  }
};

struct Piece {
  std::vector<int32_t> syms;  // current tokens of the piece
  int64_t freq;               // how often the piece occurs in the corpus
};

struct TrainState {
  std::vector<Piece> pieces;
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_pieces;  // may list stale pieces
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapLess> heap;
};

// Step 1: distinct pre-tokens of every line with their counts, as byte-token id sequences.
void count_pieces(const std::string& text, const std::array<int32_t, 256>& byte_id,
                  TrainState* st) {
  std::unordered_map<std::string_view, int64_t> counts;
  const std::string_view all(text);
  for (size_t start = 0; start < all.size();) {
    size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos) nl = all.size();
    const std::string_view line = all.substr(start, nl - start);
    for (size_t i = 0; i < line.size();) {
      const size_t end = pretoken_end(line, i);
      if (end - i > 1) ++counts[line.substr(i, end - i)];  // one-byte pieces have no pairs
      i = end;
    }
    start = nl + 1;
  }
  // Sorted, so that the order of pieces (and of their pair lists) never depends on hashing.
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  st->pieces.reserve(sorted.size());
  for (const auto& [word, freq] : sorted) {
    Piece p{{}, freq};
    for (const char c : word) p.syms.push_back(byte_id[static_cast<unsigned char>(c)]);
    st->pieces.push_back(std::move(p));
  }
}

void index_pairs(TrainState* st) {
  for (int32_t w = 0; w < static_cast<int32_t>(st->pieces.size()); ++w) {
    const Piece& p = st->pieces[w];
    for (size_t i = 0; i + 1 < p.syms.size(); ++i) {
      const uint64_t key = pair_of(p.syms[i], p.syms[i + 1]);
      st->pair_count[key] += p.freq;
      auto& where = st->pair_pieces[key];
      if (where.empty() || where.back() != w) where.push_back(w);
    }
  }
  for (const auto& [key, count] : st->pair_count) st->heap.push({count, key});
}

// Pops stale entries until the top holds a live count; returns false when no pair is left.
bool pop_best_pair(TrainState* st, HeapEntry* best) {
  // ASSIGNMENT 1 BEGIN pop_best_pair
  while (!st->heap.empty()) {
    const HeapEntry top = st->heap.top();
    st->heap.pop();
    const int64_t live = st->pair_count[top.pair];
    if (live == top.count && live > 0) {
      *best = top;
      return true;
    }
    if (live > 0 && live < top.count) st->heap.push({live, top.pair});
  }
  return false;
  // ASSIGNMENT 1 END
}

// Step 3 for one merge: rewrite every piece that holds (left, right), moving pair counts along.
void apply_merge(uint64_t pair, int32_t merged, TrainState* st) {
  // ASSIGNMENT 1 BEGIN apply_merge
  const int32_t left = left_of(pair), right = right_of(pair);
  std::unordered_set<uint64_t> grown;  // pairs with `merged` whose counts went up
  const std::vector<int32_t> where = std::move(st->pair_pieces[pair]);
  st->pair_pieces.erase(pair);
  for (const int32_t w : where) {
    std::vector<int32_t>& s = st->pieces[w].syms;
    const int64_t f = st->pieces[w].freq;
    bool found = false;
    for (size_t i = 0; i + 1 < s.size() && !found; ++i) found = s[i] == left && s[i + 1] == right;
    if (!found) continue;  // stale entry: an earlier merge already consumed the pair here
    for (size_t i = 0; i + 1 < s.size(); ++i) st->pair_count[pair_of(s[i], s[i + 1])] -= f;
    size_t out = 0;
    for (size_t r = 0; r < s.size();) {
      // The same left-to-right replacement as BpeTokenizer::bpe_word, so training sees exactly
      // the segmentation that encoding will later produce.
      if (r + 1 < s.size() && s[r] == left && s[r + 1] == right) {
        s[out++] = merged;
        r += 2;
      } else {
        s[out++] = s[r++];
      }
    }
    s.resize(out);
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = pair_of(s[i], s[i + 1]);
      st->pair_count[key] += f;
      if (s[i] != merged && s[i + 1] != merged) continue;
      grown.insert(key);
      auto& list = st->pair_pieces[key];
      if (list.empty() || list.back() != w) list.push_back(w);
    }
  }
  // HeapLess orders all entries totally, so the push order (hash order here) cannot matter.
  for (const uint64_t key : grown) st->heap.push({st->pair_count[key], key});
  // ASSIGNMENT 1 END
}

}  // namespace

BpeTokenizer BpeTokenizer::train(const std::string& text, int vocab_size) {
  CHECK(vocab_size >= 257, "BpeTokenizer::train: vocab_size ", vocab_size, " is too small; it ",
        "needs 256 byte tokens plus </s>. HINT: use e.g. 2048, 4096 or 8192.");
  BpeTokenizer tok;
  const auto& order = gpt2_byte_order();
  std::array<int32_t, 256> byte_id{};
  for (int32_t id = 0; id < 256; ++id) {
    std::string ch;
    utf8_append(byte_to_unicode()[order[id]], &ch);
    byte_id[order[id]] = id;
    tok.token_to_id_.emplace(ch, id);
    tok.id_to_token_.push_back(std::move(ch));
  }
  TrainState st;
  count_pieces(text, byte_id, &st);
  index_pairs(&st);
  std::unordered_set<uint64_t> merged_pairs;
  HeapEntry best{};
  while (static_cast<int>(tok.id_to_token_.size()) < vocab_size - 1 && pop_best_pair(&st, &best)) {
    const int32_t left = left_of(best.pair), right = right_of(best.pair);
    std::string joined = tok.id_to_token_[left] + tok.id_to_token_[right];
    // Two merge trees can spell the same bytes ("ab c" and "a bc"): reuse the existing token.
    auto it = tok.token_to_id_.find(joined);
    if (it == tok.token_to_id_.end()) {
      it = tok.token_to_id_.emplace(joined, static_cast<int32_t>(tok.id_to_token_.size())).first;
      tok.id_to_token_.push_back(joined);
    }
    // A pair can only come back through such a reused token; it keeps its first rank.
    if (merged_pairs.insert(best.pair).second) {
      tok.merge_rank_.emplace(tok.id_to_token_[left] + " " + tok.id_to_token_[right],
                              static_cast<int>(tok.merges_.size()));
      tok.merges_.emplace_back(tok.id_to_token_[left], tok.id_to_token_[right]);
    }
    apply_merge(best.pair, it->second, &st);
  }
  tok.eos_id_ = static_cast<int32_t>(tok.id_to_token_.size());
  tok.id_to_token_.push_back("</s>");
  tok.token_to_id_.emplace("</s>", tok.eos_id_);
  tok.finish_tables();
  return tok;
}

}  // namespace moe
