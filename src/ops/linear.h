// linear.h — fully connected layers and batched matrix products, with autograd.
//
// linear is every projection of the model (SPEC §2): attention q,k,v and output projections, the
// FFN's C -> 4C -> C, the tied output logits LN(h) @ Embedding^T (called with no bias), and the
// gate logits X @ Wg^T of SPEC §3 step 1 (no bias). matmul is the batched product for the places
// where both operands are activations (attention scores and weighted values, per-expert FFNs over
// (E, Cap, C) buffers). Both run on ops/gemm.
//
// Conventions: weights are stored (out_features, in_features), as in PyTorch and fairseq, so
// y = x @ w^T. Leading dimensions of x are flattened into rows: x (B, T, Cin) is (B*T, Cin).
// What it leaves out: broadcasting in matmul (batch dims must match exactly), a fused activation.
//
// Devices: the ops follow their inputs (core/dispatch.h). On CUDA, linear's forward is one
// cuBLASLt matmul with the bias added in its epilogue, its backward and matmul are cuBLAS
// (cuda/ops/linear.cu); CUDA runs f32 only.
//
// Derivatives (notes/ops-linear-shape-embedding.md):
//   y = x @ w^T + b          dx = dy @ w,      dw = dy^T @ x,     db = sum over rows of dy
//   out = a @ b (batched)    da = dout @ b^T,  db = a^T @ dout
#pragma once
#include <cstdint>

#include "core/dispatch.h"
#include "core/tensor.h"

namespace moe {

// x (..., Cin), w (Cout, Cin), b (Cout,) or an undefined Tensor for no bias  ->  (..., Cout).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// a (..., M, K), b (..., K, N) with identical leading (batch) dims  ->  (..., M, N).
// Two 2-D operands are a plain matrix product.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- raw kernels (contiguous row-major buffers; T = float or double) --------------------------
// Backward kernels overwrite their outputs (the autograd engine does the accumulation); a null
// output pointer means "not needed" and skips that product.

//   out (N, Cout)  <-  x (N, Cin), w (Cout, Cin), b (Cout) or null
template <typename T>
void linear_forward(T* out, const T* x, const T* w, const T* b, int64_t N, int64_t Cin,
                    int64_t Cout);
//   dx (N, Cin), dw (Cout, Cin), db (Cout)  <-  dout (N, Cout), x (N, Cin), w (Cout, Cin)
template <typename T>
void linear_backward(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, int64_t N,
                     int64_t Cin, int64_t Cout);

//   out (batch, M, N)  <-  a (batch, M, K), b (batch, K, N)
template <typename T>
void matmul_forward(T* out, const T* a, const T* b, int64_t batch, int64_t M, int64_t K,
                    int64_t N);
//   da (batch, M, K), db (batch, K, N)  <-  dout (batch, M, N), a, b
template <typename T>
void matmul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t batch,
                     int64_t M, int64_t K, int64_t N);

// CUDA twins (cuda/ops/linear.cu), same contracts; T = float.
MOE_CUDA_BEGIN
template <typename T>
void linear_forward_cuda(T* out, const T* x, const T* w, const T* b, int64_t N, int64_t Cin,
                         int64_t Cout) MOE_CUDA_STUB
template <typename T>
void linear_backward_cuda(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, int64_t N,
                          int64_t Cin, int64_t Cout) MOE_CUDA_STUB
template <typename T>
void matmul_forward_cuda(T* out, const T* a, const T* b, int64_t batch, int64_t M, int64_t K,
                         int64_t N) MOE_CUDA_STUB
template <typename T>
void matmul_backward_cuda(T* da, T* db, const T* dout, const T* a, const T* b, int64_t batch,
                          int64_t M, int64_t K, int64_t N) MOE_CUDA_STUB
MOE_CUDA_END

}  // namespace moe
