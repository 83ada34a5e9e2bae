// synthetic.h — the embedded default corpus: deterministic synthetic text in five "domains"
// (SPEC §5 "Data": plain text lines, documents separated by an empty line).
//
// Why synthetic: a student can train and see results with no download at all, and the domains
// are built to differ sharply in vocabulary and layout (prose, digits and operators, bulleted
// lists, encyclopedia-style facts, code), so that later the MoE router has something to
// specialise on and the routing plots show it.
//
// Determinism: every document is a pure function of (seed, index), drawn from our own splitmix64
// generator, never from std:: distributions (their output differs between standard libraries).
// The same seed gives the same bytes on every machine and compiler.
//
// The "facts" domain talks about one fixed invented world (countries, capitals, people, ...) that
// does NOT depend on the seed, so the train and validation corpora (different seeds) state the
// same facts and a model can learn them.
//
// Left out: any claim of natural-language realism; the grammar is small on purpose.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

enum SyntheticDomain {
  SYNTHETIC_STORY = 0,       // short stories from a small grammar with pronoun agreement
  SYNTHETIC_ARITHMETIC = 1,  // equations, multiplication tables, word problems (all correct)
  SYNTHETIC_LIST = 2,        // shopping lists, to-do lists, numbered steps
  SYNTHETIC_FACTS = 3,       // key-value facts about a fixed invented world, stated consistently
  SYNTHETIC_CODE = 4,        // tiny Python-like functions and assignments
  SYNTHETIC_NUM_DOMAINS = 5,
};

struct SyntheticDoc {
  int domain = 0;    // a SyntheticDomain value
  std::string text;  // ASCII lines, each ending in '\n'; never contains an empty line
};

int synthetic_num_domains();
// Short lowercase name ("story", "arithmetic", ...); throws moe::Error for an unknown domain.
const char* synthetic_domain_name(int domain);

// Document `index` of the stream for `seed`. Random access: documents can be made in any order.
SyntheticDoc synthetic_document(uint64_t seed, uint64_t index);

// Documents 0, 1, 2, ... of the stream, each followed by one empty line ("\n\n" between
// documents, SPEC §5), until at least `target_bytes` bytes have been written.
std::string synthetic_corpus(uint64_t seed, size_t target_bytes);

// The splitmix64 generator used above, exposed because the dataset shuffle and tests use it too.
// splitmix64 passes BigCrush, is one line of arithmetic, and any 64-bit seed (0 included) is fine.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform integer in [0, n), n > 0. Multiply-shift on the top 32 bits: no division, and the
  // bias (at most n / 2^32) is irrelevant for word choice and shuffling.
  uint32_t below(uint32_t n) {
    return static_cast<uint32_t>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }
  // Uniform integer in [lo, hi], lo <= hi.
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<uint32_t>(hi - lo + 1)));
  }
};

// Mix two 64-bit values into one seed (one splitmix64 step over their combination), so that
// (seed, index) pairs that differ in any bit give unrelated streams.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  SplitMix64 g(a ^ (b * 0xD1B54A32D192ED03ull));
  return g.next();
}

}  // namespace moe
