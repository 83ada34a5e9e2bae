// dist.cpp — see dist.h.
#include "dist/dist.h"

#include <mpi.h>

#include <cstdlib>
#include <iostream>
#include <vector>

#include "core/check.h"
#include "dist/mpi_check.h"

namespace moe {

namespace {
DistContext g_ctx;
bool g_initialised = false;

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
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_ctx.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_ctx.world));
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local));
  MPI_CHECK(MPI_Comm_rank(local, &g_ctx.local_rank));
  MPI_CHECK(MPI_Comm_size(local, &g_ctx.local_size));
  MPI_CHECK(MPI_Comm_free(&local));
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
  if (g_ctx.mpi && g_ctx.world > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void dist_barrier() {
  if (g_ctx.world > 1) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

double dist_max(double v) {
  if (g_ctx.world <= 1) return v;
  double out = v;
  MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return out;
}

double dist_sum(double v) {
  if (g_ctx.world <= 1) return v;
  double out = v;
  MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  return out;
}

std::string dist_broadcast(const std::string& s) {
  if (g_ctx.world <= 1) return s;
  long n = static_cast<long>(s.size());
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG, 0, MPI_COMM_WORLD));
  std::vector<char> buf(s.begin(), s.end());
  buf.resize(static_cast<size_t>(n));
  if (n > 0) MPI_CHECK(MPI_Bcast(buf.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD));
  return std::string(buf.begin(), buf.end());
}

}  // namespace moe
