// GradSync, the gradient exchange of data parallelism (src/dist/grad_sync.h; SPEC §4;
// notes/distributed.md "Overlap"): started bucket by bucket from the backward's leaf hook, it
// must give the same gradients as the exchange run after the whole backward, for every transport
// this machine has (cuda-ipc included on a GPU host, where the buckets really run on their own
// stream during the backward).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "dist/dist.h"
#include "dist/grad_sync.h"
#include "dist/transport.h"
#include "mpi_test_util.h"
#include "ops/elementwise.h"

using namespace moe;
using moe::testing::transports_here;

namespace {

constexpr int kParams = 6;
constexpr int64_t kSizes[kParams] = {5, 300, 7, 4096, 1, 33};

// c(k, r)[i] = (r + 1) * (k + 1) + i % 3: parameter k's gradient on rank r, by construction.
std::vector<float> coeff(int k, int r, int64_t n) {
  std::vector<float> c(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) c[i] = static_cast<float>((r + 1) * (k + 1) + i % 3);
  return c;
}

struct Toy {
  std::vector<std::pair<std::string, Tensor>> params;
  std::vector<bool> sharded;
};

// Six leaves; parameter 4 is an expert slice (sharded), the rest are replicated.
Toy make_toy(Device dev) {
  Toy t;
  for (int k = 0; k < kParams; ++k) {
    Tensor p = Tensor::zeros({kSizes[k]}, DType::F32, dev);
    p.set_requires_grad(true);
    t.params.push_back({"p" + std::to_string(k), p});
    t.sharded.push_back(k == 4);
  }
  return t;
}

// L = sum_k sum(p_k * c_k) + sum(p_0 * c_0): parameter 0 is used twice, at the two ends of the
// graph, so its gradient is final only when the backward is almost done; a bucket started before
// that would carry half of it. dL/dp_k = c_k (2 c_0 for p_0).
Tensor toy_loss(const Toy& t, Device dev) {
  const int me = dist().rank;
  Tensor loss = sum(mul(t.params[0].second, Tensor::from_f32(coeff(0, me, kSizes[0]), {kSizes[0]}).to(dev)));
  for (int k = 1; k < kParams; ++k)
    loss = add(loss, sum(mul(t.params[k].second,
                             Tensor::from_f32(coeff(k, me, kSizes[k]), {kSizes[k]}).to(dev))));
  return add(loss, sum(mul(t.params[0].second,
                           Tensor::from_f32(coeff(0, me, kSizes[0]), {kSizes[0]}).to(dev))));
}

}  // namespace

TEST(GradSync, OverlappedBucketsEqualTheExchangeAfterBackward) {
  const int W = dist().world, me = dist().rank;
  const double expert_scale = 0.5;
  for (const auto& [name, dev] : transports_here()) {
    std::unique_ptr<Transport> tr = make_transport(name, dev);
    for (size_t bucket_bytes : {size_t(16), size_t(1300), size_t(1) << 20}) {
      // The reference: the whole backward first, then the exchange.
      Toy ref = make_toy(dev);
      GradSync ref_sync(ref.params, *tr, W, ref.sharded, expert_scale, bucket_bytes);
      backward(toy_loss(ref, dev));
      ref_sync.sync();
      // Overlapped: each bucket starts from the leaf hook.
      Toy ov = make_toy(dev);
      GradSync ov_sync(ov.params, *tr, W, ov.sharded, expert_scale, bucket_bytes);
      ov_sync.backward(toy_loss(ov, dev));
      // Every bucket started exactly once, in bucket order (the order every rank must share);
      // one rank exchanges nothing.
      std::vector<int> expect_order;
      for (int b = 0; W > 1 && b < ov_sync.num_buckets(); ++b) expect_order.push_back(b);
      EXPECT_EQ(ov_sync.last_start_order(), expect_order) << name << " buckets of " << bucket_bytes;
      if (W > 1 && ov_sync.num_buckets() > 1) {
        EXPECT_GT(ov_sync.started_during_backward(), 0)
            << name << ": no bucket started before the backward ended (nothing can overlap)";
      }
      for (int k = 0; k < kParams; ++k) {
        const std::vector<float> got = ov.params[k].second.grad().to_f32_vector();
        const std::vector<float> want = ref.params[k].second.grad().to_f32_vector();
        ASSERT_EQ(got, want) << name << ", parameter " << k << ", buckets of " << bucket_bytes;
        // And the values by construction: the mean over ranks of c (2c for p_0), or this rank's
        // own c times the expert scale for the sharded one.
        for (int64_t i = 0; i < kSizes[k]; ++i) {
          double v = 0;
          if (k == 4) {
            v = expert_scale * coeff(k, me, kSizes[k])[i];
          } else {
            for (int r = 0; r < W; ++r) v += coeff(k, r, kSizes[k])[i];
            v = v / W * (k == 0 ? 2 : 1);
          }
          ASSERT_NEAR(got[i], v, 1e-5 * std::abs(v)) << name << ", parameter " << k << "[" << i << "]";
        }
      }
    }
  }
}
