// embedding.cpp — CPU forward/backward pair for the token embedding (see embedding.h), and the
// device dispatch of its Tensor wrapper (CUDA twins: cuda/ops/embedding.cu).
#include "ops/embedding.h"

#include <algorithm>
#include <sstream>

#include "core/autograd.h"
#include "core/parallel.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// raw kernels

template <typename T>
void embedding_forward(T* out, const int32_t* ids, const T* table, int64_t N, int64_t V,
                       int64_t C) {
  (void)V;  // ids were checked against V by the caller
  // out[n, :] = table[ids[n], :]   threads own disjoint output rows
  parallel_for(N, [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const T* row = table + static_cast<int64_t>(ids[n]) * C;
      std::copy(row, row + C, out + n * C);
    }
  }, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, C)));
}

template <typename T>
void embedding_backward(T* dtable, const T* dout, const int32_t* ids, int64_t N, int64_t V,
                        int64_t C) {
  // forward: out[n, :] = table[ids[n], :]  =>  dtable[v, :] = sum_{n : ids[n] == v} dout[n, :]
  // Threads own disjoint column ranges [lo, hi) of dtable and visit tokens in order n = 0..N-1,
  // so repeated ids accumulate in the same order for any thread count (no atomics, no races).
  parallel_for(C, [&](int64_t lo, int64_t hi) {
    for (int64_t v = 0; v < V; ++v) std::fill(dtable + v * C + lo, dtable + v * C + hi, T(0));
    for (int64_t n = 0; n < N; ++n) {
      T* dst = dtable + static_cast<int64_t>(ids[n]) * C;
      const T* src = dout + n * C;
      for (int64_t c = lo; c < hi; ++c) dst[c] += src[c];
    }
  }, (N + V) * C < (1 << 16) ? C : 16);
}

template void embedding_forward<float>(float*, const int32_t*, const float*, int64_t, int64_t,
                                       int64_t);
template void embedding_forward<double>(double*, const int32_t*, const double*, int64_t, int64_t,
                                        int64_t);
template void embedding_backward<float>(float*, const float*, const int32_t*, int64_t, int64_t,
                                        int64_t);
template void embedding_backward<double>(double*, const double*, const int32_t*, int64_t,
                                         int64_t, int64_t);

// ---------------------------------------------------------------------------------------------
// Tensor wrapper

// "(b, t) = (1, 5)" for (B, T) ids, "index (i, j, k)" for other shapes: where a bad id sits.
static std::string position_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  std::ostringstream os;
  os << (shape.size() == 2 ? "(b, t) = (" : "index (");
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << ")";
  return os.str();
}

static void check_ids(const Tensor& ids, int64_t V) {
  const int32_t* p = ids.data<int32_t>();
  for (int64_t n = 0; n < ids.numel(); ++n) {
    if (p[n] >= 0 && p[n] < V) continue;
    CHECK(false, "embedding: token id ", p[n], " at ", position_str(ids.shape(), n), " of ids ",
          shape_str(ids.shape()), " is outside the vocabulary [0, ", V, ") of the embedding "
          "table (V=", V, "). HINT: the tokenizer and the model disagree on the vocabulary: "
          "check that the BPE files / tokenized data match the model preset or the checkpoint "
          "being loaded (its vocab size)");
  }
}

Tensor embedding(const Tensor& ids_in, const Tensor& table_in) {
  CHECK(ids_in.defined() && ids_in.dtype() == DType::I32, "embedding: ids must be an i32 tensor "
        "of token ids (B, T), got ", ids_in.desc());
  CHECK(table_in.defined() && table_in.is_floating() && table_in.dim() == 2,
        "embedding: table must be (V, C) f32 or f64, got ", table_in.desc());
  check_same_device(table_in.device(), {&ids_in}, "embedding");
  const int64_t V = table_in.size(0), C = table_in.size(1), N = ids_in.numel();
  Tensor ids = ids_in.contiguous(), table = table_in.contiguous();
  if (ids.device().is_cpu()) check_ids(ids, V);  // on the GPU: NaN rows instead (embedding.h)
  Shape out_shape = ids.shape();
  out_shape.push_back(C);  // (B, T, C)
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  dispatch_op(table, "embedding", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const int32_t* ip = ids.data<int32_t>(true);
    const T* tp = table.data<T>(true);
    if constexpr (is_cuda(dev)) embedding_forward_cuda<T>(o, ip, tp, N, V, C);
    else embedding_forward<T>(o, ip, tp, N, V, C);
  });
  Tensor ids_saved = ids.detach();
  return record(out, "embedding", {ids_in, table_in},
                [ids_saved, N, V, C](const Tensor& g_in, const std::vector<bool>& needs) {
    std::vector<Tensor> grads(2);  // slot 0 (ids) never gets a gradient
    if (!needs[1]) return grads;
    Tensor g = g_in.contiguous();  // (B, T, C)
    Tensor dtable = Tensor::empty({V, C}, g.dtype(), g.device());
    dispatch_op(g, "embedding backward", [&](auto z, auto dev) {
      using T = decltype(z);
      T* d = dtable.data<T>(true);
      const T* gp = g.data<T>(true);
      const int32_t* ip = ids_saved.data<int32_t>(true);
      if constexpr (is_cuda(dev)) embedding_backward_cuda<T>(d, gp, ip, N, V, C);
      else embedding_backward<T>(d, gp, ip, N, V, C);
    });
    grads[1] = dtable;
    return grads;
  });
}

}  // namespace moe
