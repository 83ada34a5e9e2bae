// parallel.cpp — the thread pool behind parallel_for (see parallel.h for the determinism rule).
#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

namespace {

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }  // +1: the caller works too

  void resize(int n) {
    stop();
    quit_ = false;
    // New workers must not mistake the last finished task's generation for new work.
    const uint64_t gen = generation_;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, gen] { loop(i, gen); });
  }

  // Run task(i) for i in [0, size()) — i = 0 on the calling thread — and wait for all.
  void run(const std::function<void(int)>& task) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      task_ = &task;
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    cv_.notify_all();
    task(0);
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void loop(int index, uint64_t seen) {
    for (;;) {
      const std::function<void(int)>* task;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        task = task_;
      }
      (*task)(index);
      std::unique_lock<std::mutex> lk(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop() {
    {
      std::unique_lock<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool quit_ = false;
};

int default_threads() {
  if (const char* env = std::getenv("MOE_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

thread_local bool t_inside_parallel = false;

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(std::max(1, n)); }

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  const int threads = num_threads();
  // Nested calls run serially: the pool is already busy with the outer loop.
  if (threads == 1 || n < 2 * std::max<int64_t>(grain, 1) || t_inside_parallel) {
    fn(0, n);
    return;
  }
  const int64_t chunks = std::min<int64_t>(threads, n / std::max<int64_t>(grain, 1));
  pool().run([&](int i) {
    if (i >= chunks) return;
    const int64_t begin = n * i / chunks, end = n * (i + 1) / chunks;
    t_inside_parallel = true;
    fn(begin, end);
    t_inside_parallel = false;
  });
}

}  // namespace moe
