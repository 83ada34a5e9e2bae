// softmax_xent.cpp — CPU forward/backward pair for the fused softmax + cross-entropy loss.
//
// Parallel plan: rows are independent, so forward and backward run parallel over rows. The loss
// is the sum of the per-row NLLs taken serially in row order, in double — the same bits for any
// thread count. Targets are validated before any parallel loop (a CHECK must never throw from a
// worker thread).
#include "ops/softmax_xent.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/parallel.h"
#include "ops/activation.h"  // exp_fast

namespace moe {

// Rows per parallel chunk: enough work (~16k logits) to be worth waking a thread.
static int64_t row_grain(int64_t V) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1));
}

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void softmax_xent_forward(double* row_nll, T* lse, const T* logits, const int32_t* targets,
                          int ignore_index, int64_t N, int64_t V) {
  parallel_for(N, [&](int64_t n0, int64_t n1) {
    std::vector<T> e(V);  // one row of exp(l - max) per thread: the only probabilities ever held
    for (int64_t n = n0; n < n1; ++n) {
      const T* l = logits + n * V;  // (V,)
      T mx = l[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, l[v]);
      for (int64_t v = 0; v < V; ++v) e[v] = exp_fast(l[v] - mx);  // in (0, 1]; vectorisable
      double s = 0.0;
      for (int64_t v = 0; v < V; ++v) s += static_cast<double>(e[v]);
      const double row_lse = static_cast<double>(mx) + std::log(s);
      lse[n] = static_cast<T>(row_lse);
      const int32_t t = targets[n];
      row_nll[n] = t == ignore_index ? 0.0 : row_lse - static_cast<double>(l[t]);
    }
  }, row_grain(V));
}

// forward: loss = (1/count) sum_n (lse_n - l[n, t_n]),  lse_n = log sum_v exp(l[n, v])
// backward: d lse_n / d l[n, v] = softmax_v, d l[n, t_n] / d l[n, v] = [v == t_n], so
//           dlogits[n, v] = (exp(l[n, v] - lse_n) - [v == t_n]) * dloss / count
template <typename T>
void softmax_xent_backward(T* dlogits, T dscale, const T* logits, const T* lse,
                           const int32_t* targets, int ignore_index, int64_t N, int64_t V) {
  parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      T* d = dlogits + n * V;       // (V,)
      const T* l = logits + n * V;  // (V,)
      const int32_t t = targets[n];
      if (t == ignore_index) {
        std::fill(d, d + V, T(0));
        continue;
      }
      const T ln = lse[n];
      for (int64_t v = 0; v < V; ++v) d[v] = exp_fast(l[v] - ln) * dscale;
      d[t] -= dscale;
    }
  }, row_grain(V));
}

template void softmax_xent_forward<float>(double*, float*, const float*, const int32_t*, int,
                                          int64_t, int64_t);
template void softmax_xent_forward<double>(double*, double*, const double*, const int32_t*, int,
                                           int64_t, int64_t);
template void softmax_xent_backward<float>(float*, float, const float*, const float*,
                                           const int32_t*, int, int64_t, int64_t);
template void softmax_xent_backward<double>(double*, double, const double*, const double*,
                                            const int32_t*, int, int64_t, int64_t);

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

// Shape, dtype and range checks shared by both entry points; returns the number of kept rows.
static int64_t check_xent_args(const Tensor& logits, const Tensor& targets, int ignore_index,
                               const char* op) {
  CHECK(logits.dim() == 2, op, ": logits must be (N, V), got ", shape_str(logits.shape()),
        ". HINT: view (B, T, V) logits as (B*T, V) and targets as (B*T,)");
  CHECK(logits.is_floating(), op, ": logits must be f32 or f64, got ", logits.desc());
  const int64_t N = logits.size(0), V = logits.size(1);
  CHECK(V > 0, op, ": logits have an empty vocabulary axis, ", shape_str(logits.shape()));
  CHECK(targets.shape() == Shape{N}, op, ": logits are ", shape_str(logits.shape()),
        " so targets must be (", N, ",), got ", shape_str(targets.shape()));
  CHECK(targets.dtype() == DType::I32, op, ": targets must be i32 token ids, got ",
        targets.desc());
  CHECK(!targets.requires_grad(), op, ": targets are ids and cannot require grad");
  std::vector<int32_t> t = targets.to_i32_vector();
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore_index) continue;
    CHECK(t[n] >= 0 && t[n] < V, op, ": target ", t[n], " at row ", n, " is outside [0, ", V,
          ") and is not ignore_index (", ignore_index, "). HINT: the vocabulary of the data "
          "and of the model must agree");
    ++count;
  }
  return count;
}

Tensor softmax_cross_entropy(const Tensor& logits_in, const Tensor& targets_in,
                             int ignore_index) {
  const int64_t count = check_xent_args(logits_in, targets_in, ignore_index,
                                        "softmax_cross_entropy");
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  Tensor logits = logits_in.contiguous();               // (N, V)
  Tensor targets = targets_in.contiguous().detach();    // (N,) i32
  Tensor lse = Tensor::empty({N}, logits.dtype());      // (N,)
  Tensor loss = Tensor::empty({}, logits.dtype());      // ()
  std::vector<double> row_nll(N);                       // (N,)
  dispatch_floating(logits.dtype(), [&](auto z) {
    using T = decltype(z);
    softmax_xent_forward<T>(row_nll.data(), lse.data<T>(), logits.data<T>(),
                            targets.data<int32_t>(), ignore_index, N, V);
    double total = 0.0;
    for (int64_t n = 0; n < N; ++n) total += row_nll[n];  // row order: deterministic
    loss.data<T>()[0] = static_cast<T>(count > 0 ? total / static_cast<double>(count) : 0.0);
  });

  Tensor ls = logits.detach();  // saved: logits (N, V), targets (N,), lse (N,)
  return record(loss, "softmax_cross_entropy", {logits_in, targets_in},
                [ls, targets, lse, count, ignore_index, N, V](const Tensor& g,
                                                               const std::vector<bool>&) {
    Tensor dlogits = Tensor::empty({N, V}, ls.dtype());  // (N, V)
    const double dscale = count > 0 ? g.item() / static_cast<double>(count) : 0.0;
    dispatch_floating(ls.dtype(), [&](auto z) {
      using T = decltype(z);
      softmax_xent_backward<T>(dlogits.data<T>(), static_cast<T>(dscale), ls.data<T>(),
                               lse.data<T>(), targets.data<int32_t>(), ignore_index, N, V);
    });
    return std::vector<Tensor>{dlogits, Tensor()};  // targets: ids, never a gradient
  });
}

Tensor cross_entropy_rows(const Tensor& logits_in, const Tensor& targets_in, int ignore_index) {
  check_xent_args(logits_in, targets_in, ignore_index, "cross_entropy_rows");
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  Tensor out = Tensor::empty({N}, logits.dtype());  // (N,)
  Tensor lse = Tensor::empty({N}, logits.dtype());  // (N,), unused here
  std::vector<double> row_nll(N);
  dispatch_floating(logits.dtype(), [&](auto z) {
    using T = decltype(z);
    softmax_xent_forward<T>(row_nll.data(), lse.data<T>(), logits.data<T>(),
                            targets.data<int32_t>(), ignore_index, N, V);
    T* o = out.data<T>();
    for (int64_t n = 0; n < N; ++n) o[n] = static_cast<T>(row_nll[n]);
  });
  return out;  // no record(): evaluation only
}

}  // namespace moe
