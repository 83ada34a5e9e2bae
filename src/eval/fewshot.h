// fewshot.h — k-shot priming prompts (SPEC §6 "Few-shot").
//
// A k-shot prompt is k demonstrations — items of the training split written out with their gold
// answer (TaskItem::demo) — each followed by a single newline, encoded as </s>, then the test
// item:
//     </s> demo_1 </s> demo_2 </s> ... demo_k </s> context continuation
// The leading </s> is the document start every prompt gets, zero-shot included (scoring.h).
//
// Sampling: for draw d (seed d, d = 0..draws-1) and evaluated item j, the k demonstrations are k
// distinct pool indices drawn by moe::Rng seeded from (d, j) alone. So a prompt does not depend on
// --limit, on the batch size or on the order items are scored in, and the same seed always gives
// the same demonstrations. When the pool is the evaluated split itself (HellaSwag, ReCoRD, or
// StoryCloze on request), item j is excluded from its own demonstrations.
//
// Left out: balancing demonstrations by label, ordering heuristics, instructions.
#pragma once
#include <cstdint>
#include <vector>

namespace moe {

// k distinct indices in [0, pool_size), excluding `exclude` (pass -1 for none), in the random
// order they are shown in. CHECK-fails when the pool is too small for k.
std::vector<int64_t> sample_demonstrations(int64_t pool_size, int k, uint64_t seed,
                                           int64_t item_index, int64_t exclude);

// The tokens before the test item: </s>, then each demonstration followed by </s>.
std::vector<int32_t> fewshot_prefix(const std::vector<const std::vector<int32_t>*>& demos,
                                    int32_t eos_id);

}  // namespace moe
