// cublas_handle.h — the cuBLAS and cuBLASLt handles of this process (one per device, created on
// first use, never destroyed: the driver releases them at exit), and cuBLASLt's workspace.
// Everything runs on the default stream, like every kernel of moe-gpt (notes/cuda.md §2).
#pragma once
#include <cublasLt.h>

#include "cuda_common.h"

namespace moe {

cublasHandle_t cublas_handle();
cublasLtHandle_t cublaslt_handle();
// A device buffer for cuBLASLt's split algorithms, allocated once per device.
void* cublaslt_workspace();
constexpr size_t kCublasLtWorkspaceBytes = size_t(32) << 20;

}  // namespace moe
