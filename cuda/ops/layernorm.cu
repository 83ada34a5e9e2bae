// layernorm.cu — CUDA twins of src/ops/layernorm.cpp: layer normalisation over the last axis,
// forward (out, mean, rstd) and backward (dx, dgamma, dbeta). SPEC §2 (pre-LN, eps = 1e-5).
//
// Plan:
//   forward, dx:     one thread block per row (a grid-stride loop over rows, so any R), threads
//                    stride over the C columns, row sums by the fixed tree of block_reduce_sum.
//                    Sums are in double, as on the CPU: a 768-wide f32 sum loses bits, and the
//                    statistics then differ from the CPU's by more than the rounding of one op.
//   dgamma, dbeta:   column sums over rows, deterministic without atomics: pass 1 sums pieces of
//                    kRowsPerPiece rows per column (one thread per (piece, column)), pass 2 adds
//                    the pieces in index order. The product dy * xhat is formed on the fly, so no
//                    (R, C) buffer is written.
// Same inputs, same bits on every run (no atomics; every order depends on the sizes only).
#include "core/reduce.cuh"
#include "core/tensor.h"
#include "cuda_common.h"
#include "ops/layernorm.h"

namespace moe {
namespace {

constexpr int64_t kRowsPerPiece = 64;   // dgamma/dbeta pass 1: rows summed by one thread
constexpr int kColsPerBlock = 128;      // dgamma/dbeta pass 1: columns per thread block

// Mirrors the CPU loop: mean and the two-pass variance in double, then
// y = (x - mean) * rstd * gamma + beta in the storage precision.
template <typename T>
__global__ void layernorm_forward_kernel(T* out, T* mean, T* rstd, const T* x, const T* gamma,
                                         const T* beta, double eps, int64_t R, int64_t C) {
  // ASSIGNMENT 8 BEGIN layernorm_forward_kernel device
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {  // uniform per block: the syncs are safe
    const T* xr = x + r * C;  // (C,)
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += static_cast<double>(xr[c]);
    const double m = block_reduce_sum_all(s) / static_cast<double>(C);
    double v = 0.0;  // two-pass variance: no cancellation when |mean| >> std
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const double d = static_cast<double>(xr[c]) - m;
      v += d * d;
    }
    const double rs = 1.0 / sqrt(block_reduce_sum_all(v) / static_cast<double>(C) + eps);
    const float mt = static_cast<float>(static_cast<T>(m));
    const float rt = static_cast<float>(static_cast<T>(rs));
    T* yr = out + r * C;  // (C,)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xh = (static_cast<float>(xr[c]) - mt) * rt;
      yr[c] = static_cast<T>(xh * static_cast<float>(gamma[c]) + static_cast<float>(beta[c]));
    }
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(m);
      rstd[r] = static_cast<T>(rs);
    }
  }
  // ASSIGNMENT 8 END
}

// forward: xhat = (x - mean) * rstd;  y = xhat * gamma + beta
// backward, per row (g = dy * gamma is dL/dxhat):
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
// the two row means summed in double, as on the CPU.
template <typename T>
__global__ void layernorm_backward_dx_kernel(T* dx, const T* dout, const T* x, const T* mean,
                                             const T* rstd, const T* gamma, int64_t R,
                                             int64_t C) {
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* dyr = dout + r * C;  // (C,)
    const T* xr = x + r * C;      // (C,)
    const float m = static_cast<float>(mean[r]), rs = static_cast<float>(rstd[r]);
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float g = static_cast<float>(dyr[c]) * static_cast<float>(gamma[c]);
      sum_g += static_cast<double>(g);
      sum_gx += static_cast<double>(g * ((static_cast<float>(xr[c]) - m) * rs));
    }
    const float mg = static_cast<float>(block_reduce_sum_all(sum_g) / static_cast<double>(C));
    const float mgx = static_cast<float>(block_reduce_sum_all(sum_gx) / static_cast<double>(C));
    T* dxr = dx + r * C;  // (C,)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xhat = (static_cast<float>(xr[c]) - m) * rs;
      const float g = static_cast<float>(dyr[c]) * static_cast<float>(gamma[c]);
      dxr[c] = static_cast<T>(rs * (g - mg - xhat * mgx));
    }
  }
}

// forward: y[r, c] = xhat[r, c] * gamma[c] + beta[c]
// backward: dgamma[c] = sum_r dy[r, c] * xhat[r, c];  dbeta[c] = sum_r dy[r, c]
// Pass 1: piece p holds rows p*kRowsPerPiece ... (blockIdx.y strides over pieces: gridDim.y is
// capped at 65535); neighbouring threads read neighbouring columns, so every row is one coalesced
// read per warp.
template <typename T>
__global__ void layernorm_params_partial_kernel(double* part_g, double* part_b, const T* dout,
                                                const T* x, const T* mean, const T* rstd,
                                                int64_t R, int64_t C, int64_t pieces) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int64_t p = blockIdx.y; p < pieces; p += gridDim.y) {
    const int64_t r0 = p * kRowsPerPiece;
    const int64_t r1 = r0 + kRowsPerPiece < R ? r0 + kRowsPerPiece : R;
    double acc_g = 0.0, acc_b = 0.0;
    for (int64_t r = r0; r < r1; ++r) {
      const float dy = static_cast<float>(dout[r * C + c]);
      const float xhat = (static_cast<float>(x[r * C + c]) - static_cast<float>(mean[r])) *
                         static_cast<float>(rstd[r]);
      acc_g += static_cast<double>(dy * xhat);
      acc_b += static_cast<double>(dy);
    }
    part_g[p * C + c] = acc_g;
    part_b[p * C + c] = acc_b;
  }
}

// Pass 2: the pieces of each column added in index order. A null output is not needed.
template <typename T>
__global__ void layernorm_params_finish_kernel(T* dgamma, T* dbeta, const double* part_g,
                                               const double* part_b, int64_t pieces, int64_t C) {
  for (int64_t c = grid_index(); c < C; c += grid_stride()) {
    double g = 0.0, b = 0.0;
    for (int64_t p = 0; p < pieces; ++p) {
      g += part_g[p * C + c];
      b += part_b[p * C + c];
    }
    if (dgamma) dgamma[c] = static_cast<T>(g);
    if (dbeta) dbeta[c] = static_cast<T>(b);
  }
}

// dgamma and/or dbeta (C,): two passes through a (pieces, C) scratch of partial sums.
template <typename T>
void layernorm_params_cuda(T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                           const T* rstd, int64_t R, int64_t C) {
  const int64_t pieces = R == 0 ? 1 : (R + kRowsPerPiece - 1) / kRowsPerPiece;
  // (2, pieces, C); with no rows the one piece is all zeros
  Tensor part = R == 0 ? Tensor::zeros({2, pieces, C}, DType::F64, cuda())
                       : Tensor::empty({2, pieces, C}, DType::F64, cuda());
  double* pg = part.data<double>(true);
  double* pb = pg + pieces * C;
  if (R > 0) {
    const dim3 grid(static_cast<unsigned>((C + kColsPerBlock - 1) / kColsPerBlock),
                    static_cast<unsigned>(pieces < 65535 ? pieces : 65535));
    layernorm_params_partial_kernel<<<grid, kColsPerBlock>>>(pg, pb, dout, x, mean, rstd, R, C,
                                                             pieces);
    CUDA_LAUNCH_CHECK();
  }
  layernorm_params_finish_kernel<<<grid_size_for(C, kBlock), kBlock>>>(dgamma, dbeta, pg, pb,
                                                                       pieces, C);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

template <typename T>
void layernorm_forward_cuda(T* out, T* mean, T* rstd, const T* x, const T* gamma, const T* beta,
                            double eps, int64_t R, int64_t C) {
  // ASSIGNMENT 8 BEGIN layernorm_forward_cuda
  if (R == 0 || C == 0) return;
  layernorm_forward_kernel<<<grid_size_for(R, 1), kBlock>>>(out, mean, rstd, x, gamma, beta, eps,
                                                            R, C);
  CUDA_LAUNCH_CHECK();
  // ASSIGNMENT 8 END
}

template <typename T>
void layernorm_backward_cuda(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x, const T* mean,
                             const T* rstd, const T* gamma, int64_t R, int64_t C) {
  if (C == 0) return;
  if (dx != nullptr && R > 0) {
    layernorm_backward_dx_kernel<<<grid_size_for(R, 1), kBlock>>>(dx, dout, x, mean, rstd, gamma,
                                                                  R, C);
    CUDA_LAUNCH_CHECK();
  }
  if (dgamma != nullptr || dbeta != nullptr)
    layernorm_params_cuda<T>(dgamma, dbeta, dout, x, mean, rstd, R, C);
}

template void layernorm_forward_cuda<float>(float*, float*, float*, const float*, const float*,
                                            const float*, double, int64_t, int64_t);
template void layernorm_backward_cuda<float>(float*, float*, float*, const float*, const float*,
                                             const float*, const float*, const float*, int64_t,
                                             int64_t);

}  // namespace moe
