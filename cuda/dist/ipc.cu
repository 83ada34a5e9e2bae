// ipc.cu — the CUDA pieces of the cuda-ipc transport (src/dist/transport_ipc.h): mailboxes,
// their IPC handles, peer copies and the rank-ordered sum of an all-reduce.
#include <cstring>

#include "cuda_common.h"
#include "dist/transport_ipc.h"

namespace moe {
namespace {

// out[i] = sum over ranks q = 0, 1, ..., W-1 of srcs[q][offset + i]: a fixed order, so the result
// is the same bits on every run and on every rank that computes it.
__global__ void sum_slices_kernel(float* out, PeerPointers srcs, int W, int64_t offset,
                                  int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    float acc = srcs.p[0][offset + i];
    for (int q = 1; q < W; ++q) acc += srcs.p[q][offset + i];
    out[i] = acc;
  }
}

}  // namespace

void* ipc_alloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 256 : bytes));  // its own allocation: exportable whole
  return p;
}

void ipc_free(void* p) {
  if (p != nullptr) CUDA_IGNORE_ERROR(cudaFree(p));
}

IpcHandle ipc_export(void* p) {
  static_assert(sizeof(cudaIpcMemHandle_t) <= sizeof(IpcHandle), "IPC handle size");
  cudaIpcMemHandle_t h;
  CUDA_CHECK(cudaIpcGetMemHandle(&h, p));
  IpcHandle out;
  std::memset(out.bytes, 0, sizeof out.bytes);
  std::memcpy(out.bytes, &h, sizeof h);
  return out;
}

void* ipc_open(const IpcHandle& in) {
  cudaIpcMemHandle_t h;
  std::memcpy(&h, in.bytes, sizeof h);
  void* p = nullptr;
  CUDA_CHECK(cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess));
  return p;
}

void ipc_close(void* p) {
  if (p != nullptr) CUDA_IGNORE_ERROR(cudaIpcCloseMemHandle(p));
}

void ipc_copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, 0));
}

void ipc_sync() { CUDA_CHECK(cudaDeviceSynchronize()); }

void ipc_sum_slices(float* out, PeerPointers srcs, int W, int64_t offset, int64_t n) {
  if (n == 0) return;
  sum_slices_kernel<<<grid_size_for(n, kBlock), kBlock>>>(out, srcs, W, offset, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
