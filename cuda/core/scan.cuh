// scan.cuh — a stable counting sort by integer key, without atomics: the one parallel primitive
// behind the gate's slot order (SPEC §3 step 5) and the embedding's gradient (a scatter-add).
//
// For N items with keys in [0, K) (a key outside [0, K), e.g. -1, means
// "not taking part"), it computes
//   rank[i]   = #{ j < i : key[j] == key[i] }      (-1 where key[i] < 0)
//   counts[k] = #{ i : key[i] == k }
//   offsets[k] = counts[0] + ... + counts[k-1]     (optional)
// so offsets[key[i]] + rank[i] is item i's place in the stable sort by key. For the gate, key =
// the chosen expert and rank is exactly the slot `loc` of SPEC §3 step 5 (a running count of
// earlier picks of the same expert, fairseq's cumsum over tokens). For the embedding backward,
// key = token id, and the sorted order lets one thread block sum each row's gradient in token
// order, with no two blocks writing the same row.
//
// How, in three passes (chunks of kScanChunk items, one thread block each):
//   1. inside each chunk, every item counts the earlier items with its key (shared memory), and
//      the last item of each key writes that key's count in the chunk into a (chunks, K) table;
//   2. one thread per key turns its column of that table into exclusive prefix sums over chunks
//      (and the total is counts[k]);
//   3. each item adds its chunk's prefix for its key to its in-chunk rank.
// Every count is an integer, so the result is exact and the same on every run; no atomics are
// used, so the order of work never matters. offsets is an exclusive scan of counts in one block.
#pragma once
#include <cstdint>

namespace moe {

constexpr int kScanChunk = 1024;

// rank (N), counts (K) and, if not null, offsets (K)  <-  keys (N). Device pointers.
void stable_rank_by_key_cuda(int32_t* rank, int32_t* counts, int32_t* offsets,
                             const int32_t* keys, int64_t N, int64_t K);

}  // namespace moe
