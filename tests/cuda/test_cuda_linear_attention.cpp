// CUDA twins of linear, matmul (cuda/ops/linear.cu) and causal self-attention
// (cuda/ops/attention.cu) against the CPU ops: forward and every input gradient at sizes that are
// 1, odd, and over 1000; with and without bias; mixed requires-grad; zero sizes; views whose
// pointers are not 256-byte aligned (cuBLASLt's default assumption); attention with dropout (the
// same Philox mask on both devices) at T = 1 and T > 256; bitwise repeatability; and TF32 within
// the bound its rounding allows (notes/cuda.md §5-6).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/philox.h"
#include "cuda_check.h"
#include "ops/attention.h"
#include "ops/linear.h"

using namespace moe;
using namespace moe::testing;

namespace {

// devices_init(): plug the CUDA allocator in first (idempotent; a no-op in a CPU build).
struct CudaOpTest : ::testing::Test {
  void SetUp() override { devices_init(); }
};

std::string dims_str(std::initializer_list<int64_t> d) {
  std::ostringstream s;
  const char* sep = "";
  for (int64_t v : d) {
    s << sep << v;
    sep = "x";
  }
  return s.str();
}

Tensor linear_of(const std::vector<Tensor>& in) {
  return linear(in[0], in[1], in.size() > 2 ? in[2] : Tensor());
}
Tensor matmul_of(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }

// Output and every gradient of one forward + backward on the GPU, as raw floats.
std::vector<float> gpu_run(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                           const std::vector<Tensor>& inputs) {
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : inputs) on_gpu.push_back(leaf_copy(t, cuda()));
  Tensor y = f(on_gpu);
  std::vector<float> all = y.to_f32_vector();
  backward(y, random_f32(y.shape(), 99).to(cuda()));
  for (const Tensor& t : on_gpu) {
    if (!t.requires_grad()) continue;
    std::vector<float> g = t.grad().to_f32_vector();
    all.insert(all.end(), g.begin(), g.end());
  }
  return all;
}

// Turns TF32 on for a scope and restores the previous setting even if a check fails.
struct Tf32Scope {
  bool before = cuda_allow_tf32();
  Tf32Scope() { cuda_set_allow_tf32(true); }
  ~Tf32Scope() { cuda_set_allow_tf32(before); }
};

// s[i, j] = sum_k |a[i, k]| |b[k, j]| (a (M, K), b (K, N) row-major, in double): the size of the
// terms of one entry of a product, which bounds its TF32 rounding error.
std::vector<double> abs_product(const std::vector<double>& a, const std::vector<double>& b,
                                int64_t M, int64_t K, int64_t N) {
  std::vector<double> s(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) s[i * N + j] += std::fabs(a[i * K + k] * b[k * N + j]);
  return s;
}

std::vector<double> transposed(const std::vector<double>& a, int64_t R, int64_t C) {
  std::vector<double> t(a.size());
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) t[c * R + r] = a[r * C + c];
  return t;
}

// |gpu - cpu| <= tol::gemm + rel * terms, element by element; one failure naming the worst.
void expect_within_terms(const Tensor& gpu, const Tensor& cpu, const std::vector<double>& terms,
                         double rel, const std::string& what) {
  std::vector<double> g = gpu.to_f64_vector(), c = cpu.to_f64_vector();
  ASSERT_EQ(g.size(), c.size()) << what;
  ASSERT_EQ(terms.size(), c.size()) << what;
  size_t bad = 0, worst = 0;
  double worst_excess = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double bound = tol::gemm.atol + tol::gemm.rtol * std::fabs(c[i]) + rel * terms[i];
    const double excess = std::fabs(g[i] - c[i]) - bound;
    if (!(excess <= 0.0)) {
      if (bad++ == 0 || excess > worst_excess) {
        worst = i;
        worst_excess = excess;
      }
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " elements outside the bound; worst [" << worst
                     << "] gpu " << g[worst] << " cpu " << c[worst] << " terms " << terms[worst];
}

}  // namespace

using CudaLinear = CudaOpTest;
using CudaMatmul = CudaOpTest;
using CudaAttention = CudaOpTest;
using CudaLinearAttention = CudaOpTest;

// ---------------------------------------------------------------------------------------------
// linear

TEST_F(CudaLinear, ForwardAndGradientsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t N, Cin, Cout;
  };
  const Case cases[] = {{1, 1, 1},   {3, 7, 13},  {13, 65, 7}, {65, 3, 1},
                        {7, 13, 65}, {1031, 65, 13}, {5, 1100, 3}, {3, 13, 1031}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    for (bool bias : {true, false}) {
      const std::string at = " N,Cin,Cout=" + dims_str({c.N, c.Cin, c.Cout}) +
                             (bias ? " bias" : " no bias");
      std::vector<Tensor> in = {leaf_f32({c.N, c.Cin}, seed++), leaf_f32({c.Cout, c.Cin}, seed++)};
      if (bias) in.push_back(leaf_f32({c.Cout}, seed++));
      expect_cuda_matches_cpu(linear_of, in, tol::gemm, tol::gemm, "linear" + at);
    }
  }
  // Leading dims are flattened into rows: x (B, T, Cin).
  expect_cuda_matches_cpu(linear_of, {leaf_f32({2, 7, 13}, 50), leaf_f32({3, 13}, 51),
                                      leaf_f32({3}, 52)},
                          tol::gemm, tol::gemm, "linear 3-D x");
}

TEST_F(CudaLinear, MixedRequiresGrad) {
  MOE_SKIP_WITHOUT_CUDA();
  const Shape xs{7, 13}, ws{65, 13}, bs{65};
  // Each input alone without a gradient, then only the bias with one.
  expect_cuda_matches_cpu(linear_of, {random_f32(xs, 1), leaf_f32(ws, 2), leaf_f32(bs, 3)},
                          tol::gemm, tol::gemm, "x constant");
  expect_cuda_matches_cpu(linear_of, {leaf_f32(xs, 4), random_f32(ws, 5), leaf_f32(bs, 6)},
                          tol::gemm, tol::gemm, "w constant");
  expect_cuda_matches_cpu(linear_of, {leaf_f32(xs, 7), leaf_f32(ws, 8), random_f32(bs, 9)},
                          tol::gemm, tol::gemm, "b constant");
  expect_cuda_matches_cpu(linear_of, {random_f32(xs, 10), random_f32(ws, 11), leaf_f32(bs, 12)},
                          tol::gemm, tol::column_sum, "only b");
}

TEST_F(CudaLinear, ZeroSizes) {
  MOE_SKIP_WITHOUT_CUDA();
  // No rows: empty output, dw = 0 and db = 0. No input features: the output is the bias alone.
  expect_cuda_matches_cpu(linear_of, {leaf_f32({0, 5}, 1), leaf_f32({3, 5}, 2), leaf_f32({3}, 3)},
                          tol::exact, tol::exact, "N = 0");
  expect_cuda_matches_cpu(linear_of, {leaf_f32({4, 0}, 4), leaf_f32({3, 0}, 5), leaf_f32({3}, 6)},
                          tol::exact, tol::exact, "Cin = 0");
  expect_cuda_matches_cpu(linear_of, {leaf_f32({4, 0}, 7), leaf_f32({3, 0}, 8)}, tol::exact,
                          tol::exact, "Cin = 0, no bias");
  expect_cuda_matches_cpu(linear_of, {leaf_f32({4, 5}, 9), leaf_f32({0, 5}, 10),
                                      leaf_f32({0}, 11)},
                          tol::exact, tol::exact, "Cout = 0");
}

TEST_F(CudaLinear, UnalignedViewsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // Rows 1.. of a (N+1, Cin) tensor and entries 1.. of a bias vector are contiguous views whose
  // first element is 4 * Cin (resp. 4) bytes past an aligned block: the plan must not assume
  // cuBLASLt's default 256-byte alignment.
  const int64_t N = 9, Cin = 3, Cout = 5;
  Tensor xbig = random_f32({N + 1, Cin}, 1), w = random_f32({Cout, Cin}, 2);
  Tensor bbig = random_f32({Cout + 1}, 3);
  Tensor y_cpu = linear(xbig.slice_view(0, 1, N + 1), w, bbig.slice_view(0, 1, Cout + 1));
  Tensor xg = xbig.to(cuda()), wg = w.to(cuda()), bg = bbig.to(cuda());
  Tensor y_gpu = linear(xg.slice_view(0, 1, N + 1), wg, bg.slice_view(0, 1, Cout + 1));
  expect_allclose(y_gpu.to_f64_vector(), y_cpu.to_f64_vector(), tol::gemm, "unaligned x and b");
  Tensor y2_cpu = linear(xbig.slice_view(0, 1, N + 1), w, Tensor());
  Tensor y2_gpu = linear(xg.slice_view(0, 1, N + 1), wg, Tensor());
  expect_allclose(y2_gpu.to_f64_vector(), y2_cpu.to_f64_vector(), tol::gemm, "unaligned x");
}

TEST_F(CudaLinear, Tf32WithinItsRoundingBound) {
  MOE_SKIP_WITHOUT_CUDA();
  // TF32 keeps 10 of f32's 23 mantissa bits: each input is off by at most 2^-10 relative (if the
  // hardware truncates; 2^-11 if it rounds), so one product x_k w_k by at most ~2^-9 < 2e-3 of
  // |x_k w_k|, and the sum (accumulated in f32) by at most 2e-3 * sum_k |x_k| |w_k|. The test
  // allows exactly that on top of tol::gemm. The bias is added in f32 and db is a column sum.
  constexpr double kRel = 2e-3;
  const int64_t N = 65, Cin = 1031, Cout = 13;
  Tensor x = leaf_f32({N, Cin}, 1), w = leaf_f32({Cout, Cin}, 2), b = leaf_f32({Cout}, 3);
  Tensor seed = random_f32({N, Cout}, 4);
  std::vector<Tensor> cpu_in{leaf_copy(x, cpu()), leaf_copy(w, cpu()), leaf_copy(b, cpu())};
  std::vector<Tensor> gpu_in{leaf_copy(x, cuda()), leaf_copy(w, cuda()), leaf_copy(b, cuda())};
  Tensor y_cpu = linear_of(cpu_in);
  backward(y_cpu, seed);
  Tensor y_gpu;
  {
    Tf32Scope tf32;
    y_gpu = linear_of(gpu_in);
    backward(y_gpu, seed.to(cuda()));
  }
  const std::vector<double> xv = x.to_f64_vector(), wv = w.to_f64_vector();
  const std::vector<double> gv = seed.to_f64_vector();
  // y = x w^T: terms |x| |w|^T;  dx = dy w: |dy| |w|;  dw = dy^T x: |dy|^T |x|
  expect_within_terms(y_gpu, y_cpu, abs_product(xv, transposed(wv, Cout, Cin), N, Cin, Cout),
                      kRel, "tf32 forward");
  expect_within_terms(gpu_in[0].grad(), cpu_in[0].grad(), abs_product(gv, wv, N, Cout, Cin), kRel,
                      "tf32 dx");
  expect_within_terms(gpu_in[1].grad(), cpu_in[1].grad(),
                      abs_product(transposed(gv, N, Cout), xv, Cout, N, Cin), kRel, "tf32 dw");
  expect_allclose(gpu_in[2].grad().to_f64_vector(), cpu_in[2].grad().to_f64_vector(),
                  tol::column_sum, "tf32 db");
  EXPECT_FALSE(cuda_allow_tf32()) << "the scope restores the library default";
}

// ---------------------------------------------------------------------------------------------
// matmul

TEST_F(CudaMatmul, ForwardAndGradientsMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{1, 1}, {1, 1}},                  // plain 2-D, all ones
      {{3, 7}, {7, 13}},                 // 2-D, odd
      {{13, 1, 65}, {13, 65, 3}},        // batch 13, M = 1
      {{2, 3, 7, 13}, {2, 3, 13, 1}},    // two batch dims, N = 1
      {{65, 7, 3}, {65, 3, 13}},         // many small products
      {{2, 1031, 13}, {2, 13, 7}},       // M > 1000
      {{3, 5, 1100}, {3, 1100, 7}},      // K > 1000
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    const std::string at = " a " + shape_str(c.a) + " b " + shape_str(c.b);
    expect_cuda_matches_cpu(matmul_of, {leaf_f32(c.a, seed), leaf_f32(c.b, seed + 1)}, tol::gemm,
                            tol::gemm, "matmul" + at);
    seed += 2;
  }
}

TEST_F(CudaMatmul, MixedRequiresGradAndZeroSizes) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_cuda_matches_cpu(matmul_of, {random_f32({4, 7, 13}, 1), leaf_f32({4, 13, 3}, 2)},
                          tol::gemm, tol::gemm, "a constant");
  expect_cuda_matches_cpu(matmul_of, {leaf_f32({4, 7, 13}, 3), random_f32({4, 13, 3}, 4)},
                          tol::gemm, tol::gemm, "b constant");
  // The same tensor twice: the engine adds both gradients on the device.
  Tensor a = leaf_f32({3, 7, 7}, 5);
  expect_cuda_matches_cpu(matmul_of, {a, a}, tol::gemm, tol::gemm, "a @ a");
  // K = 0 gives zeros (and empty gradients); an empty batch or M = 0 gives an empty output.
  expect_cuda_matches_cpu(matmul_of, {leaf_f32({2, 3, 0}, 6), leaf_f32({2, 0, 4}, 7)},
                          tol::exact, tol::exact, "K = 0");
  expect_cuda_matches_cpu(matmul_of, {leaf_f32({0, 3, 5}, 8), leaf_f32({0, 5, 4}, 9)},
                          tol::exact, tol::exact, "batch = 0");
  expect_cuda_matches_cpu(matmul_of, {leaf_f32({2, 0, 5}, 10), leaf_f32({2, 5, 4}, 11)},
                          tol::exact, tol::exact, "M = 0");
}

// ---------------------------------------------------------------------------------------------
// attention

namespace {

struct AttnDims {
  int64_t B, T, C, NH;
};

// A fresh generator per call, so the CPU and the GPU runs draw the same mask.
OpFn attention_fn(int NH, double p, bool training, uint64_t seed) {
  return [=](const std::vector<Tensor>& in) {
    CounterRng rng(seed, kTrainDropoutStream);
    return causal_self_attention(in[0], NH, p, training, rng);
  };
}

}  // namespace

TEST_F(CudaAttention, ForwardAndGradientMatchCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  // T = 1 (one token attends to itself), hs = 1, odd T and hs, a row longer than one block (65),
  // T > 256 (rows strided over a 256-thread block), and T = 530 and 1100, where the products
  // are cut into 2 and 4 causal bands of uneven sizes (cuda/ops/attention.cu).
  const AttnDims dims[] = {{1, 1, 1, 1},   {3, 1, 6, 3},     {1, 3, 2, 1},  {2, 7, 12, 4},
                           {3, 13, 20, 5}, {2, 65, 16, 2},   {1, 300, 24, 4},
                           {1, 530, 8, 2}, {1, 1100, 8, 2}};
  uint64_t seed = 1;
  for (const AttnDims& d : dims) {
    for (double p : {0.0, 0.3}) {
      const std::string at = " B,T,C,NH=" + dims_str({d.B, d.T, d.C, d.NH}) +
                             " p=" + std::to_string(p);
      Tensor qkv = leaf_f32({d.B, d.T, 3 * d.C}, seed++, -2.0, 2.0);
      expect_cuda_matches_cpu(attention_fn(static_cast<int>(d.NH), p, true, 7), {qkv},
                              tol::attention, tol::attention, "attention" + at);
    }
  }
}

TEST_F(CudaAttention, EvalModeAndHighDropout) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor qkv = leaf_f32({2, 33, 3 * 12}, 1, -2.0, 2.0);
  expect_cuda_matches_cpu(attention_fn(3, 0.5, /*training=*/false, 3), {qkv}, tol::attention,
                          tol::attention, "eval mode ignores p");
  expect_cuda_matches_cpu(attention_fn(3, 0.9, /*training=*/true, 3), {qkv}, tol::attention,
                          tol::attention, "p = 0.9");
}

TEST_F(CudaAttention, ZeroBatch) {
  MOE_SKIP_WITHOUT_CUDA();
  expect_cuda_matches_cpu(attention_fn(2, 0.1, true, 1), {leaf_f32({0, 5, 12}, 1)}, tol::exact,
                          tol::exact, "B = 0");
  expect_cuda_matches_cpu(attention_fn(2, 0.1, true, 1), {leaf_f32({2, 0, 12}, 2)}, tol::exact,
                          tol::exact, "T = 0");
}

// ---------------------------------------------------------------------------------------------
// run-to-run determinism

TEST_F(CudaLinearAttention, RepeatRunsAreBitwiseEqual) {
  MOE_SKIP_WITHOUT_CUDA();
  // Same inputs, same bits: cuBLAS(Lt) without atomics, fixed-order reductions, the same Philox
  // mask. The first linear call searches its cuBLASLt algorithm, the second reuses the plan.
  const std::vector<Tensor> lin = {leaf_f32({1031, 65}, 1), leaf_f32({13, 65}, 2),
                                   leaf_f32({13}, 3)};
  EXPECT_EQ(gpu_run(linear_of, lin), gpu_run(linear_of, lin)) << "linear";
  const std::vector<Tensor> mm = {leaf_f32({3, 65, 13}, 4), leaf_f32({3, 13, 7}, 5)};
  EXPECT_EQ(gpu_run(matmul_of, mm), gpu_run(matmul_of, mm)) << "matmul";
  const std::vector<Tensor> at = {leaf_f32({2, 300, 3 * 24}, 6, -2.0, 2.0)};
  const OpFn attn = attention_fn(4, 0.1, true, 11);
  EXPECT_EQ(gpu_run(attn, at), gpu_run(attn, at)) << "attention with dropout";
}
