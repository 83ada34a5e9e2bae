// fewshot.cpp — see fewshot.h.
#include "eval/fewshot.h"

#include <cstdint>
#include <numeric>
#include <unordered_set>

#include "core/check.h"
#include "core/rng.h"

namespace moe {

std::vector<int64_t> sample_demonstrations(int64_t pool_size, int k, uint64_t seed,
                                           int64_t item_index, int64_t exclude) {
  const int64_t available = pool_size - ((exclude >= 0 && exclude < pool_size) ? 1 : 0);
  CHECK(k >= 0 && k <= available, "cannot draw ", k, " demonstrations from a pool of ", available,
        " items. HINT: lower --shots");
  // One generator per (draw seed, item): Rng's splitmix64 seeding spreads the combined value.
  Rng rng(seed * 0x9E3779B97F4A7C15ULL ^ static_cast<uint64_t>(item_index));
  std::vector<int64_t> picked;
  picked.reserve(static_cast<size_t>(k));
  if (2 * static_cast<int64_t>(k) > available) {
    // Many of a small pool: shuffle the allowed indices and take the first k (Fisher-Yates).
    std::vector<int64_t> all;
    for (int64_t i = 0; i < pool_size; ++i)
      if (i != exclude) all.push_back(i);
    for (int i = 0; i < k; ++i) {
      const size_t j = static_cast<size_t>(i) + rng.below(all.size() - static_cast<size_t>(i));
      std::swap(all[static_cast<size_t>(i)], all[j]);
      picked.push_back(all[static_cast<size_t>(i)]);
    }
    return picked;
  }
  // Few of a large pool: draw and reject repeats (and the item itself); fewer than 2 tries per
  // pick on average, and no O(pool) work.
  std::unordered_set<int64_t> seen;
  while (static_cast<int>(picked.size()) < k) {
    const int64_t i = static_cast<int64_t>(rng.below(static_cast<uint64_t>(pool_size)));
    if (i == exclude || !seen.insert(i).second) continue;
    picked.push_back(i);
  }
  return picked;
}

std::vector<int32_t> fewshot_prefix(const std::vector<const std::vector<int32_t>*>& demos,
                                    int32_t eos_id) {
  std::vector<int32_t> out{eos_id};
  for (const std::vector<int32_t>* d : demos) {
    out.insert(out.end(), d->begin(), d->end());
    out.push_back(eos_id);
  }
  return out;
}

}  // namespace moe
