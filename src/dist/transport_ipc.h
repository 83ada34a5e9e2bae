// transport_ipc.h — the cuda-ipc transport (transport.h) and the CUDA pieces it is built from.
//
// How it works (GPUs of one host, one process per rank, any number of ranks per GPU):
//   * each rank allocates device "mailboxes" (cudaMalloc, kept for the whole run, grown in
//     lockstep when a larger exchange comes: every rank exchanges the same sizes), exports them as
//     CUDA IPC memory handles, and the handles are swapped once over MPI (MPI_Allgather); each
//     rank opens its peers' handles, so it can read and write their mailboxes directly;
//   * the ranks order their GPU work with CUDA IPC *events* (created with cudaEventInterprocess,
//     their handles swapped the same way): rank i records "my chunks are in your inboxes" on its
//     stream, and rank r's stream waits for that event before it reads its inbox. The host never
//     waits for the GPU: an exchange is queued like a kernel, so the CPU keeps running ahead and
//     the GPU never drains between layers;
//   * MPI carries only handles and barriers. A barrier is what makes an event wait well defined:
//     cudaStreamWaitEvent waits for the event's most recent record *at the time of the call*, so
//     a rank may only wait on a peer's event once the peer has recorded it for this exchange and
//     not yet for the next one. Every rank runs the same sequence of exchanges (same model, same
//     graph), so a barrier between "record" and "wait" gives exactly that;
//   * all-to-all (on the compute stream): barrier; wait until every peer has drained its inbox of
//     the previous exchange; copy my chunk r into slot i of rank r's inbox (peer copies over
//     NVLink); record "pushed"; barrier; wait for every peer's "pushed"; copy my inbox into recv;
//     record "drained";
//   * all-reduce (on a second, non-blocking stream, so that it overlaps the backward pass): each
//     call of a round gets its own region of two mailboxes. Publish x in my inbox region; barrier;
//     rank r adds slice r of every rank's region in rank order (one kernel reading its peers'
//     memory) into its sums region; barrier; every rank copies each slice from its owner's sums
//     region. Fixed order: the same bits on every run and every rank. all_reduce_wait() ends the
//     round: the compute stream waits for it, and the next round's first call waits (after a
//     barrier) until every peer has finished reading this round's regions.
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
  char bytes[64];  // cudaIpcMemHandle_t or cudaIpcEventHandle_t, opaque
};
struct PeerPointers {
  const float* p[kMaxIpcRanks];
};

// Streams and events travel as opaque pointers (no CUDA types in headers the CPU build reads).
// Stream nullptr is the default (legacy) stream, where every op of this library runs.
MOE_CUDA_BEGIN
void* ipc_alloc(size_t bytes) MOE_CUDA_STUB
void ipc_free(void* p) MOE_CUDA_STUB
IpcHandle ipc_export(void* p) MOE_CUDA_STUB
void* ipc_open(const IpcHandle& h) MOE_CUDA_STUB
void ipc_close(void* p) MOE_CUDA_STUB
// Events shared between processes (no timing: CUDA does not allow it for IPC events).
void* ipc_event_create() MOE_CUDA_STUB
IpcHandle ipc_event_export(void* ev) MOE_CUDA_STUB
void* ipc_event_open(const IpcHandle& h) MOE_CUDA_STUB
void ipc_event_destroy(void* ev) MOE_CUDA_STUB
// Local events for timing (cudaEventElapsedTime). timing_event_ms: false while either event has
// not completed (it never waits); else *ms = end - start, which is negative when `end` (on
// another stream) completed first.
void* timing_event_create() MOE_CUDA_STUB
bool timing_event_ms(void* start, void* end, float* ms) MOE_CUDA_STUB
void ipc_event_record(void* ev, void* stream) MOE_CUDA_STUB
void ipc_stream_wait(void* stream, void* ev) MOE_CUDA_STUB
// A stream that does not synchronise with the default stream (cudaStreamNonBlocking): work on it
// runs beside the compute stream's, ordered only by events.
void* ipc_stream_create() MOE_CUDA_STUB
void ipc_stream_destroy(void* stream) MOE_CUDA_STUB
// A device-to-device copy queued on `stream` (unified addressing: either pointer may be a peer's
// mapped mailbox), and a wait for every queued copy and kernel of this device.
void ipc_copy(void* dst, const void* src, size_t bytes, void* stream) MOE_CUDA_STUB
void ipc_sync() MOE_CUDA_STUB
// out[i] = scale * (srcs.p[0][offset + i] + srcs.p[1][offset + i] + ...) (W of them, in that
// order), queued on `stream`.
void ipc_sum_slices(float* out, PeerPointers srcs, int W, int64_t offset, int64_t n, float scale,
                    void* stream) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
