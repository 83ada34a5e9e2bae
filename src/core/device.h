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

#include "core/tensor.h"

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
// The device a program runs on, from its --device flag: "cpu", "cuda" (an error naming the
// reason when no GPU is usable), or "auto" (the GPU when one is visible, else the CPU). The GPU
// is number local_rank % (visible GPUs), where local_rank is the process's rank among the MPI
// ranks of its host (0 for one process), and it becomes the current device.
Device resolve_device(const std::string& choice, int local_rank = 0);
// Makes GPU k the current device of this process (no-op without CUDA).
void cuda_set_device(int k);
// One line for the program's start: "cuda:0 NVIDIA H200 (139 GiB)" or "cpu".
std::string describe_device(const Device& d);

// TF32: let cuBLAS round f32 matrix-product inputs to TF32 (10-bit mantissa) on the tensor cores,
// keeping f32 accumulation. About 2x faster GEMMs, relative error ~1e-3 per product instead of
// ~1e-7. Off by default in the library (kernel tests compare tight f32); the programs turn it on
// for speed (--tf32, default on), as PyTorch's allow_tf32 does. No effect on the CPU.
void cuda_set_allow_tf32(bool on);
bool cuda_allow_tf32();

// Waits for all queued GPU work (benchmarks, timing). No-op without CUDA.
void cuda_synchronize();

// Extra advice appended to the out-of-memory error, e.g. "lower --batch-size (now 16) or
// --seq-len (now 1024)". Programs set it once they know their shapes.
void cuda_set_oom_hint(const std::string& hint);

// Total memory of the current GPU in bytes (0 without one): for refusing, before any work, a model
// that cannot fit (nn/gpt_io.h check_model_fits).
size_t cuda_total_memory();

// Page-locked ("pinned") host memory, for staging device buffers through the host (the MPI host
// transport): copies from and to it run at full PCIe speed and may be asynchronous. Plain malloc
// in a CPU-only build.
void* cuda_pinned_alloc(size_t bytes);
void cuda_pinned_free(void* p);

CudaMemoryStats cuda_memory_stats();  // all zero without CUDA
void cuda_empty_cache();              // cudaFree every cached block (no-op without CUDA)
void cuda_reset_peak_memory();        // peak_bytes_in_use = bytes_in_use (for benchmarks)

}  // namespace moe
