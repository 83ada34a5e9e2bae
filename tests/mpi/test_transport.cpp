// The transports of src/dist against answers known by construction (notes/distributed.md "Tests"; "All-to-all: each
// transport gives a known answer at W = 1, 2, 4"), and the all_to_all op's gradient.
// Run under mpirun by `make test`; on a GPU machine the device transports run too.
#include <gtest/gtest.h>

#include <cmath>
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

// The standard gradient check, in double precision and across ranks: L = sum over ranks of
// sum(all_to_all(x) * s); each element of each rank's x is moved by +-h in turn (every rank runs
// the same loop, since the exchange is collective) and the central difference of the global L
// must equal the gradient the tape gave that element.
TEST(Transport, AllToAllGradcheckF64) {
  const int W = dist().world, me = dist().rank;
  std::unique_ptr<Transport> t = make_transport("host", cpu());
  const int per = 3;
  std::vector<double> xv(static_cast<size_t>(W * per)), sv(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    xv[i] = 0.25 * static_cast<double>(i) - 0.5 * me;
    sv[i] = std::sin(1.0 + static_cast<double>(i) + 7.0 * me);
  }
  const Tensor s = Tensor::from_f64(sv, {W, per});
  auto global_loss = [&](const std::vector<double>& x) {
    const Tensor y = all_to_all(Tensor::from_f64(x, {W, per}), *t);
    double local = 0.0;
    const std::vector<double> yv = y.to_f64_vector();
    for (size_t i = 0; i < yv.size(); ++i) local += yv[i] * sv[i];
    return dist_sum(local);
  };
  Tensor x = Tensor::from_f64(xv, {W, per});
  x.set_requires_grad(true);
  backward(all_to_all(x, *t), s);
  const std::vector<double> g = x.grad().to_f64_vector();
  const double h = 1e-6;
  for (int q = 0; q < W; ++q)
    for (size_t k = 0; k < xv.size(); ++k) {
      std::vector<double> plus = xv, minus = xv;
      if (me == q) {
        plus[k] += h;
        minus[k] -= h;
      }
      const double numeric = (global_loss(plus) - global_loss(minus)) / (2 * h);
      if (me == q) {
        EXPECT_NEAR(g[k], numeric, 1e-7) << "element " << k << " of rank " << q;
      }
    }
}

TEST(Transport, BadChoicesAreClearErrors) {
  EXPECT_THROW(make_transport("carrier-pigeon", cpu()), Error);
  EXPECT_THROW(make_transport("cuda-ipc", cpu()), Error);
  EXPECT_EQ(make_transport("auto", cpu())->name(), "host");
}
