// device.cu — device.h for CUDA builds: finding GPUs, the caching allocator behind every CUDA
// tensor, and the byte copies between host and device.
//
// Why a caching allocator: cudaMalloc and cudaFree are slow (cudaFree also waits for the whole
// device to go idle), and a training step creates and drops hundreds of activation tensors. The
// sizes repeat exactly from one step to the next, so after the first step every request can be
// served from blocks that earlier tensors gave back. The allocator below never returns memory to
// CUDA on its own; it does so only when cudaMalloc runs out of memory (flush the cache, retry
// once) or when asked (cuda_empty_cache). What it leaves out, on purpose: splitting big blocks to
// serve small requests, and streams (see Note [Reusing a freed block is safe on one stream]).
// notes/cuda.md walks through it with numbers.
#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "cuda_common.h"

namespace moe {
namespace {

// ---------------------------------------------------------------------------------------------
// finding devices

struct DeviceProbe {
  int count = 0;
  std::string reason;  // why count is 0, in the driver's words
};

// Asked once per process: the answer cannot change, and the first call also starts the driver.
const DeviceProbe& probe_devices() {
  static const DeviceProbe probe = [] {
    DeviceProbe p;
    const cudaError_t err = cudaGetDeviceCount(&p.count);
    if (err != cudaSuccess) {
      p.count = 0;
      p.reason = str_cat(cudaGetErrorName(err), ": ", cudaGetErrorString(err));
      CUDA_IGNORE_ERROR(err);  // "no GPU" is an answer here, not a failure
    } else if (p.count == 0) {
      p.reason = "cudaGetDeviceCount found 0 devices";
    }
    return p;
  }();
  return probe;
}

// The program's advice for out-of-memory errors (cuda_set_oom_hint).
std::string& oom_hint() {
  static std::string hint;
  return hint;
}

std::string gib_str(size_t bytes) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1)
     << static_cast<double>(bytes) / static_cast<double>(size_t(1) << 30) << " GiB";
  return os.str();
}

// Sets the current CUDA device for a scope and restores the previous one, so freeing blocks of
// another device does not change which device the caller's later allocations land on.
class CurrentDeviceGuard {
 public:
  explicit CurrentDeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&saved_));
    if (device != saved_) CUDA_CHECK(cudaSetDevice(device));
    switched_ = device != saved_;
  }
  ~CurrentDeviceGuard() {
    if (switched_) CUDA_IGNORE_ERROR(cudaSetDevice(saved_));  // destructors must not throw
  }
  CurrentDeviceGuard(const CurrentDeviceGuard&) = delete;
  CurrentDeviceGuard& operator=(const CurrentDeviceGuard&) = delete;

 private:
  int saved_ = 0;
  bool switched_ = false;
};

// ---------------------------------------------------------------------------------------------
// size classes

constexpr size_t kMinBlock = 512;                 // the granularity of every block
constexpr size_t kSmallLimit = size_t(1) << 20;   // below 1 MiB: multiples of 512 bytes
constexpr size_t kMaxRequest = size_t(1) << 60;   // far beyond any GPU; keeps rounding exact

size_t round_up(size_t x, size_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// Small requests round up to a multiple of 512 bytes (at most 511 bytes wasted). From 1 MiB up,
// to one of four classes per power of two (1, 1.25, 1.5, 1.75 x 2^k), so at most 25% is wasted
// and a tensor whose size varies a little (a shorter last batch) still reuses the same block.
size_t round_block_size(size_t bytes) {
  CHECK(bytes <= kMaxRequest, "CUDA allocation of ", bytes, " bytes is larger than any device");
  if (bytes < kSmallLimit) return std::max(kMinBlock, round_up(bytes, kMinBlock));
  int top_bit = 63;
  while (!(bytes >> top_bit)) --top_bit;          // 2^top_bit <= bytes < 2^(top_bit+1)
  return round_up(bytes, size_t(1) << (top_bit - 2));
}

// ---------------------------------------------------------------------------------------------
// the caching allocator

// Note [Reusing a freed block is safe on one stream]
// A tensor is freed on the host as soon as its last handle goes, while kernels that read it may
// still be queued on the GPU. Handing its block to the next tensor at once is still safe because
// every kernel and copy in moe-gpt runs on the one default stream, in issue order: whatever the
// new owner launches runs after the queued work on the old owner is done. A second stream would
// break this (PyTorch records an event per block for that case); add it together with streams.
class CudaCachingAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;

  CudaMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_cached(kAllDevices);
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

 private:
  struct Block {
    int device;
    size_t size;  // rounded
  };
  using FreeListKey = std::pair<int, size_t>;  // (device, rounded size)
  static constexpr int kAllDevices = -1;

  void* cuda_malloc_or_null(size_t size);
  void release_cached(int device);
  [[noreturn]] void fail_out_of_memory(size_t bytes, size_t size, int device,
                                       size_t cached_before);

  std::mutex mu_;  // CPU worker threads may drop tensors concurrently
  std::map<FreeListKey, std::vector<void*>> free_lists_;
  std::unordered_map<void*, Block> live_;  // every block handed out and not yet given back
  CudaMemoryStats stats_;
};

int current_device_or_throw() {
  const DeviceProbe& probe = probe_devices();
  CHECK(probe.count > 0, "cannot create a CUDA tensor: no CUDA device is visible (", probe.reason,
        "). HINT: check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or keep tensors on the CPU");
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

void* CudaCachingAllocator::allocate(size_t bytes) {
  const size_t size = round_block_size(bytes);
  const int device = current_device_or_throw();
  std::lock_guard<std::mutex> lock(mu_);
  void* ptr = nullptr;
  auto list = free_lists_.find({device, size});
  if (list != free_lists_.end() && !list->second.empty()) {
    ptr = list->second.back();  // the most recently freed block: likely still in L2
    list->second.pop_back();
    stats_.bytes_cached -= size;
    ++stats_.num_cache_hits;
  } else {
    ptr = cuda_malloc_or_null(size);
    if (ptr == nullptr) {  // out of memory: give the cache back to CUDA and try once more
      const size_t cached_before = stats_.bytes_cached;
      release_cached(device);
      ptr = cuda_malloc_or_null(size);
      if (ptr == nullptr) fail_out_of_memory(bytes, size, device, cached_before);
    }
  }
  live_[ptr] = Block{device, size};
  stats_.bytes_in_use += size;
  stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  return ptr;
}

// Called from Storage's destructor: the block goes to its free list, not back to CUDA.
void CudaCachingAllocator::deallocate(void* ptr, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  ASSERT_INTERNAL(it != live_.end(), "CUDA free of a pointer the allocator did not hand out");
  const Block block = it->second;
  ASSERT_INTERNAL(block.size == round_block_size(bytes), "CUDA free with a different size");
  live_.erase(it);
  stats_.bytes_in_use -= block.size;
  stats_.bytes_cached += block.size;
  free_lists_[{block.device, block.size}].push_back(ptr);
}

// Returns nullptr when the device is out of memory; every other failure throws.
void* CudaCachingAllocator::cuda_malloc_or_null(size_t size) {
  void* ptr = nullptr;
  const cudaError_t malloc_status = cudaMalloc(&ptr, size);
  if (malloc_status == cudaErrorMemoryAllocation) {
    CUDA_IGNORE_ERROR(malloc_status);  // handled by the caller; clear the runtime's last error
    return nullptr;
  }
  CUDA_CHECK(malloc_status);
  ++stats_.num_cuda_malloc;
  return ptr;
}

// cudaFree every cached block of `device` (or of all devices). Caller holds mu_.
void CudaCachingAllocator::release_cached(int device) {
  for (auto it = free_lists_.begin(); it != free_lists_.end();) {
    const int block_device = it->first.first;
    if (device != kAllDevices && block_device != device) {
      ++it;
      continue;
    }
    CurrentDeviceGuard guard(block_device);
    for (void* ptr : it->second) {
      CUDA_CHECK(cudaFree(ptr));
      stats_.bytes_cached -= it->first.second;
      ++stats_.num_cuda_free;
    }
    it = free_lists_.erase(it);
  }
}

void CudaCachingAllocator::fail_out_of_memory(size_t bytes, size_t size, int device,
                                              size_t cached_before) {
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_IGNORE_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));  // only decorates the message
  throw Error(str_cat(
      "CUDA out of memory on cuda:", device, ": cannot allocate ", bytes, " bytes (",
      gib_str(bytes), ", block of ", size, " bytes). This process holds ", stats_.bytes_in_use,
      " bytes in live tensors; ", cached_before, " cached bytes were freed before the retry. ",
      "The device reports ", gib_str(free_bytes), " free of ", gib_str(total_bytes), ". ",
      "HINT: ", oom_hint().empty() ? "use a smaller batch or model" : oom_hint(),
      ", or spread the experts over more GPUs"));
}

// Leaked on purpose: tensors held by static objects may be destroyed after main() returns, and
// they must still find a live allocator. The driver releases all device memory at process exit.
CudaCachingAllocator& caching_allocator() {
  static CudaCachingAllocator* allocator = new CudaCachingAllocator();
  return *allocator;
}

// ---------------------------------------------------------------------------------------------
// copies

// Synchronous copies, simple and safe: host->device returns once the host bytes are staged (the
// host buffer may be reused at once); device->host returns when the bytes are on the host, after
// all earlier work on the default stream (so a kernel's failure surfaces here at the latest);
// device->device is queued on the default stream, so every later kernel sees the copied bytes.
void cuda_copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  ASSERT_INTERNAL(dst_dev.is_cuda() || src_dev.is_cuda(), "host-to-host copy sent to CUDA");
  if (dst_dev.is_cuda() && src_dev.is_cuda() && dst_dev.index != src_dev.index) {
    CUDA_CHECK(cudaMemcpyPeer(dst, dst_dev.index, src, src_dev.index, bytes));
    return;
  }
  const cudaMemcpyKind kind = src_dev.is_cpu()   ? cudaMemcpyHostToDevice
                              : dst_dev.is_cpu() ? cudaMemcpyDeviceToHost
                                                 : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// device.h

bool built_with_cuda() { return true; }

int cuda_device_count() { return probe_devices().count; }

bool cuda_available() { return cuda_device_count() > 0; }

// The allocator is registered even when no GPU is visible, so that creating a CUDA tensor then
// fails with "no CUDA device is visible" (true) rather than "built without CUDA" (false).
void devices_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_allocator(DeviceType::CUDA, &caching_allocator());
    register_copy_bytes(&cuda_copy_bytes);
  });
}

std::string devices_describe() {
  const DeviceProbe& probe = probe_devices();
  if (probe.count == 0) return str_cat("cpu only (built with CUDA; ", probe.reason, ")");
  std::string out;
  for (int i = 0; i < probe.count; ++i) {
    cudaDeviceProp prop;
    const cudaError_t err = cudaGetDeviceProperties(&prop, i);
    if (!out.empty()) out += "; ";
    if (err != cudaSuccess) {
      CUDA_IGNORE_ERROR(err);  // a log line must not fail; say what is missing instead
      out += str_cat("cuda:", i, " (properties unavailable: ", cudaGetErrorString(err), ")");
      continue;
    }
    const size_t gib = (prop.totalGlobalMem + (size_t(1) << 29)) >> 30;  // rounded
    out += str_cat("cuda:", i, " ", prop.name, ", ", gib, " GiB, sm_", prop.major, prop.minor);
  }
  return out;
}

CudaMemoryStats cuda_memory_stats() { return caching_allocator().stats(); }

void cuda_empty_cache() {
  if (cuda_available()) caching_allocator().empty_cache();
}

void cuda_reset_peak_memory() { caching_allocator().reset_peak(); }

namespace {
bool g_allow_tf32 = false;
}
void cuda_set_allow_tf32(bool on) { g_allow_tf32 = on; }
bool cuda_allow_tf32() { return g_allow_tf32; }

void cuda_synchronize() {
  if (cuda_available()) CUDA_CHECK(cudaDeviceSynchronize());
}

void cuda_set_oom_hint(const std::string& hint) { oom_hint() = hint; }

void cuda_set_device(int k) {
  CHECK(k >= 0 && k < cuda_device_count(), "GPU ", k, " is not visible: ", devices_describe());
  CUDA_CHECK(cudaSetDevice(k));
}

size_t cuda_total_memory() {
  if (!cuda_available()) return 0;
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (err != cudaSuccess) {
    CUDA_IGNORE_ERROR(err);  // a size check must not fail: report "unknown"
    return 0;
  }
  return total_bytes;
}

void* cuda_pinned_alloc(size_t bytes) {
  void* p = nullptr;
  if (!cuda_available()) {  // no driver: plain host memory serves the CPU path
    p = std::malloc(bytes == 0 ? 1 : bytes);
    CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
    return p;
  }
  CUDA_CHECK(cudaMallocHost(&p, bytes == 0 ? 1 : bytes));
  return p;
}

void cuda_pinned_free(void* p) {
  if (p == nullptr) return;
  if (!cuda_available()) {
    std::free(p);
    return;
  }
  CUDA_IGNORE_ERROR(cudaFreeHost(p));
}

}  // namespace moe
