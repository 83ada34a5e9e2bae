// CUDA twins of the embedding and of transpose, slice and concat (cuda/ops/embedding.cu,
// cuda/ops/shape.cu) against the CPU ops. All are exact: the shape kernels only move words, and
// the embedding backward sums each vocabulary row in token order on both devices. Also: repeated
// ids across the counting sort's chunks, a bitwise run-to-run repeat, the NaN row that stands for
// an out-of-range id on the GPU, i32 tensors through the shape ops, mixed requires-grad in concat.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "core/rng.h"
#include "cuda_check.h"
#include "finetune/last_token.h"
#include "ops/embedding.h"
#include "ops/shape.h"

using namespace moe;
using namespace moe::testing;

namespace {

// gtest runs the test files in link order, so these tests may come before any that calls
// devices_init(): plug the CUDA allocator in first (idempotent; a no-op in a CPU build).
struct CudaInit : ::testing::Environment {
  void SetUp() override { devices_init(); }
};
const ::testing::Environment* const kCudaInit = ::testing::AddGlobalTestEnvironment(new CudaInit);

Tensor random_ids(const Shape& shape, int64_t V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(static_cast<size_t>(shape_numel(shape)));
  for (int32_t& id : v) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(V)));
  return Tensor::from_i32(v, shape);
}

Tensor embed_of(const std::vector<Tensor>& in) { return embedding(in[0], in[1]); }

std::string shape_of(const Tensor& t) { return " " + shape_str(t.shape()); }

}  // namespace

TEST(CudaEmbedding, ForwardAndGradientMatchCpuExactly) {
  MOE_SKIP_WITHOUT_CUDA();
  // (ids shape, V, C): tiny V (every id repeated many times, across the sort's 1024-item chunks),
  // V larger than the number of tokens (most rows get no token: zeros), odd and > 1000 widths.
  struct Case {
    Shape ids;
    int64_t V, C;
  };
  const Case cases[] = {{{1}, 1, 1},        {{3}, 7, 3},        {{2, 7}, 13, 7},
                        {{13, 5}, 3, 65},   {{4, 65}, 1031, 13}, {{3, 1000}, 7, 5},
                        {{2, 3}, 65, 1031}, {{2100}, 50257, 3}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    Tensor ids = random_ids(c.ids, c.V, seed++);
    Tensor table = leaf_f32({c.V, c.C}, seed++);
    expect_cuda_matches_cpu(embed_of, {ids, table}, tol::exact, tol::exact,
                            "embedding ids" + shape_of(ids) + " table" + shape_of(table));
  }
}

TEST(CudaEmbedding, RepeatedIdsAndEmptyBatch) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor ids = Tensor::from_i32({4, 0, 4, 4, 1, 4, 0}, {7});  // rows 2 and 3 get no token
  expect_cuda_matches_cpu(embed_of, {ids, leaf_f32({5, 9}, 20)}, tol::exact, tol::exact,
                          "repeated ids");
  Tensor none = Tensor::from_i32({}, {0});
  expect_cuda_matches_cpu(embed_of, {none, leaf_f32({5, 9}, 21)}, tol::exact, tol::exact,
                          "no ids: a zero gradient");
}

TEST(CudaEmbedding, BackwardIsBitwiseRepeatable) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor ids = random_ids({8, 1024}, 300, 30).to(cuda());  // ~27 tokens per row, 8 sort chunks
  Tensor table = random_f32({300, 96}, 31).to(cuda());
  Tensor seed = random_f32({8, 1024, 96}, 32).to(cuda());
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    Tensor t = table.clone();
    t.set_requires_grad(true);
    backward(embedding(ids, t), seed);
    runs.push_back(t.grad().to_f32_vector());
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(CudaEmbedding, OutOfRangeIdGivesNanRowNotAnError) {
  MOE_SKIP_WITHOUT_CUDA();
  // On the GPU the ids are never read by the host: a bad id poisons its output row instead.
  Tensor table = random_f32({5, 4}, 40).to(cuda());
  table.set_requires_grad(true);
  Tensor ids = Tensor::from_i32({1, 5, -1, 1}, {4}).to(cuda());
  Tensor y = embedding(ids, table);
  std::vector<double> out = y.to_f64_vector();
  for (int c = 0; c < 4; ++c) {
    EXPECT_FALSE(std::isnan(out[c]));
    EXPECT_TRUE(std::isnan(out[4 + c]));
    EXPECT_TRUE(std::isnan(out[8 + c]));
  }
  backward(y, Tensor::full({4, 4}, 1.0, DType::F32, cuda()));
  std::vector<double> g = table.grad().to_f64_vector();  // (5, 4): row 1 got two tokens
  for (int c = 0; c < 4; ++c) EXPECT_EQ(g[4 + c], 2.0);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(g[c], 0.0);
  // the CPU keeps its error
  EXPECT_THROW(embedding(Tensor::from_i32({1, 5}, {2}), random_f32({5, 4}, 41)), Error);
  // and ids on another device than the table are an error
  EXPECT_THROW(embedding(Tensor::from_i32({1, 2}, {2}), table), Error);
}

// The fine-tuning head's gather is an embedding lookup into x seen as (B*T, C), so it runs on the
// GPU through the embedding kernels; the index stays host data, as its callers keep it.
TEST(CudaEmbedding, GatherRowsAndLastTokenFollowX) {
  MOE_SKIP_WITHOUT_CUDA();
  Tensor x = leaf_f32({4, 9, 13}, 45);
  Tensor index = Tensor::from_i32({8, 0, 3, 3}, {4});
  expect_cuda_matches_cpu(
      [index](const std::vector<Tensor>& in) { return gather_rows(in[0], index); }, {x},
      tol::exact, tol::exact, "gather_rows");
  Tensor lengths = Tensor::from_i32({9, 1, 4, 4}, {4});
  expect_cuda_matches_cpu(
      [lengths](const std::vector<Tensor>& in) { return last_token(in[0], lengths); }, {x},
      tol::exact, tol::exact, "last_token");
}

TEST(CudaTranspose, MatchesCpuExactly) {
  MOE_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int d0, d1;
  };
  const Case cases[] = {{{1}, 0, 0},          {{3, 7}, 0, 1},        {{7, 13, 3}, 0, 2},
                        {{2, 3, 5, 7}, 1, 2},  {{2, 3, 5, 7}, 0, 3},  {{2, 3, 5, 7}, -1, 1},
                        {{13, 1031}, 1, 0},    {{2, 65, 4, 16}, 1, 2}};
  uint64_t seed = 50;
  for (const Case& c : cases) {
    const int d0 = c.d0, d1 = c.d1;
    const std::string what = "transpose" + shape_str(c.shape) + " " + std::to_string(d0) + "," +
                             std::to_string(d1);
    expect_cuda_matches_cpu(
        [d0, d1](const std::vector<Tensor>& in) { return transpose(in[0], d0, d1); },
        {leaf_f32(c.shape, seed++)}, tol::exact, tol::exact, what);
    expect_cuda_matches_cpu(
        [d0, d1](const std::vector<Tensor>& in) { return transpose(in[0], d0, d1); },
        {random_ids(c.shape, 1000, seed++)}, tol::exact, tol::exact, what + " i32");
  }
}

TEST(CudaSlice, MatchesCpuExactly) {
  MOE_SKIP_WITHOUT_CUDA();
  struct Case {
    Shape shape;
    int dim;
    int64_t start, end;
  };
  const Case cases[] = {{{1}, 0, 0, 1},          {{7, 13, 5}, 1, 2, 9},  {{7, 13, 5}, 0, 3, 7},
                        {{7, 13, 5}, -1, 1, 4},   {{7, 13, 5}, 1, 3, 3},  {{7, 13, 5}, 2, 0, 5},
                        {{3, 1031, 2}, 1, 100, 1000}, {{65, 3}, 0, 64, 65}};
  uint64_t seed = 70;
  for (const Case& c : cases) {
    const int dim = c.dim;
    const int64_t start = c.start, end = c.end;
    const std::string what = "slice" + shape_str(c.shape) + " dim " + std::to_string(dim) + " [" +
                             std::to_string(start) + ", " + std::to_string(end) + ")";
    auto f = [dim, start, end](const std::vector<Tensor>& in) {
      return slice(in[0], dim, start, end);
    };
    expect_cuda_matches_cpu(f, {leaf_f32(c.shape, seed++)}, tol::exact, tol::exact, what);
    expect_cuda_matches_cpu(f, {random_ids(c.shape, 1000, seed++)}, tol::exact, tol::exact,
                            what + " i32");
  }
}

TEST(CudaConcat, MatchesCpuExactly) {
  MOE_SKIP_WITHOUT_CUDA();
  uint64_t seed = 90;
  // along each dim of (3, *, 5)-like shapes, with sizes 1, 7, 13, and a zero-size piece
  for (int dim : {0, 1, 2, -1}) {
    const int d = dim < 0 ? dim + 3 : dim;
    std::vector<Tensor> xs;
    for (int64_t size : {int64_t{1}, int64_t{7}, int64_t{0}, int64_t{13}}) {
      Shape s = {3, 4, 5};
      s[d] = size;
      xs.push_back(leaf_f32(s, seed++));
    }
    auto f = [dim](const std::vector<Tensor>& in) { return concat(in, dim); };
    expect_cuda_matches_cpu(f, xs, tol::exact, tol::exact, "concat dim " + std::to_string(dim));
  }
  // wide pieces (> 1000 per row), one of which needs no gradient
  Tensor a = leaf_f32({3, 1031}, seed++), b = random_f32({3, 65}, seed++),
         c = leaf_f32({3, 2}, seed++);
  expect_cuda_matches_cpu([](const std::vector<Tensor>& in) { return concat(in, 1); }, {a, b, c},
                          tol::exact, tol::exact, "concat mixed requires-grad");
  // the same tensor twice: its gradient is the sum of both slices
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, 0); }, {a}, tol::exact,
      tol::exact, "concat same tensor twice");
  // i32 pieces (token ids)
  expect_cuda_matches_cpu(
      [](const std::vector<Tensor>& in) { return concat(in, 1); },
      {random_ids({2, 3}, 50, seed++), random_ids({2, 7}, 50, seed++)}, tol::exact, tol::exact,
      "concat i32");
  // pieces on two devices are an error
  EXPECT_THROW(concat({random_f32({2, 3}, seed).to(cuda()), random_f32({2, 3}, seed)}, 0), Error);
}
