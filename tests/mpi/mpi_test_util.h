// mpi_test_util.h — what the MPI tests share: the transports this machine can run (the host one
// always; on a GPU machine the device ones too), so every equivalence test runs once per
// transport (notes/distributed.md "Tests").
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "dist/dist.h"
#include "dist/transport.h"

namespace moe::testing {

inline std::vector<std::pair<std::string, Device>> transports_here() {
  std::vector<std::pair<std::string, Device>> out = {{"host", cpu()}};
  if (cuda_available()) {
    const Device gpu = cuda(dist().local_rank % cuda_device_count());
    cuda_set_device(gpu.index);
    out.push_back({"host", gpu});
    if (dist().local_size == dist().world) out.push_back({"cuda-ipc", gpu});
    if (mpi_cuda_aware()) out.push_back({"mpi-cuda", gpu});
  }
  return out;
}

}  // namespace moe::testing
