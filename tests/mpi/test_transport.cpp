// The transports of src/dist against answers known by construction (notes/distributed.md "Tests"; "All-to-all: each
// transport gives a known answer at W = 1, 2, 4"), and the all_to_all op's gradient.
// Run under mpirun by `make test`; on a GPU machine the device transports run too.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "dist/comm_ops.h"
#include "dist/dist.h"
#include "dist/transport.h"
#include "mpi_test_util.h"

using namespace moe;
using moe::testing::transports_here;

namespace {

// send[r][i] = 1000 * me + 10 * r + i / 7: every element names its sender, destination and place.
Tensor known_send(int64_t per_rank) {
  const int W = dist().world, me = dist().rank;
  std::vector<float> v(static_cast<size_t>(W * per_rank));
  for (int r = 0; r < W; ++r)
    for (int64_t i = 0; i < per_rank; ++i)
      v[r * per_rank + i] = static_cast<float>(1000 * me + 10 * r) + static_cast<float>(i % 7) / 8.0f;
  return Tensor::from_f32(v, {W, per_rank});
}

// After the exchange, chunk q holds what rank q sent to me.
void expect_known_recv(const Tensor& recv, int64_t per_rank) {
  const int W = dist().world, me = dist().rank;
  const std::vector<float> got = recv.to_f32_vector();
  for (int q = 0; q < W; ++q)
    for (int64_t i = 0; i < per_rank; ++i)
      ASSERT_EQ(got[q * per_rank + i],
                static_cast<float>(1000 * q + 10 * me) + static_cast<float>(i % 7) / 8.0f)
          << "rank " << me << ", chunk from rank " << q << ", element " << i;
}

}  // namespace

TEST(Transport, AllToAllKnownAnswer) {
  for (const auto& [name, dev] : transports_here()) {
    std::unique_ptr<Transport> t = make_transport(name, dev);
    for (int64_t per_rank : {1, 7, 1000, 65537}) {
      Tensor send = known_send(per_rank).to(dev);
      Tensor recv = Tensor::empty(send.shape(), DType::F32, dev);
      t->all_to_all(send, recv);
      expect_known_recv(recv, per_rank);
    }
  }
}

TEST(Transport, AllReduceKnownAnswer) {
  const int W = dist().world, me = dist().rank;
  for (const auto& [name, dev] : transports_here()) {
    std::unique_ptr<Transport> t = make_transport(name, dev);
    for (int64_t n : {1, 5, 4099, 100003}) {
      std::vector<float> v(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((me + 1) * (i % 5));
      Tensor x = Tensor::from_f32(v, {n}).to(dev);
      t->all_reduce(x, 1.0 / W);
      const std::vector<float> got = x.to_f32_vector();
      // mean over ranks of (q + 1) * (i % 5) = (W + 1) / 2 * (i % 5)
      for (int64_t i = 0; i < n; ++i)
        ASSERT_FLOAT_EQ(got[i], static_cast<float>((W + 1) / 2.0 * (i % 5))) << name << " " << i;
    }
  }
}

TEST(Transport, AllToAllGradientGoesBack) {
  const int W = dist().world, me = dist().rank;
  for (const auto& [name, dev] : transports_here()) {
    std::unique_ptr<Transport> t = make_transport(name, dev);
    Tensor x = known_send(3).to(dev);
    x.set_requires_grad(true);
    Tensor y = all_to_all(x, *t);
    // d(sum(y * s))/dy = s, with s[q] = q + 100 * me on rank me; the gradient of x's chunk r on
    // rank me is s of rank r at slot me: me + 100 * r.
    std::vector<float> s(static_cast<size_t>(W * 3));
    for (int q = 0; q < W; ++q)
      for (int i = 0; i < 3; ++i) s[q * 3 + i] = static_cast<float>(q + 100 * me);
    backward(y, Tensor::from_f32(s, {W, 3}).to(dev));
    const std::vector<float> g = x.grad().to_f32_vector();
    for (int r = 0; r < W; ++r)
      for (int i = 0; i < 3; ++i) ASSERT_EQ(g[r * 3 + i], static_cast<float>(me + 100 * r)) << name;
  }
}

TEST(Transport, BadChoicesAreClearErrors) {
  EXPECT_THROW(make_transport("carrier-pigeon", cpu()), Error);
  EXPECT_THROW(make_transport("cuda-ipc", cpu()), Error);
  EXPECT_EQ(make_transport("auto", cpu())->name(), "host");
}
