// main.cpp — the test binary's entry point: GoogleTest as usual, then one plain summary line
// ("N passed, N failed, N skipped") that CI systems can read without knowing GoogleTest.
#include <gtest/gtest.h>

#include <cstdio>

#include "core/device.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  moe::devices_init();  // as every program does at start: CUDA tensors work in any test order
  const int rc = RUN_ALL_TESTS();
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  std::printf("tests: %d passed, %d failed, %d skipped\n", u.successful_test_count(),
              u.failed_test_count(), u.skipped_test_count());
  return rc;
}
