// comm_ops.cpp — see comm_ops.h.
#include "dist/comm_ops.h"

#include <chrono>

#include "core/autograd.h"
#include "core/device.h"

namespace moe {

static Tensor exchange(const Tensor& x_in, Transport& t) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (t.asynchronous()) {  // queued on the device; the transport times it there
    t.all_to_all(x, out);
    return out;
  }
  cuda_synchronize();  // the compute before is not the exchange's (comm_stats)
  const auto t0 = std::chrono::steady_clock::now();
  t.all_to_all(x, out);
  cuda_synchronize();
  CommStats& st = comm_stats();
  st.a2a_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  st.a2a_bytes += static_cast<double>(x.numel()) * dtype_size(x.dtype());
  ++st.a2a_calls;
  return out;
}

Tensor all_to_all(const Tensor& x, Transport& t) {
  Tensor out = exchange(x, t);
  // forward: out = A2A(x)  =>  dx = A2A(dout) (the exchange is its own inverse)
  Transport* tp = &t;
  return record(out, "all_to_all", {x}, [tp](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{exchange(g, *tp)};
  });
}

}  // namespace moe
