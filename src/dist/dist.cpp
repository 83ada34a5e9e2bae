// dist.cpp — see dist.h.
#include "dist/dist.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "core/check.h"
#include "dist/mpi_check.h"

namespace moe {

namespace {
DistContext g_ctx;
bool g_initialised = false;
MPI_Comm g_comm = MPI_COMM_WORLD;  // the current group (DistGroupScope), else the world

// rank, world, local rank and local size of `comm` into g_ctx.
void read_context(MPI_Comm comm) {
  MPI_CHECK(MPI_Comm_rank(comm, &g_ctx.rank));
  MPI_CHECK(MPI_Comm_size(comm, &g_ctx.world));
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local));
  MPI_CHECK(MPI_Comm_rank(local, &g_ctx.local_rank));
  MPI_CHECK(MPI_Comm_size(local, &g_ctx.local_size));
  MPI_CHECK(MPI_Comm_free(&local));
}

// True when a launcher started this process as one of several ranks (OpenMPI sets
// OMPI_COMM_WORLD_SIZE; PMI/PMIx-based launchers set PMI_SIZE or PMIX_RANK).
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}
}  // namespace

void dist_init(int* argc, char*** argv) {
  if (g_initialised) return;
  g_initialised = true;
  if (!launched_by_mpirun()) return;  // one rank, no MPI
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  g_ctx.mpi = true;
  // Errors come back as codes (MPI_CHECK turns them into messages) instead of MPI's own abort.
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  read_context(MPI_COMM_WORLD);
}

MPI_Comm dist_comm() { return g_comm; }

DistGroupScope::DistGroupScope(int group_size) : saved_(g_ctx) {
  CHECK(group_size >= 1 && saved_.world % group_size == 0, "a group of ", group_size,
        " ranks does not divide the world of ", saved_.world);
  CHECK(g_comm == MPI_COMM_WORLD, "DistGroupScope cannot be nested");
  if (!g_ctx.mpi) return;  // one process: the only group is the world
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, saved_.rank / group_size, saved_.rank, &g_comm));
  read_context(g_comm);
}

DistGroupScope::~DistGroupScope() {
  if (g_comm != MPI_COMM_WORLD) MPI_Comm_free(&g_comm);
  g_comm = MPI_COMM_WORLD;
  g_ctx = saved_;
}

void dist_finalize() {
  if (!g_ctx.mpi) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  g_ctx.mpi = false;
}

const DistContext& dist() { return g_ctx; }

std::string rank_prefix() {
  if (g_ctx.world <= 1) return "";
  return str_cat("rank ", g_ctx.rank, "/", g_ctx.world, ": ");
}

void dist_abort(const std::string& message, int code) {
  std::cerr << rank_prefix() << message << std::endl;
  // every rank of the run, not only those of a DistGroupScope
  if (g_ctx.mpi && g_ctx.world > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void dist_barrier() {
  if (g_ctx.world > 1) MPI_CHECK(MPI_Barrier(g_comm));
}

double dist_max(double v) {
  if (g_ctx.world <= 1) return v;
  double out = v;
  MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, g_comm));
  return out;
}

double dist_sum(double v) {
  if (g_ctx.world <= 1) return v;
  double out = v;
  MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, g_comm));
  return out;
}

void dist_sum_inplace(std::vector<double>& v) {
  if (g_ctx.world <= 1 || v.empty()) return;
  const size_t piece = size_t(1) << 28;
  for (size_t off = 0; off < v.size(); off += piece)
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v.data() + off,
                            static_cast<int>(std::min(piece, v.size() - off)), MPI_DOUBLE,
                            MPI_SUM, g_comm));
}

std::string dist_broadcast(const std::string& s) {
  if (g_ctx.world <= 1) return s;
  long n = static_cast<long>(s.size());
  dist_broadcast_bytes(&n, sizeof n);
  std::vector<char> buf(s.begin(), s.end());
  buf.resize(static_cast<size_t>(n));
  dist_broadcast_bytes(buf.data(), buf.size());
  return std::string(buf.begin(), buf.end());
}

void dist_broadcast_bytes(void* data, size_t n) {
  if (g_ctx.world <= 1) return;
  const size_t piece = size_t(1) << 30;  // MPI counts are int
  for (size_t off = 0; off < n; off += piece)
    MPI_CHECK(MPI_Bcast(static_cast<char*>(data) + off, static_cast<int>(std::min(piece, n - off)),
                        MPI_BYTE, 0, g_comm));
}

Tensor dist_gather_dim0(const Tensor& local_in) {
  const Tensor local = local_in.to(cpu()).contiguous();
  if (g_ctx.world <= 1) return local;
  const size_t bytes = static_cast<size_t>(local.numel()) * dtype_size(local.dtype());
  CHECK(bytes < (size_t(1) << 31), "dist_gather_dim0: a slice of ", bytes, " bytes is over "
        "MPI's int count; gather it in pieces");
  Shape full = local.shape();
  full[0] *= g_ctx.world;
  Tensor out = g_ctx.rank == 0 ? Tensor::empty(full, local.dtype()) : Tensor();
  MPI_CHECK(MPI_Gather(local.raw_data(), static_cast<int>(bytes), MPI_BYTE,
                       g_ctx.rank == 0 ? out.raw_data() : nullptr, static_cast<int>(bytes),
                       MPI_BYTE, 0, g_comm));
  return out;
}

}  // namespace moe
