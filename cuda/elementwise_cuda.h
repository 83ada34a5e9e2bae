// elementwise_cuda.h — CUDA kernels of the elementwise glue ops, one per CPU function in
// src/ops/elementwise.cpp, with the same name plus `_cuda` and the same argument order
// (outputs first, then inputs, then sizes), so a reader can put the two side by side.
//
// Conventions shared by every `*_cuda` launcher in cuda/:
//  * pointers are device pointers (Tensor::data<T>(/*allow_device=*/true)) to contiguous buffers
//    on the current CUDA device;
//  * the launch is queued on the default stream and returns at once (asynchronous for the host);
//    a bad launch throws moe::Error right away, a fault inside the kernel at the next
//    synchronising call (e.g. copying a result back to the host);
//  * the kernel is tested against the CPU function in tests/cuda/, with the tolerance written in
//    tests/tolerances.h.
// Plain C++ (no CUDA headers), so host code and tests can include it from .cpp files.
#pragma once
#include <cstdint>

namespace moe {

// out[i] = a[i] + b[i] for 0 <= i < n (f32). CPU twin: add_forward in src/ops/elementwise.cpp.
void add_forward_cuda(float* out, const float* a, const float* b, int64_t n);

}  // namespace moe
