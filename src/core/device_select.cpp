// device_select.cpp — choosing the program's device from --device (core/device.h); shared by
// CUDA and CPU-only builds, since it only asks device.h's questions.
#include "core/device.h"

namespace moe {

// The GPU of a process that is rank `local_rank` among the ranks of its host: local_rank % GPUs,
// made the current device before anything is allocated (one device per process, device.h).
static Device gpu_for(int local_rank) {
  const int k = local_rank % cuda_device_count();
  cuda_set_device(k);
  return cuda(k);
}

Device resolve_device(const std::string& choice, int local_rank) {
  devices_init();
  if (choice == "cpu") return cpu();
  if (choice == "auto") return cuda_available() ? gpu_for(local_rank) : cpu();
  CHECK(choice == "cuda", "--device must be auto, cpu or cuda, got '", choice, "'");
  CHECK(built_with_cuda(), "--device cuda: this binary was built without CUDA (make cpu). HINT: "
        "rebuild with `make` on a machine with nvcc, or use --device cpu");
  CHECK(cuda_available(), "--device cuda: no usable GPU: ", devices_describe(),
        ". HINT: check nvidia-smi and CUDA_VISIBLE_DEVICES, or use --device cpu");
  return gpu_for(local_rank);
}

std::string describe_device(const Device& d) {
  if (d.is_cpu()) return "cpu";
  return devices_describe();
}

}  // namespace moe
