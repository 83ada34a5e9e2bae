// transport.h — how ranks exchange tensors: the all-to-all of expert parallelism and the
// gradient all-reduce of data parallelism (SPEC §4), behind one interface with three
// implementations chosen by --transport (`auto` picks the fastest that works, printed at start):
//
//   host      MPI collectives on host buffers; device tensors are staged through pinned host
//             buffers allocated once. Works everywhere (CPU ranks, GPUs of any host).
//   cuda-ipc  GPUs of one host: each rank exports its device receive buffer as a CUDA IPC handle
//             once (exchanged over MPI), and peers copy straight into it on the copy engines
//             (NVLink/PCIe peer copies, no host staging). The all-reduce is a reduce-scatter and
//             an all-gather over the same mapped buffers.
//   mpi-cuda  device pointers handed to MPI directly, when the MPI library reports CUDA support.
//
// Both exchanges use equal splits: the leading dimension of the tensor is the world size W, and
// chunk r goes to rank r. That is SPEC §4's (E, Cap, C) buffer seen as (W, E/W, Cap, C).
// Determinism: for a given W, every exchange and every sum happens in the same order on every
// run (the all-reduce adds the ranks' contributions in rank order in cuda-ipc; MPI's reduction
// order is fixed for a given W and message size).
#pragma once
#include <memory>
#include <string>

#include "core/tensor.h"

namespace moe {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;
  // recv = the all-to-all of send: send, recv (W, ...) of one shape, dtype and device; chunk r
  // of send goes to rank r, chunk r of recv came from rank r. recv must not alias send.
  virtual void all_to_all(const Tensor& send, Tensor& recv) = 0;
  // x = scale * (sum over ranks of x), in place (x contiguous, f32).
  virtual void all_reduce(Tensor& x, double scale) = 0;
  // The same, split in two so that it can overlap compute (GradSync, during the backward pass):
  // start() queues the all-reduce of x after the work queued so far and may return before it is
  // done; x must stay alive and untouched until wait(), which orders everything queued after it
  // behind every started all-reduce. By default start() is all_reduce() (the host transports
  // block) and wait() does nothing.
  virtual void all_reduce_start(Tensor& x, double scale) { all_reduce(x, scale); }
  virtual void all_reduce_wait() {}
  // Moves what the exchanges cost into comm_stats(), where it is measured on the device (events
  // read once completed; never waits). The host transports time with the host clock instead.
  virtual void collect_stats() {}
  // True when the exchanges are queued on the device and never block the host (cuda-ipc): then
  // the all-reduces overlap the backward and the transport times itself with device events.
  // False: each call returns when done, and its callers time it with the host clock.
  virtual bool asynchronous() const { return false; }
};

// What the exchanges cost, summed since the start of the process, for the per-step breakdown
// `train` prints under mpirun (notes/benchmarks.md). Host transports time each call with the host
// clock (they block anyway). cuda-ipc times on the device with events: the all-to-all's span on
// the compute stream (peer waits included); the all-reduces' busy time on their own stream; and
// the exposed part, from the end of the backward pass to the end of the last all-reduce (zero
// when they finished under the backward). busy - exposed is what overlapped the backward.
struct CommStats {
  double a2a_seconds = 0, a2a_bytes = 0;  // all-to-alls of the MoE layers (bytes sent per rank)
  double ar_seconds = 0, ar_bytes = 0;    // gradient all-reduces (bytes reduced per rank)
  double ar_exposed_seconds = 0;          // of ar_seconds, what the compute stream waited for
  int64_t a2a_calls = 0, ar_calls = 0;
};
CommStats& comm_stats();

// "auto" | "host" | "cuda-ipc" | "mpi-cuda"; `dev` is where the tensors will live. CHECK-fails
// naming the choice and why it cannot work here (e.g. cuda-ipc for CPU tensors).
std::unique_ptr<Transport> make_transport(const std::string& choice, Device dev);

// What `auto` picks for this run, and whether the MPI library reports CUDA support.
std::string auto_transport_name(Device dev);
bool mpi_cuda_aware();

}  // namespace moe
