// activation.cu — CUDA twins of src/ops/activation.cpp (GELU, dropout). Being written.
#include "cuda_common.h"
#include "ops/activation.h"

namespace moe {
template <typename T>
void gelu_forward_cuda(T*, const T*, int64_t) { fail_without_cuda("gelu_forward_cuda (not yet)"); }
template <typename T>
void gelu_backward_cuda(T*, const T*, const T*, int64_t) { fail_without_cuda("gelu_backward_cuda (not yet)"); }
template <typename T>
void dropout_forward_cuda(T*, const T*, DropoutMask, int64_t) { fail_without_cuda("dropout_forward_cuda (not yet)"); }
template <typename T>
void dropout_backward_cuda(T*, const T*, DropoutMask, int64_t) { fail_without_cuda("dropout_backward_cuda (not yet)"); }
template void gelu_forward_cuda<float>(float*, const float*, int64_t);
template void gelu_backward_cuda<float>(float*, const float*, const float*, int64_t);
template void dropout_forward_cuda<float>(float*, const float*, DropoutMask, int64_t);
template void dropout_backward_cuda<float>(float*, const float*, DropoutMask, int64_t);
}  // namespace moe
