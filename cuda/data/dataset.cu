// dataset.cu — the training batch gathered on the GPU from a device copy of the token stream
// (data/dataset.h gather_train_blocks; SPEC §5: fixed T-token blocks, y shifted by one).
//
// Why: a step must not wait for the host. With the stream and the epoch's block order already on
// the device, a batch is one launch whose only inputs from the host are two integers passed as
// kernel arguments (where in the order the batch starts, and how many rows): no copy per step.
#include "cuda_common.h"
#include "data/dataset.h"

namespace moe {
namespace {

// One thread per (row, position): x[b, t] = tokens[i*T + t], y[b, t] = tokens[i*T + t + 1],
// i = order[pos + b]. CPU twin: gather_train_blocks in src/data/dataset.cpp.
__global__ void gather_train_blocks_kernel(int32_t* x, int32_t* y, const int32_t* tokens,
                                           const int32_t* order, int64_t pos, int64_t count,
                                           int T) {
  const int64_t n = count * T;
  for (int64_t j = grid_index(); j < n; j += grid_stride()) {
    const int64_t b = j / T, t = j % T;
    const int64_t start = static_cast<int64_t>(order[pos + b]) * T;
    x[j] = tokens[start + t];
    y[j] = tokens[start + t + 1];
  }
}

}  // namespace

void gather_train_blocks_cuda(int32_t* x, int32_t* y, const int32_t* tokens, const int32_t* order,
                              int64_t pos, int64_t count, int T) {
  if (count == 0) return;
  gather_train_blocks_kernel<<<grid_size_for(count * T, kBlock), kBlock>>>(x, y, tokens, order,
                                                                            pos, count, T);
  CUDA_LAUNCH_CHECK();
}

}  // namespace moe
