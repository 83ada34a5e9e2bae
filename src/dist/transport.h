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
};

// What the exchanges cost, summed since the start of the process (or the last reset), for the
// per-step breakdown `train` prints under mpirun (notes/benchmarks.md). Each exchange is timed
// with the device idle before and after (the transports wait for the device anyway), so compute
// and communication are measured apart; nothing overlaps them.
struct CommStats {
  double a2a_seconds = 0, a2a_bytes = 0;  // all-to-alls of the MoE layers (bytes sent per rank)
  double ar_seconds = 0, ar_bytes = 0;    // gradient all-reduces (bytes reduced per rank)
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
