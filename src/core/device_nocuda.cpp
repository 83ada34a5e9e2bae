// device_nocuda.cpp — device.h for the CPU-only build (`make cpu`; the CUDA build links
// cuda/device.cu instead). There is no GPU to find and nothing to register: a CUDA tensor then
// fails in allocator_for() with a message that says the binary was built without CUDA.
#include "core/device.h"

#include <cstdlib>

namespace moe {

bool built_with_cuda() { return false; }
int cuda_device_count() { return 0; }
bool cuda_available() { return false; }
void devices_init() {}
std::string devices_describe() { return "cpu only (built without CUDA)"; }
CudaMemoryStats cuda_memory_stats() { return CudaMemoryStats{}; }
void cuda_empty_cache() {}
void cuda_reset_peak_memory() {}
void cuda_set_allow_tf32(bool) {}
bool cuda_allow_tf32() { return false; }
void cuda_synchronize() {}
void cuda_set_oom_hint(const std::string&) {}
size_t cuda_total_memory() { return 0; }
void cuda_set_device(int) {}
void* cuda_pinned_alloc(size_t bytes) { return std::malloc(bytes == 0 ? 1 : bytes); }
void cuda_pinned_free(void* p) { std::free(p); }

}  // namespace moe
