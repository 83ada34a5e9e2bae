// dist.h — the processes of a run: rank, world size, which GPU each rank uses (SPEC §4;
// notes/design.md "Distribution"). MPI (OpenMPI) is the engine: `mpirun -np W ./train ...` starts
// W ranks.
//
// dist_init() works without mpirun: a program started directly is one rank (rank 0 of 1) and MPI
// is not even initialised (OpenMPI's "singleton" start costs over a second, paid by every CLI
// run for nothing). Under mpirun (detected from the launcher's environment) it initialises MPI,
// finds each rank's local rank among the ranks of its host (MPI_Comm_split_type SHARED), and the
// programs give rank r the GPU local_rank % (number of visible GPUs), so W ranks spread over the
// GPUs of a host (and share them when W is larger).
//
// Only rank 0 prints, logs and writes files (`is_root()`); the others compute and take part in
// the collectives. A rank that fails calls dist_abort(): every rank ends at once with the
// message (nothing hangs in a collective waiting for a rank that is gone).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe {

struct DistContext {
  int rank = 0;         // 0 .. world-1
  int world = 1;        // W
  int local_rank = 0;   // rank among the ranks of this host
  int local_size = 1;   // ranks on this host
  bool mpi = false;     // MPI initialised (launched by mpirun)
};

// Idempotent. Reads the launcher's environment; calls MPI_Init_thread only under mpirun.
void dist_init(int* argc, char*** argv);
void dist_finalize();
const DistContext& dist();
inline bool is_root() { return dist().rank == 0; }
// "rank 1/4: " under mpirun, "" for one process: the prefix of a rank's error messages.
std::string rank_prefix();
// Ends every rank: prints `message` (with the rank prefix) to stderr, then MPI_Abort(code).
// Without MPI it just prints. Does not return under MPI.
void dist_abort(const std::string& message, int code);

// Blocks until every rank arrives (no-op for one rank).
void dist_barrier();
// The max over ranks of a host value (e.g. "did any rank see bad input?"), and the sum.
double dist_max(double v);
double dist_sum(double v);
// Element-wise sum over ranks, in place (every rank passes the same size). Adding zeros is exact,
// so "each rank fills its own entries of a zeroed buffer, then sum" collects results bitwise.
void dist_sum_inplace(std::vector<double>& v);
// Rank 0's string on every rank (e.g. a checkpoint path decided by rank 0).
std::string dist_broadcast(const std::string& s);
// Rank 0's bytes on every rank, in place (every rank passes the same n).
void dist_broadcast_bytes(void* data, size_t n);
// Concatenation along dim 0 of every rank's `local` (same shape and dtype on every rank), in rank
// order, returned on rank 0 as a CPU tensor (undefined on the other ranks). What a checkpoint
// written by W ranks needs: the full (E, ...) expert tensors from the W slices (SPEC §4).
Tensor dist_gather_dim0(const Tensor& local);

// Runs the enclosed code as if the world were split into consecutive groups of `group_size`
// ranks (world % group_size == 0): inside, dist() and every collective (transports included)
// see only this rank's group, so a test started with 4 ranks can also run W' = 1 and W' = 2
// (checkpoint re-sharding, tests/mpi). Restores the whole world when it ends. Not nestable.
class DistGroupScope {
 public:
  explicit DistGroupScope(int group_size);
  ~DistGroupScope();
  DistGroupScope(const DistGroupScope&) = delete;
  DistGroupScope& operator=(const DistGroupScope&) = delete;

 private:
  DistContext saved_;
};

}  // namespace moe
