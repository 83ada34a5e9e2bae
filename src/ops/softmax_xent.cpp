// softmax_xent.cpp — CPU forward/backward pair for the fused softmax + cross-entropy loss, and
// the device dispatch of its Tensor wrappers (CUDA twins: cuda/ops/softmax_xent.cu).
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

// row_nll (N,) in double, lse (N,): the per-row work shared by the loss and cross_entropy_rows.
template <typename T>
static void xent_rows(double* row_nll, T* lse, const T* logits, const int32_t* targets,
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

// The loss is the sum of the row NLLs taken serially in row order, in double: the same bits for
// any thread count.
template <typename T>
void softmax_xent_forward(T* loss, int32_t* count, T* lse, const T* logits,
                          const int32_t* targets, int ignore_index, int64_t N, int64_t V) {
  std::vector<double> row_nll(N);  // (N,)
  xent_rows<T>(row_nll.data(), lse, logits, targets, ignore_index, N, V);
  double total = 0.0;
  int32_t kept = 0;
  for (int64_t n = 0; n < N; ++n) {
    total += row_nll[n];
    kept += targets[n] != ignore_index ? 1 : 0;
  }
  loss[0] = static_cast<T>(kept > 0 ? total / static_cast<double>(kept) : 0.0);
  count[0] = kept;
}

template <typename T>
void cross_entropy_rows_forward(T* nll, const T* logits, const int32_t* targets,
                                int ignore_index, int64_t N, int64_t V) {
  std::vector<double> row_nll(N);  // (N,)
  std::vector<T> lse(N);           // (N,), unused here
  xent_rows<T>(row_nll.data(), lse.data(), logits, targets, ignore_index, N, V);
  for (int64_t n = 0; n < N; ++n) nll[n] = static_cast<T>(row_nll[n]);
}

// forward: loss = (1/count) sum_n (lse_n - l[n, t_n]),  lse_n = log sum_v exp(l[n, v])
// backward: d lse_n / d l[n, v] = softmax_v, d l[n, t_n] / d l[n, v] = [v == t_n], so
//           dlogits[n, v] = (exp(l[n, v] - lse_n) - [v == t_n]) * dloss / count
template <typename T>
void softmax_xent_backward(T* dlogits, const T* dloss, const int32_t* count, const T* logits,
                           const T* lse, const int32_t* targets, int ignore_index, int64_t N,
                           int64_t V) {
  const int32_t kept = count[0];
  const T dscale =
      static_cast<T>(kept > 0 ? static_cast<double>(dloss[0]) / static_cast<double>(kept) : 0.0);
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

#define MOE_INSTANTIATE(T)                                                                   \
  template void softmax_xent_forward<T>(T*, int32_t*, T*, const T*, const int32_t*, int,     \
                                        int64_t, int64_t);                                   \
  template void cross_entropy_rows_forward<T>(T*, const T*, const int32_t*, int, int64_t,    \
                                              int64_t);                                      \
  template void softmax_xent_backward<T>(T*, const T*, const int32_t*, const T*, const T*,   \
                                         const int32_t*, int, int64_t, int64_t);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

// Shape, dtype and device checks shared by both entry points, and the target range on the CPU.
// On the GPU the range is not checked here: reading the targets would stall the host until the
// GPU catches up, so the kernels write NaN for such a row instead (softmax_xent.h).
static void check_xent_args(const Tensor& logits, const Tensor& targets, int ignore_index,
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
  check_same_device(logits.device(), {&targets}, op);
  CHECK(N < (int64_t{1} << 31), op, ": ", N, " rows do not fit the i32 row count");
  if (!targets.device().is_cpu()) return;
  std::vector<int32_t> t = targets.to_i32_vector();
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == ignore_index) continue;
    CHECK(t[n] >= 0 && t[n] < V, op, ": target ", t[n], " at row ", n, " is outside [0, ", V,
          ") and is not ignore_index (", ignore_index, "). HINT: the vocabulary of the data "
          "and of the model must agree");
  }
}

Tensor softmax_cross_entropy(const Tensor& logits_in, const Tensor& targets_in,
                             int ignore_index) {
  check_xent_args(logits_in, targets_in, ignore_index, "softmax_cross_entropy");
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  const Device dev = logits_in.device();
  Tensor logits = logits_in.contiguous();                    // (N, V)
  Tensor targets = targets_in.contiguous().detach();         // (N,) i32
  Tensor lse = Tensor::empty({N}, logits.dtype(), dev);      // (N,)
  Tensor loss = Tensor::empty({}, logits.dtype(), dev);      // ()
  Tensor count = Tensor::empty({}, DType::I32, dev);         // () kept rows, read by backward
  dispatch_op(logits, "softmax_cross_entropy", [&](auto z, auto on) {
    using T = decltype(z);
    T *lp = loss.data<T>(true), *lsp = lse.data<T>(true);
    int32_t* cp = count.data<int32_t>(true);
    const T* xp = logits.data<T>(true);
    const int32_t* tp = targets.data<int32_t>(true);
    if constexpr (is_cuda(on))
      softmax_xent_forward_cuda<T>(lp, cp, lsp, xp, tp, ignore_index, N, V);
    else softmax_xent_forward<T>(lp, cp, lsp, xp, tp, ignore_index, N, V);
  });

  Tensor ls = logits.detach();  // saved: logits (N, V), targets (N,), lse (N,), count ()
  return record(loss, "softmax_cross_entropy", {logits_in, targets_in},
                [ls, targets, lse, count, ignore_index, N, V](const Tensor& g_in,
                                                               const std::vector<bool>&) {
    Tensor g = g_in.contiguous();                                     // () dloss
    Tensor dlogits = Tensor::empty({N, V}, ls.dtype(), ls.device());  // (N, V)
    dispatch_op(g, "softmax_cross_entropy backward", [&](auto z, auto on) {
      using T = decltype(z);
      T* dp = dlogits.data<T>(true);
      const T *gp = g.data<T>(true), *xp = ls.data<T>(true), *lsp = lse.data<T>(true);
      const int32_t *cp = count.data<int32_t>(true), *tp = targets.data<int32_t>(true);
      if constexpr (is_cuda(on))
        softmax_xent_backward_cuda<T>(dp, gp, cp, xp, lsp, tp, ignore_index, N, V);
      else softmax_xent_backward<T>(dp, gp, cp, xp, lsp, tp, ignore_index, N, V);
    });
    return std::vector<Tensor>{dlogits, Tensor()};  // targets: ids, never a gradient
  });
}

Tensor cross_entropy_rows(const Tensor& logits_in, const Tensor& targets_in, int ignore_index) {
  check_xent_args(logits_in, targets_in, ignore_index, "cross_entropy_rows");
  const int64_t N = logits_in.size(0), V = logits_in.size(1);
  Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
  Tensor out = Tensor::empty({N}, logits.dtype(), logits.device());  // (N,)
  dispatch_op(logits, "cross_entropy_rows", [&](auto z, auto on) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* xp = logits.data<T>(true);
    const int32_t* tp = targets.data<int32_t>(true);
    if constexpr (is_cuda(on)) cross_entropy_rows_forward_cuda<T>(o, xp, tp, ignore_index, N, V);
    else cross_entropy_rows_forward<T>(o, xp, tp, ignore_index, N, V);
  });
  return out;  // no record(): evaluation only
}

}  // namespace moe
