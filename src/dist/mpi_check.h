// mpi_check.h — MPI_CHECK(expr): an MPI call that fails becomes a moe::Error naming the call, the
// source line and MPI's own words (notes/design.md "Errors"; the CUDA twins are in
// cuda/cuda_common.h). MPI's default handler would abort without saying where; the programs turn the Error into a
// message and dist_abort, which ends every rank.
#pragma once
#include <mpi.h>

#include "core/check.h"

namespace moe {

[[noreturn]] inline void fail_mpi(int code, const char* expr, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw Error(str_cat("MPI error: ", expr, " failed at ", file, ":", line, ": ", text));
}

// The communicator of the current group of ranks (MPI_COMM_WORLD unless a DistGroupScope is
// active, dist.h); every collective of src/dist goes through it.
MPI_Comm dist_comm();

}  // namespace moe

#define MPI_CHECK(expr)                                                   \
  do {                                                                    \
    const int moe_mpi_rc_ = (expr);                                       \
    if (moe_mpi_rc_ != MPI_SUCCESS)                                       \
      ::moe::fail_mpi(moe_mpi_rc_, #expr, __FILE__, __LINE__);            \
  } while (0)
