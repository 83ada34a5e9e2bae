// cublas_handle.cu — see cuda/cublas_handle.h.
#include <mutex>

#include "cublas_handle.h"

namespace moe {
namespace {

constexpr int kMaxDevices = 64;

int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  CHECK(d >= 0 && d < kMaxDevices, "CUDA device index ", d, " is out of range");
  return d;
}

struct Handles {
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
};

Handles& handles_for_current_device() {
  static Handles handles[kMaxDevices];
  static std::mutex mu;
  const int d = current_device();
  std::lock_guard<std::mutex> lock(mu);
  Handles& h = handles[d];
  if (h.blas == nullptr) {
    CUBLAS_CHECK(cublasCreate(&h.blas));
    CUBLAS_CHECK(cublasLtCreate(&h.lt));
    CUDA_CHECK(cudaMalloc(&h.workspace, kCublasLtWorkspaceBytes));
  }
  return h;
}

}  // namespace

cublasHandle_t cublas_handle() { return handles_for_current_device().blas; }
cublasLtHandle_t cublaslt_handle() { return handles_for_current_device().lt; }
void* cublaslt_workspace() { return handles_for_current_device().workspace; }

}  // namespace moe
