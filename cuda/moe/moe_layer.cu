// moe_layer.cu — CUDA side of src/moe/moe_layer.cpp (routing statistics). Being written.
#include "cuda_common.h"
#include "moe/moe_layer.h"

namespace moe {
void moe_routing_stats_cuda(float*, const float*, const int32_t*, const int32_t*, const int32_t*,
                            const float*, int64_t, int64_t) {
  fail_without_cuda("moe_routing_stats_cuda (not yet)");
}
}  // namespace moe
