// experts.cu — CUDA twin of src/moe/experts.cpp: the E expert FFNs of an MoE layer on their
// (E, Cap, C) buffers (SPEC §2 "an expert is a full FFN of the dense shape", SPEC §3 step 9).
//
// The same steps as the CPU, with the same (in, out) weight layout W1 (E, C, H), W2 (E, H, C):
//   pre = buf[e] W1[e] + b1[e]    the rows start as the bias, then one cuBLAS strided-batched GEMM
//                                 over the E experts adds the product (beta = 1)
//   act = gelu(pre)               ops/activation.h's kernel
//   out = act[e] W2[e] + b2[e]    as fc1
// and backward: dW2 = act^T dout, dact = dout W2^T, dpre = dact gelu'(pre), dW1 = buf^T dpre,
// dbuf = dpre W1^T (batched GEMMs), db2 / db1 = per-expert column sums of dout / dpre.
//
// The bias gradients are sums over each expert's Cap rows. They are cut into pieces of 256 rows
// whose boundaries depend only on Cap; each thread sums one (expert, piece, column) in row order,
// and a second pass adds the pieces in order. No atomics, the same bits on every run. When Cap
// fits one piece the first pass writes the result directly, in the CPU's exact order.
#include "core/tensor.h"
#include "cuda_common.h"
#include "moe/experts.h"
#include "ops/activation.h"
#include "ops/gemm.h"

namespace moe {
namespace {

constexpr int64_t kBiasRowsPerPiece = 256;  // rows of one expert summed by one thread in pass 1
constexpr int kBiasColumns = 128;           // columns per block in pass 1

// rows (E, Cap, D): every row of expert e starts as bias[e] (D), so a GEMM with beta = 1 adds on.
template <typename T>
__global__ void fill_rows_with_bias_kernel(T* rows, const T* bias, int64_t Cap, int64_t D,
                                           int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t r = i / D, d = i - r * D;
    rows[i] = bias[(r / Cap) * D + d];
  }
}

// Pass 1, block (column group, piece p, expert e): out[(e * pieces + p) * D + d] = sum of
// drows[e, r, d] over the rows r of piece p, in order. With one piece, out is dbias itself.
template <typename T, typename Out>
__global__ void bias_partials_kernel(Out* out, const T* drows, int64_t Cap, int64_t D) {
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t p = blockIdx.y, e = blockIdx.z, pieces = gridDim.y;
  if (d >= D) return;
  const int64_t r0 = p * kBiasRowsPerPiece;
  const int64_t r1 = r0 + kBiasRowsPerPiece < Cap ? r0 + kBiasRowsPerPiece : Cap;
  const T* rows = drows + e * Cap * D;
  float acc = 0.0f;
  for (int64_t r = r0; r < r1; ++r) acc += static_cast<float>(rows[r * D + d]);
  out[(e * pieces + p) * D + d] = static_cast<Out>(acc);
}

// Pass 2: dbias[e, d] = sum over pieces p of partial[e, p, d], in order.
template <typename T>
__global__ void bias_finish_kernel(T* dbias, const float* partial, int64_t pieces, int64_t D,
                                   int64_t n) {
  for (int64_t i = grid_index(); i < n; i += grid_stride()) {
    const int64_t e = i / D, d = i - e * D;
    float acc = 0.0f;
    for (int64_t p = 0; p < pieces; ++p) acc += partial[(e * pieces + p) * D + d];
    dbias[i] = static_cast<T>(acc);
  }
}

template <typename T>
void fill_rows_with_bias(T* rows, const T* bias, int64_t E, int64_t Cap, int64_t D) {
  const int64_t n = E * Cap * D;
  if (n == 0) return;
  fill_rows_with_bias_kernel<<<grid_size_for(n, kBlock), kBlock>>>(rows, bias, Cap, D, n);
  CUDA_LAUNCH_CHECK();
}

// dbias (E, D) = sum over the Cap rows of each expert of drows (E, Cap, D); deterministic.
template <typename T>
void bias_grad_per_expert(T* dbias, const T* drows, int64_t E, int64_t Cap, int64_t D) {
  if (E * D == 0) return;
  const int64_t pieces = Cap == 0 ? 1 : (Cap + kBiasRowsPerPiece - 1) / kBiasRowsPerPiece;
  CHECK(E <= 65535 && pieces <= 65535, "expert bias gradient: E = ", E, ", Cap = ", Cap,
        " exceed the grid");
  const dim3 grid(static_cast<unsigned>((D + kBiasColumns - 1) / kBiasColumns),
                  static_cast<unsigned>(pieces), static_cast<unsigned>(E));
  if (pieces == 1) {  // one piece: sum straight into dbias, rows in order like the CPU
    bias_partials_kernel<T, T><<<grid, kBiasColumns>>>(dbias, drows, Cap, D);
    CUDA_LAUNCH_CHECK();
    return;
  }
  Tensor partial = Tensor::empty({E, pieces, D}, DType::F32, cuda());  // (E, pieces, D)
  float* pp = partial.data<float>(true);
  bias_partials_kernel<T, float><<<grid, kBiasColumns>>>(pp, drows, Cap, D);
  CUDA_LAUNCH_CHECK();
  bias_finish_kernel<<<grid_size_for(E * D, kBlock), kBlock>>>(dbias, pp, pieces, D, E * D);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

template <typename T>
void expert_ffn_forward_cuda(T* out, T* pre, T* act, const T* buf, const T* w1, const T* b1,
                             const T* w2, const T* b2, int64_t E, int64_t Cap, int64_t C,
                             int64_t H) {
  // pre[e] (Cap, H) = buf[e] (Cap, C) @ w1[e] (C, H) + b1[e]
  fill_rows_with_bias(pre, b1, E, Cap, H);
  gemm_batched_cuda<T>(false, false, Cap, H, C, T(1), buf, C, w1, H, T(1), pre, H, E, Cap * C,
                       C * H, Cap * H);
  // act = gelu(pre)   (E, Cap, H)
  gelu_forward_cuda<T>(act, pre, E * Cap * H);
  // out[e] (Cap, C) = act[e] (Cap, H) @ w2[e] (H, C) + b2[e]
  fill_rows_with_bias(out, b2, E, Cap, C);
  gemm_batched_cuda<T>(false, false, Cap, C, H, T(1), act, H, w2, C, T(1), out, C, E, Cap * H,
                       H * C, Cap * C);
}

template <typename T>
void expert_ffn_backward_cuda(T* dbuf, T* dw1, T* db1, T* dw2, T* db2, const T* dout,
                              const T* pre, const T* act, const T* buf, const T* w1, const T* w2,
                              int64_t E, int64_t Cap, int64_t C, int64_t H) {
  // forward: out[e] = act[e] @ w2[e] + b2[e]
  //   dw2[e] (H, C) = act[e]^T (H, Cap) @ dout[e] (Cap, C)
  if (dw2 != nullptr)
    gemm_batched_cuda<T>(true, false, H, C, Cap, T(1), act, H, dout, C, T(0), dw2, C, E,
                         Cap * H, Cap * C, H * C);
  //   db2[e] (C) = sum over rows of dout[e]
  if (db2 != nullptr) bias_grad_per_expert(db2, dout, E, Cap, C);
  if (dbuf == nullptr && dw1 == nullptr && db1 == nullptr) return;  // nothing before fc2 wanted
  //   dact[e] (Cap, H) = dout[e] (Cap, C) @ w2[e]^T (C, H)
  Tensor scratch = Tensor::empty({E, Cap, H}, dtype_of<T>(), cuda());  // dact, then dpre in place
  T* dpre = scratch.data<T>(true);
  gemm_batched_cuda<T>(false, true, Cap, H, C, T(1), dout, C, w2, C, T(0), dpre, H, E, Cap * C,
                       H * C, Cap * H);
  // forward: act = gelu(pre)  =>  dpre = dact * gelu'(pre)   (elementwise, so in place is safe)
  gelu_backward_cuda<T>(dpre, dpre, pre, E * Cap * H);
  // forward: pre[e] = buf[e] @ w1[e] + b1[e]
  //   dw1[e] (C, H) = buf[e]^T (C, Cap) @ dpre[e] (Cap, H)
  if (dw1 != nullptr)
    gemm_batched_cuda<T>(true, false, C, H, Cap, T(1), buf, C, dpre, H, T(0), dw1, H, E, Cap * C,
                         Cap * H, C * H);
  //   db1[e] (H) = sum over rows of dpre[e]
  if (db1 != nullptr) bias_grad_per_expert(db1, dpre, E, Cap, H);
  //   dbuf[e] (Cap, C) = dpre[e] (Cap, H) @ w1[e]^T (H, C)
  if (dbuf != nullptr)
    gemm_batched_cuda<T>(false, true, Cap, C, H, T(1), dpre, H, w1, H, T(0), dbuf, C, E, Cap * H,
                         C * H, Cap * C);
}

template void expert_ffn_forward_cuda<float>(float*, float*, float*, const float*, const float*,
                                             const float*, const float*, const float*, int64_t,
                                             int64_t, int64_t, int64_t);
template void expert_ffn_backward_cuda<float>(float*, float*, float*, float*, float*,
                                              const float*, const float*, const float*,
                                              const float*, const float*, const float*, int64_t,
                                              int64_t, int64_t, int64_t);

}  // namespace moe
