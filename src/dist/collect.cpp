// collect.cpp — see collect.h.
#include "dist/collect.h"

#include <mpi.h>

#include <algorithm>
#include <exception>

#include "core/check.h"
#include "dist/dist.h"
#include "dist/mpi_check.h"

namespace moe {

namespace {

bool many_ranks() { return dist().mpi && dist().world > 1; }

// Rank `root`'s string on every rank (dist_broadcast is rank 0's only).
std::string broadcast_from(int root, const std::string& s) {
  long n = static_cast<long>(s.size());
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG, root, dist_comm()));
  std::vector<char> buf(s.begin(), s.end());
  buf.resize(static_cast<size_t>(n));
  if (n > 0) MPI_CHECK(MPI_Bcast(buf.data(), static_cast<int>(n), MPI_CHAR, root, dist_comm()));
  return std::string(buf.begin(), buf.end());
}

}  // namespace

RowShare row_share(int64_t n, int rank, int world) {
  CHECK(n >= 0 && world >= 1 && rank >= 0 && rank < world, "row_share: ", n, " rows, rank ",
        rank, " of ", world);
  RowShare s;
  s.slot = (n + world - 1) / world;
  s.begin = std::min(n, static_cast<int64_t>(rank) * s.slot);
  s.end = std::min(n, s.begin + s.slot);
  return s;
}

Tensor dist_all_gather_dim0(const Tensor& local_in) {
  const Tensor local = local_in.to(cpu()).contiguous();
  if (!many_ranks()) return local;
  const size_t bytes = static_cast<size_t>(local.numel()) * dtype_size(local.dtype());
  CHECK(bytes < (size_t(1) << 31), "dist_all_gather_dim0: ", bytes, " bytes per rank is over "
        "MPI's int count; gather in pieces");
  Shape full = local.shape();
  CHECK(!full.empty(), "dist_all_gather_dim0: a scalar has no rows to gather");
  full[0] *= dist().world;
  Tensor out = Tensor::empty(full, local.dtype());
  // Shapes are the caller's promise; a rank with another size would make MPI read past buffers,
  // so the sizes are compared first (one small exchange).
  long mine = static_cast<long>(bytes), lo = 0, hi = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &lo, 1, MPI_LONG, MPI_MIN, dist_comm()));
  MPI_CHECK(MPI_Allreduce(&mine, &hi, 1, MPI_LONG, MPI_MAX, dist_comm()));
  CHECK(lo == hi, "dist_all_gather_dim0: the ranks hold ", lo, " to ", hi, " bytes (this one ",
        mine, "); every rank must pass the same shape");
  MPI_CHECK(MPI_Allgather(local.raw_data(), static_cast<int>(bytes), MPI_BYTE, out.raw_data(),
                          static_cast<int>(bytes), MPI_BYTE, dist_comm()));
  return out;
}

void dist_throw_if_any(const std::string& my_error) {
  if (!many_ranks()) {
    if (!my_error.empty()) throw Error(my_error);
    return;
  }
  const int W = dist().world, me = dist().rank;
  int mine = my_error.empty() ? W : me, first = W;
  MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, dist_comm()));
  if (first == W) return;
  const std::string text = broadcast_from(first, my_error);
  if (first == me) throw Error(my_error);
  throw Error(str_cat("rank ", first, "/", W, ": ", text));
}

void dist_agree_on_errors(const std::function<void()>& f) {
  std::string err;
  try {
    f();
  } catch (const std::exception& e) {
    err = e.what();
    if (err.empty()) err = "an unnamed error";
  }
  dist_throw_if_any(err);
}

void dist_check_same(const std::vector<std::pair<std::string, std::string>>& mine,
                     const std::string& hint) {
  if (!many_ranks()) return;
  // Rank 0's values, one at a time (a handful of short strings: the cost is nothing next to a
  // model load), and this rank's first difference.
  std::string err;
  long n = static_cast<long>(mine.size());
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG, 0, dist_comm()));
  if (n != static_cast<long>(mine.size()))
    err = str_cat("this rank compares ", mine.size(), " settings but rank 0 ", n,
                  ". HINT: every rank must run the same moe-gpt build");
  // Every rank takes part in rank 0's n broadcasts, whatever its own count.
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    const std::string key0 = broadcast_from(0, i < mine.size() ? mine[i].first : "");
    const std::string value0 = broadcast_from(0, i < mine.size() ? mine[i].second : "");
    if (!err.empty()) continue;
    if (key0 != mine[i].first)
      err = str_cat("rank ", dist().rank, " compares setting '", mine[i].first, "' where rank 0 "
                    "compares '", key0, "'. HINT: every rank must run the same moe-gpt build");
    else if (value0 != mine[i].second)
      err = str_cat(key0, " is '", mine[i].second, "' on rank ", dist().rank, " but '", value0,
                    "' on rank 0. HINT: ", hint);
  }
  dist_throw_if_any(err);
}

}  // namespace moe
