// linear.cu — CUDA twins of src/ops/linear.cpp: linear (every projection of SPEC §2, the gate
// logits of SPEC §3 step 1) and the batched matmul (SPEC §2 attention, §3 step 9 experts).
//
// linear's forward is a single cuBLASLt matmul with the bias added in the epilogue, so the output
// is written once instead of being pre-filled with the bias and read back by the GEMM. Its
// backward and matmul are plain cuBLAS (ops/gemm.h's gemm_cuda / gemm_batched_cuda), and db is the
// deterministic column sum of cuda/core/reduce.cuh (no atomics: same bits every run).
//
// The cuBLASLt call in column-major terms. Row-major y (N, Cout) is, byte for byte, the
// column-major matrix D (Cout x N) with leading dimension Cout; row-major w (Cout, Cin) is the
// column-major (Cin x Cout), ld Cin; row-major x (N, Cin) is the column-major (Cin x N), ld Cin. So
//   D (Cout x N) = op(A) op(B) + bias,   A = w stored (Cin x Cout) with op = T,
//                                        B = x stored (Cin x N)    with op = N,
// and the bias (length Cout = rows of D) is broadcast over D's columns, exactly the epilogue's
// contract (CUBLASLT_EPILOGUE_BIAS: "length must match matrix D rows").
//
// Plans: descriptors, layouts and the heuristic's algorithm are built once per (device, shape,
// bias or not, TF32 or not, pointer alignments) and kept in a small map, so a training step after
// the first does no heuristic search. Alignment is part of the key because the heuristic assumes
// 256-byte aligned buffers unless told otherwise, and a view with an offset may be less aligned;
// the bias pointer is set before the search because the heuristic reads its alignment from it.
// If the heuristic offers nothing, the plan records that and the call falls back to gemm_cuda
// after filling the output with the bias (the CPU's own order of operations).
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "core/device.h"
#include "core/reduce.cuh"
#include "cublas_handle.h"
#include "cuda_common.h"
#include "ops/gemm.h"
#include "ops/linear.h"

namespace moe {
namespace {

// out[n, o] = b[o]: the fallback's starting value (the CPU's linear_forward does the same).
template <typename T>
__global__ void fill_rows_with_bias_kernel(T* out, const T* b, int64_t N, int64_t Cout) {
  const int64_t n = N * Cout;
  for (int64_t i = grid_index(); i < n; i += grid_stride()) out[i] = b[i % Cout];
}

template <typename T>
void fill_rows_with_bias(T* out, const T* b, int64_t N, int64_t Cout) {
  fill_rows_with_bias_kernel<<<grid_size_for(N * Cout, kBlock), kBlock>>>(out, b, N, Cout);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void zero(T* p, int64_t n) {
  if (n > 0) CUDA_CHECK(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(T), 0));
}

// C (batch x M x N, contiguous) = alpha op(A) op(B). cuBLAS is never asked about an empty inner
// dimension (k = 0); the product is then all zeros, as the CPU gemm gives with beta = 0.
template <typename T>
void batched_product(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                     int64_t lda, const T* B, int64_t ldb, T* C, int64_t batch, int64_t strideA,
                     int64_t strideB) {
  if (batch == 0 || M == 0 || N == 0) return;
  if (K == 0) return zero(C, batch * M * N);
  if (batch == 1) return gemm_cuda<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, T(0), C, N);
  gemm_batched_cuda<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, T(0), C, N, batch, strideA,
                       strideB, M * N);
}

// ---- cuBLASLt plans ----------------------------------------------------------------------------

// Largest power of two (at most 256) dividing the address: what the heuristic may assume.
uint32_t alignment_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 1 && (a % align) != 0) align /= 2;
  return align;
}

struct PlanKey {
  int device;
  int64_t N, Cin, Cout;
  bool bias, tf32;
  uint32_t align_x, align_w, align_out, align_b;
  bool operator<(const PlanKey& o) const {
    return std::tie(device, N, Cin, Cout, bias, tf32, align_x, align_w, align_out, align_b) <
           std::tie(o.device, o.N, o.Cin, o.Cout, o.bias, o.tf32, o.align_x, o.align_w,
                    o.align_out, o.align_b);
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;  // w, x, out
  cublasLtMatmulAlgo_t algo{};
  bool found = false;  // false: the heuristic had no algorithm, use the fallback
};

void destroy(Plan& p) {
  if (p.a) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.a));
  if (p.b) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.b));
  if (p.d) CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p.d));
  if (p.desc) CUBLAS_CHECK(cublasLtMatmulDescDestroy(p.desc));
  p = Plan{};
}

template <typename V>
void set_desc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const V& v) {
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, attr, &v, sizeof v));
}
template <typename V>
void set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
              const V& v) {
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof v));
}

// Asks the heuristic for the best algorithm of a plan whose descriptors are built. A failed or
// empty search is not an error: the caller then takes the fallback path.
void search_algorithm(Plan& p, const PlanKey& k) {
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{kCublasLtWorkspaceBytes});
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, k.align_w);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, k.align_x);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k.align_out);
  set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k.align_out);
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      cublaslt_handle(), p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &returned);
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  p.found = st == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS;
  if (p.found) p.algo = result.algo;
}

// Builds the descriptors of one linear shape (see the file comment for the layout) and searches
// its algorithm. `bias` is the pointer of this call: only its alignment matters to the search.
Plan make_plan(const PlanKey& k, const void* bias) {
  Plan p;
  const cublasComputeType_t compute = k.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F));
  set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set_desc(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  const cublasLtEpilogue_t epilogue = k.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  set_desc(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (k.bias) set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_32F, u(k.Cin), u(k.Cout), k.Cin));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_32F, u(k.Cin), u(k.N), k.Cin));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, u(k.Cout), u(k.N), k.Cout));
  search_algorithm(p, k);
  return p;
}

// The plan cache. Plans live until the process ends (like the handles), except that a map grown
// past kMaxPlans (many distinct row counts, e.g. evaluation over ragged lengths) is emptied.
constexpr size_t kMaxPlans = 256;

struct PlanCache {
  std::mutex mu;
  std::map<PlanKey, Plan> plans;
};

PlanCache& plan_cache() {
  static PlanCache* cache = new PlanCache;  // never destroyed: see cublas_handle.cu
  return *cache;
}

int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

// Runs out = x w^T (+ b) through cuBLASLt. Returns false, having done nothing, when the
// heuristic had no algorithm for this shape.
bool linear_forward_lt(float* out, const float* x, const float* w, const float* b, int64_t N,
                       int64_t Cin, int64_t Cout) {
  const PlanKey key{current_device(), N, Cin, Cout, b != nullptr, cuda_allow_tf32(),
                    alignment_of(x), alignment_of(w), alignment_of(out),
                    b ? alignment_of(b) : 0u};
  PlanCache& cache = plan_cache();
  std::lock_guard<std::mutex> lock(cache.mu);  // the descriptor's bias pointer is per call
  auto it = cache.plans.find(key);
  if (it == cache.plans.end()) {
    if (cache.plans.size() >= kMaxPlans) {
      for (auto& kv : cache.plans) destroy(kv.second);
      cache.plans.clear();
    }
    it = cache.plans.emplace(key, make_plan(key, b)).first;
  }
  Plan& p = it->second;
  if (!p.found) return false;
  if (b) set_desc(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(b));
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(cublaslt_handle(), p.desc, &alpha, w, p.a, x, p.b, &beta, out, p.d,
                              out, p.d, &p.algo, cublaslt_workspace(), kCublasLtWorkspaceBytes,
                              /*stream=*/0));
  return true;
}

}  // namespace

// ---- launchers ---------------------------------------------------------------------------------

template <typename T>
void linear_forward_cuda(T* out, const T* x, const T* w, const T* b, int64_t N, int64_t Cin,
                         int64_t Cout) {
  static_assert(sizeof(T) == 4, "linear_forward_cuda is instantiated for float only");
  if (N == 0 || Cout == 0) return;
  if (Cin == 0) {  // an empty product: only the bias is left
    if (b) fill_rows_with_bias(out, b, N, Cout);
    else zero(out, N * Cout);
    return;
  }
  if (linear_forward_lt(out, x, w, b, N, Cin, Cout)) return;
  // Fallback: out = b broadcast over rows, then out += x w^T (beta = 1), as on the CPU.
  if (b) fill_rows_with_bias(out, b, N, Cout);
  gemm_cuda<T>(false, true, N, Cout, Cin, T(1), x, Cin, w, Cin, b ? T(1) : T(0), out, Cout);
}

template <typename T>
void linear_backward_cuda(T* dx, T* dw, T* db, const T* dout, const T* x, const T* w, int64_t N,
                          int64_t Cin, int64_t Cout) {
  // forward: out = x @ w^T + b
  // dx (N, Cin) = dout (N, Cout) @ w (Cout, Cin)
  if (dx) batched_product<T>(false, false, N, Cin, Cout, T(1), dout, Cout, w, Cin, dx, 1, 0, 0);
  // dw (Cout, Cin) = dout^T (Cout, N) @ x (N, Cin)
  if (dw) batched_product<T>(true, false, Cout, Cin, N, T(1), dout, Cout, x, Cin, dw, 1, 0, 0);
  // db (Cout) = sum over rows of dout, in a fixed order (no atomics)
  if (db) column_sums_cuda<T>(db, dout, N, Cout);
}

template <typename T>
void matmul_forward_cuda(T* out, const T* a, const T* b, int64_t batch, int64_t M, int64_t K,
                         int64_t N) {
  // out[i] (M, N) = a[i] (M, K) @ b[i] (K, N)
  batched_product<T>(false, false, M, N, K, T(1), a, K, b, N, out, batch, M * K, K * N);
}

template <typename T>
void matmul_backward_cuda(T* da, T* db, const T* dout, const T* a, const T* b, int64_t batch,
                          int64_t M, int64_t K, int64_t N) {
  // forward: out = a @ b
  // da[i] (M, K) = dout[i] (M, N) @ b[i]^T (N, K)
  if (da) batched_product<T>(false, true, M, K, N, T(1), dout, N, b, N, da, batch, M * N, K * N);
  // db[i] (K, N) = a[i]^T (K, M) @ dout[i] (M, N)
  if (db) batched_product<T>(true, false, K, N, M, T(1), a, K, dout, N, db, batch, M * K, M * N);
}

template void linear_forward_cuda<float>(float*, const float*, const float*, const float*,
                                         int64_t, int64_t, int64_t);
template void linear_backward_cuda<float>(float*, float*, float*, const float*, const float*,
                                          const float*, int64_t, int64_t, int64_t);
template void matmul_forward_cuda<float>(float*, const float*, const float*, int64_t, int64_t,
                                         int64_t, int64_t);
template void matmul_backward_cuda<float>(float*, float*, const float*, const float*,
                                          const float*, int64_t, int64_t, int64_t, int64_t);

}  // namespace moe
