// Tests for ops/embedding: the gather against naive indexing, the scatter-add gradient by
// central differences in f64 with repeated ids, an explicit repeated-id sum, bitwise determinism
// of the backward across thread counts, the tied use (embedding + logits through the same table),
// and the out-of-range id error with its position, V and HINT.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "gradcheck.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"

using namespace moe;
using namespace moe::testing;

namespace {

Tensor embed_of(const std::vector<Tensor>& in) { return embedding(in[0], in[1]); }

Tensor random_ids(const Shape& shape, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> v(shape_numel(shape));
  for (int32_t& id : v) id = static_cast<int32_t>(rng.below(V));
  return Tensor::from_i32(v, shape);
}

}  // namespace

TEST(Embedding, ForwardMatchesNaive) {
  const int64_t B = 2, T = 3, V = 5, C = 7;
  Tensor ids = Tensor::from_i32({4, 0, 4, 1, 2, 3}, {B, T});
  Tensor table = random_f64({V, C}, 1);
  Tensor y = embedding(ids, table);
  ASSERT_EQ(y.shape(), (Shape{B, T, C}));
  std::vector<int32_t> iv = ids.to_i32_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) ASSERT_EQ(y.at({b, t, c}), table.at({iv[b * T + t], c}));
  // f32 too, and 1-D ids
  Tensor y32 = embedding(Tensor::from_i32({2}, {1}), table.to(DType::F32));
  EXPECT_EQ(y32.shape(), (Shape{1, C}));
  EXPECT_FLOAT_EQ(static_cast<float>(y32.at({0, 3})), static_cast<float>(table.at({2, 3})));
}

TEST(Embedding, GradCheckWithRepeatedIds) {
  // ids repeat (3 appears three times, 0 twice) and one row (2) is never used: its gradient is 0.
  expect_gradcheck(embed_of, {Tensor::from_i32({3, 0, 3, 1, 3, 0}, {2, 3}),
                              param_f64({5, 7}, 2)});
  expect_gradcheck(embed_of, {Tensor::from_i32({0}, {1, 1}), param_f64({1, 1}, 3)});
  expect_gradcheck(embed_of, {random_ids({3, 5}, 13, 4), param_f64({13, 3}, 5)});
}

TEST(Embedding, RepeatedIdsAccumulate) {
  // All four tokens are id 1: dtable[1] must be the sum of the four output gradients.
  Tensor table = param_f64({3, 2}, 6);
  Tensor dout = Tensor::from_f64({1, 2, 10, 20, 100, 200, 1000, 2000}, {2, 2, 2});
  backward(embedding(Tensor::from_i32({1, 1, 1, 1}, {2, 2}), table), dout);
  EXPECT_EQ(table.grad().to_f64_vector(), (std::vector<double>{0, 0, 1111, 2222, 0, 0}));
}

TEST(Embedding, BackwardBitwiseIdenticalForAnyThreadCount) {
  // Many repeated ids in f32 (where summation order changes the bits): 1, 2 and 3 threads split
  // the columns differently but each element is summed in token order.
  const int64_t V = 50, C = 96;
  Tensor ids = random_ids({16, 64}, static_cast<int>(V), 7);
  Tensor dout = random_f64({16, 64, C}, 8).to(DType::F32);
  const int saved = num_threads();
  std::vector<std::vector<float>> grads;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    Tensor table = random_f64({V, C}, 9).to(DType::F32);
    table.set_requires_grad(true);
    backward(embedding(ids, table), dout);
    grads.push_back(table.grad().to_f32_vector());
  }
  set_num_threads(saved);
  for (size_t i = 1; i < grads.size(); ++i)
    EXPECT_EQ(0, std::memcmp(grads[i].data(), grads[0].data(), V * C * sizeof(float))) << i;
}

TEST(Embedding, TiedWithLogitsAccumulates) {
  // SPEC §2: the same table embeds the input and produces the logits (h @ table^T); its gradient
  // is the sum of both uses.
  auto f = [](const std::vector<Tensor>& in) {
    Tensor h = embedding(in[0], in[1]);  // (B, T, C)
    return linear(h, in[1], Tensor());   // (B, T, V)
  };
  expect_gradcheck(f, {Tensor::from_i32({2, 0, 2}, {1, 3}), param_f64({4, 3}, 10)});
}

TEST(Embedding, OutOfRangeIdNamesIdPositionAndVocab) {
  Tensor table = Tensor::zeros({5, 3});
  for (int32_t bad : {5, -1, 70000}) {
    Tensor ids = Tensor::from_i32({0, 1, 2, 3, bad, 4}, {2, 3});
    try {
      embedding(ids, table);
      ADD_FAILURE() << "expected an error for id " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("token id " + std::to_string(bad)), std::string::npos) << msg;
      EXPECT_NE(msg.find("(b, t) = (1, 1)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("V=5"), std::string::npos) << msg;
      EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
    }
  }
}

TEST(Embedding, WrongTypesAreErrors) {
  Tensor table = Tensor::zeros({5, 3});
  EXPECT_THROW(embedding(Tensor::zeros({2, 3}), table), Error);                     // float ids
  EXPECT_THROW(embedding(Tensor::from_i32({0}, {1}), Tensor::zeros({5})), Error);   // 1-D table
  EXPECT_THROW(embedding(Tensor::from_i32({0}, {1}), Tensor::from_i32({0}, {1, 1})), Error);
}
