// transport_ipc.h — the cuda-ipc transport (transport.h) and the CUDA pieces it is built from.
//
// How it works (GPUs of one host, one process per rank, any number of ranks per GPU):
//   * each rank allocates one device "mailbox" (cudaMalloc, kept for the whole run, grown in
//     lockstep when a larger exchange comes: every rank exchanges the same sizes), exports it as
//     a CUDA IPC handle, and the handles are swapped once over MPI (MPI_Allgather); each rank
//     opens its peers' handles, so it can write straight into their mailboxes;
//   * all-to-all: after a barrier (every peer has finished reading its mailbox), rank i copies
//     its chunk r into slot i of rank r's mailbox — a peer copy on the copy engines — then a
//     second barrier (every copy into my mailbox is done) and the mailbox is copied into recv;
//   * all-reduce: every rank publishes x in its mailbox; rank r adds slice r of all mailboxes in
//     rank order (one kernel reading its peers' memory) into its second mailbox; every rank then
//     copies each slice from its owner's second mailbox. Fixed order: the same bits every run.
// MPI carries only the handles and the barriers; the bytes never touch the host.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dispatch.h"

namespace moe {

class Transport;
std::unique_ptr<Transport> make_cuda_ipc_transport();

// ---- the CUDA side (cuda/dist/ipc.cu) -------------------------------------------------------------
constexpr int kMaxIpcRanks = 64;
struct IpcHandle {
  char bytes[64];  // cudaIpcMemHandle_t, opaque
};
struct PeerPointers {
  const float* p[kMaxIpcRanks];
};

MOE_CUDA_BEGIN
void* ipc_alloc(size_t bytes) MOE_CUDA_STUB
void ipc_free(void* p) MOE_CUDA_STUB
IpcHandle ipc_export(void* p) MOE_CUDA_STUB
void* ipc_open(const IpcHandle& h) MOE_CUDA_STUB
void ipc_close(void* p) MOE_CUDA_STUB
// A device-to-device copy queued on the default stream (unified addressing: either pointer may be
// a peer's mapped mailbox), and a wait for every queued copy and kernel of this device.
void ipc_copy(void* dst, const void* src, size_t bytes) MOE_CUDA_STUB
void ipc_sync() MOE_CUDA_STUB
// out[i] = srcs.p[0][offset + i] + srcs.p[1][offset + i] + ... (W of them, in that order).
void ipc_sum_slices(float* out, PeerPointers srcs, int W, int64_t offset, int64_t n) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
