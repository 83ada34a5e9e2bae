// parallel.h — a tiny fixed thread pool for the CPU kernels (standard library only).
//
// parallel_for(n, fn) splits [0, n) into one contiguous chunk per thread and calls fn(begin, end)
// on each. The split depends only on n and the thread count, never on timing, and kernels only
// parallelise over *independent outputs* (rows of a matmul, heads of attention) — no thread ever
// adds into another's output — so results are bitwise identical from run to run. That is what
// lets `--resume` continue the exact same loss curve.
//
// Threads: MOE_THREADS if set, else std::thread::hardware_concurrency(). Small loops (n below
// `grain`) run inline: waking threads costs more than it saves.
#pragma once
#include <cstdint>
#include <functional>

namespace moe {

int num_threads();
void set_num_threads(int n);  // for tests and benchmarks; 1 = serial
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

}  // namespace moe
