// ipc.cu — the CUDA pieces of the cuda-ipc transport (src/dist/transport_ipc.h): mailboxes and
// events with their IPC handles, the communication stream, peer copies and the rank-ordered sum
// of an all-reduce.
#include <cstring>

#include "cuda_common.h"
#include "dist/transport_ipc.h"

namespace moe {
namespace {

// out[i] = sum over ranks q = 0, 1, ..., W-1 of srcs[q][offset + i]: a fixed order, so the result
// is the same bits on every run and on every rank that computes it.
__global__ void sum_slices_kernel(float* out, PeerPointers srcs, int W, int64_t offset,
                                  int64_t n, float scale) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    float acc = srcs.p[0][offset + i];
    for (int q = 1; q < W; ++q) acc += srcs.p[q][offset + i];
    out[i] = acc * scale;
  }
}

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// CUDA's handle types (memory and event) in and out of our opaque, fixed-size IpcHandle.
template <class H>
IpcHandle pack_handle(const H& h) {
  static_assert(sizeof(H) <= sizeof(IpcHandle), "IPC handle size");
  IpcHandle out;
  std::memset(out.bytes, 0, sizeof out.bytes);
  std::memcpy(out.bytes, &h, sizeof h);
  return out;
}
template <class H>
H unpack_handle(const IpcHandle& in) {
  H h;
  std::memcpy(&h, in.bytes, sizeof h);
  return h;
}
cudaEvent_t as_event(void* e) { return static_cast<cudaEvent_t>(e); }

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
  cudaIpcMemHandle_t h;
  CUDA_CHECK(cudaIpcGetMemHandle(&h, p));
  return pack_handle(h);
}

void* ipc_open(const IpcHandle& in) {
  void* p = nullptr;
  CUDA_CHECK(cudaIpcOpenMemHandle(&p, unpack_handle<cudaIpcMemHandle_t>(in),
                                  cudaIpcMemLazyEnablePeerAccess));
  return p;
}

void ipc_close(void* p) {
  if (p != nullptr) CUDA_IGNORE_ERROR(cudaIpcCloseMemHandle(p));
}

void* ipc_event_create() {
  cudaEvent_t ev;
  CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming | cudaEventInterprocess));
  return ev;
}

IpcHandle ipc_event_export(void* ev) {
  cudaIpcEventHandle_t h;
  CUDA_CHECK(cudaIpcGetEventHandle(&h, as_event(ev)));
  return pack_handle(h);
}

void* ipc_event_open(const IpcHandle& in) {
  cudaEvent_t ev;
  CUDA_CHECK(cudaIpcOpenEventHandle(&ev, unpack_handle<cudaIpcEventHandle_t>(in)));
  return ev;
}

void ipc_event_destroy(void* ev) {
  if (ev != nullptr) CUDA_IGNORE_ERROR(cudaEventDestroy(as_event(ev)));
}

void* timing_event_create() {
  cudaEvent_t ev;
  CUDA_CHECK(cudaEventCreate(&ev));
  return ev;
}

bool timing_event_ms(void* start, void* end, float* ms) {
  if (cudaEventQuery(as_event(end)) != cudaSuccess ||
      cudaEventQuery(as_event(start)) != cudaSuccess) {
    (void)cudaGetLastError();  // "not ready" is an answer here, not an error to keep
    return false;
  }
  CUDA_CHECK(cudaEventElapsedTime(ms, as_event(start), as_event(end)));
  return true;
}

void ipc_event_record(void* ev, void* stream) {
  CUDA_CHECK(cudaEventRecord(as_event(ev), as_stream(stream)));
}

void ipc_stream_wait(void* stream, void* ev) {
  CUDA_CHECK(cudaStreamWaitEvent(as_stream(stream), as_event(ev), 0));
}

void* ipc_stream_create() {
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void ipc_stream_destroy(void* stream) {
  if (stream != nullptr) CUDA_IGNORE_ERROR(cudaStreamDestroy(as_stream(stream)));
}

void ipc_copy(void* dst, const void* src, size_t bytes, void* stream) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, as_stream(stream)));
}

void ipc_sync() { CUDA_CHECK(cudaDeviceSynchronize()); }

void ipc_sum_slices(float* out, PeerPointers srcs, int W, int64_t offset, int64_t n, float scale,
                    void* stream) {
  if (n == 0) return;
  sum_slices_kernel<<<grid_size_for(n, kBlock), kBlock, 0, as_stream(stream)>>>(out, srcs, W,
                                                                             offset, n, scale);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
