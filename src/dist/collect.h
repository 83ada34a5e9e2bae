// collect.h — the small collectives that let a program share the rows of its batches over W
// ranks and still agree on every result and every failure (SPEC §4 "eval and finetune under
// mpirun"; notes/finetune.md "Under mpirun").
//
// Splitting. An expert-parallel forward is collective: the all-to-all of every MoE layer needs
// every rank to run the same number of forwards with the same (rows, length) shape. So a batch of
// n rows is cut into W equal slots of ceil(n / W) rows (row_share); the rows a rank lacks at the
// end of a short batch are dummy rows that the caller makes harmless (finetune: length 0, which
// the MoE padding mask routes nowhere, and an ignored label).
//
// Combining. Each rank then holds the results of its own slot; dist_all_gather_dim0 gives every
// rank all of them in rank order (slot q's rows at [q*slot, (q+1)*slot)), so every rank computes
// the same accuracy from the same numbers. It moves bytes only: the gathered values are the
// ranks' values bit for bit.
//
// Agreeing. A rank that throws while the others go on would leave them waiting in the next
// collective. dist_throw_if_any and dist_agree_on_errors turn one rank's failure into the same
// moe::Error on every rank (the lowest failing rank's message), and dist_check_same refuses ranks
// whose settings or data differ from rank 0's before the first exchange, naming the setting.
//
// Every function here is collective over the current group (dist.h, DistGroupScope): every rank
// calls it at the same point. With one rank (or no MPI) they do no communication at all.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moe {

// The rows [begin, end) of a batch of n rows that rank `rank` of `world` takes, in slots of
// `slot` = ceil(n / world) rows: rank r takes [r*slot, (r+1)*slot) clipped to n. The last ranks
// of a short batch may get fewer rows than `slot`, or none; they fill the rest with dummy rows.
struct RowShare {
  int64_t slot = 0;   // rows every rank runs (real + dummy)
  int64_t begin = 0;  // first row of the batch this rank owns
  int64_t end = 0;    // one past its last row (end - begin <= slot; may equal begin)
  int64_t count() const { return end - begin; }
};
RowShare row_share(int64_t n, int rank, int world);

// Every rank's `local` (same shape and dtype on every rank, any device) concatenated along dim 0
// in rank order, returned on every rank as a CPU tensor of (world * local.size(0), ...).
Tensor dist_all_gather_dim0(const Tensor& local);

// `my_error` is this rank's error message, "" when it has none. If any rank has one, every rank
// throws moe::Error with the message of the lowest such rank: unchanged on that rank, prefixed
// "rank q/W: " on the others (so their own output says where it came from).
void dist_throw_if_any(const std::string& my_error);

// Runs f(); an exception on any rank (moe::Error or any std::exception) becomes
// dist_throw_if_any's error on every rank. f must not itself run collectives that a failing rank
// would skip.
void dist_agree_on_errors(const std::function<void()>& f);

// Compares `mine` (key, value pairs, the same keys in the same order on every rank) with rank 0's.
// On a difference every rank throws: "<key> is <v> on rank q but <v0> on rank 0. HINT: <hint>".
void dist_check_same(const std::vector<std::pair<std::string, std::string>>& mine,
                     const std::string& hint);

}  // namespace moe
