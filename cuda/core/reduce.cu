// reduce.cu — the deterministic column sums and total sums of reduce.cuh.
#include "core/tensor.h"
#include "reduce.cuh"

namespace moe {
namespace {

constexpr int64_t kRowsPerPiece = 64;      // column sums: rows summed by one thread in pass 1
constexpr int64_t kItemsPerBlock = 16384;  // total sums: elements summed by one block in pass 1

// Pass 1: partial[p, c] = sum of in[r, c] for r in piece p (rows p*kRowsPerPiece ...). One thread
// per (piece, column); neighbouring threads read neighbouring columns, so each row is one
// coalesced read per warp.
template <typename T>
__global__ void column_partials_kernel(float* partial, const T* in, int64_t R, int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t p = blockIdx.y;
  if (c >= C) return;
  const int64_t r0 = p * kRowsPerPiece, r1 = r0 + kRowsPerPiece < R ? r0 + kRowsPerPiece : R;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) acc += static_cast<float>(in[r * C + c]);
  partial[p * C + c] = acc;
}

// Pass 2: out[c] (+)= sum over pieces p, in order.
template <typename T>
__global__ void column_finish_kernel(T* out, const float* partial, int64_t pieces, int64_t C,
                                     bool accumulate) {
  for (int64_t c = grid_index(); c < C; c += grid_stride()) {
    float acc = 0.0f;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[p * C + c];
    out[c] = accumulate ? out[c] + static_cast<T>(acc) : static_cast<T>(acc);
  }
}

template <typename T>
__global__ void sum_partials_kernel(double* partial, const T* in, int64_t n) {
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kItemsPerBlock;
  const int64_t end = begin + kItemsPerBlock < n ? begin + kItemsPerBlock : n;
  double acc = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc += static_cast<double>(in[i]);
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

template <typename T>
__global__ void sum_finish_kernel(T* out, const double* partial, int64_t pieces, double scale) {
  double acc = 0.0;
  for (int64_t p = threadIdx.x; p < pieces; p += blockDim.x) acc += partial[p];
  acc = block_reduce_sum(acc);
  if (threadIdx.x == 0) out[0] = static_cast<T>(acc * scale);
}

}  // namespace

template <typename T>
void column_sums_cuda(T* out, const T* in, int64_t R, int64_t C, bool accumulate) {
  if (C == 0) return;
  const int64_t pieces = R == 0 ? 1 : (R + kRowsPerPiece - 1) / kRowsPerPiece;
  // (pieces, C); with no rows the one piece is all zeros
  Tensor partial = R == 0 ? Tensor::zeros({pieces, C}, DType::F32, cuda())
                          : Tensor::empty({pieces, C}, DType::F32, cuda());
  float* pp = partial.data<float>(true);
  if (R > 0) {
    const dim3 grid(static_cast<unsigned>((C + 127) / 128), static_cast<unsigned>(pieces));
    column_partials_kernel<<<grid, 128>>>(pp, in, R, C);
    CUDA_LAUNCH_CHECK();
  }
  column_finish_kernel<<<grid_size_for(C, kBlock), kBlock>>>(out, pp, pieces, C, accumulate);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void sum_all_cuda(T* out, const T* in, int64_t n, double scale) {
  const int64_t pieces = n == 0 ? 1 : (n + kItemsPerBlock - 1) / kItemsPerBlock;
  Tensor partial = Tensor::zeros({pieces}, DType::F64, cuda());  // (pieces,)
  double* pp = partial.data<double>(true);
  if (n > 0) {
    sum_partials_kernel<<<static_cast<unsigned>(pieces), 512>>>(pp, in, n);
    CUDA_LAUNCH_CHECK();
  }
  sum_finish_kernel<<<1, 1024>>>(out, pp, pieces, scale);
  CUDA_LAUNCH_CHECK();
}

template void column_sums_cuda<float>(float*, const float*, int64_t, int64_t, bool);
template void sum_all_cuda<float>(float*, const float*, int64_t, double);

}  // namespace moe
