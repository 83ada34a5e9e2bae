// device.h — which devices this process can use, and the GPU memory they hold.
//
// Tensors on a CUDA device get their bytes from an Allocator registered with tensor.h; this header
// is how a program switches that on. Call devices_init() once at the start of main() (it is
// idempotent, so tests may call it again). Two implementations, exactly one linked:
//   cuda/device.cu             CUDA builds: registers the caching allocator and the host<->device
//                              copy function (notes/cuda.md explains both);
//   src/core/device_nocuda.cpp CPU-only builds (`make cpu`): nothing to register, no device.
// The CUDA build compiles every file with -DMOE_CUDA=1, so code that calls a CUDA kernel directly
// (the kernel tests) can leave it out of the CPU build with `#ifdef MOE_CUDA`.
//
// Device choice: the CUDA allocator allocates on the *current* CUDA device (cudaSetDevice), one
// device per process, which is how the MPI ranks will use GPUs. A Tensor's Device index must match
// the current device; see notes/cuda.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

// True when this binary was linked with cuda/device.cu (a CUDA build), even without a GPU.
bool built_with_cuda();

// Number of CUDA devices visible; 0 when built without CUDA, when there is no GPU or no driver.
// Never throws (it answers "can I use the GPU?", which must not itself fail).
int cuda_device_count();
bool cuda_available();  // cuda_device_count() > 0

// Registers the CUDA allocator and copy function (CUDA builds). Safe to call more than once.
void devices_init();

// One line for logs, e.g. "cuda:0 NVIDIA H200, 139 GiB, sm_90" (devices joined by "; "), or
// "cpu only (built without CUDA)", or "cpu only (built with CUDA; <why no device, in the
// driver's words>)".
std::string devices_describe();

// What the caching allocator holds, summed over devices. Sizes are of the rounded blocks.
struct CudaMemoryStats {
  size_t bytes_in_use = 0;        // held by live tensors
  size_t bytes_cached = 0;        // freed by tensors, kept for reuse (not returned to CUDA)
  size_t peak_bytes_in_use = 0;   // max of bytes_in_use since start or the last reset
  int64_t num_cuda_malloc = 0;    // cudaMalloc calls made (should stop growing after step 1)
  int64_t num_cuda_free = 0;      // cudaFree calls made (cache flushes)
  int64_t num_cache_hits = 0;     // allocations served from the cache
};
CudaMemoryStats cuda_memory_stats();  // all zero without CUDA
void cuda_empty_cache();              // cudaFree every cached block (no-op without CUDA)
void cuda_reset_peak_memory();        // peak_bytes_in_use = bytes_in_use (for benchmarks)

}  // namespace moe
