// main_mpi.cpp — entry point of the MPI test binary (build/.../test_mpi), run by `make test` as
// `mpirun -np W test_mpi` for W = 1, 2, 4 (SPEC §4 expert and data parallelism; notes/design.md
// "Distribution": "One rank or W ranks, the same global batch gives the same loss and
// gradients").
//
// Every rank runs every test (they are collective). Rank 0 prints GoogleTest's usual output; the
// other ranks print only their failures, prefixed with their rank. The summary line counts a test
// as failed when it failed on any rank, and the exit code is non-zero then.
#include <gtest/gtest.h>

#include <cstdio>

#include "core/device.h"
#include "dist/dist.h"

namespace {

// Prints a non-root rank's failures (the default printer is removed on those ranks).
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "%s%s:%d: failure\n%s\n", moe::rank_prefix().c_str(), r.file_name(),
                 r.line_number(), r.summary());
  }
};

}  // namespace

int main(int argc, char** argv) {
  moe::dist_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  moe::devices_init();
  if (!moe::is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter);
  }
  const int rc = RUN_ALL_TESTS();
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  const double failed_anywhere = moe::dist_max(u.failed_test_count());
  if (moe::is_root())
    std::printf("tests (mpi, W=%d): %d passed, %d failed (max over ranks), %d skipped\n",
                moe::dist().world, u.successful_test_count(), static_cast<int>(failed_anywhere),
                u.skipped_test_count());
  moe::dist_finalize();
  return rc != 0 || failed_anywhere > 0 ? 1 : 0;
}
