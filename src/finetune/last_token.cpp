// last_token.cpp — gather_rows and the last_token wrapper (see last_token.h). SPEC §7
// (classification head input). No kernels of its own: the gather is the embedding op's.
#include "finetune/last_token.h"

#include <vector>

#include "ops/embedding.h"
#include "ops/shape.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// Tensor wrappers

Tensor gather_rows(const Tensor& x_in, const Tensor& index_in) {
  CHECK(x_in.defined() && x_in.dim() == 3, "gather_rows: x must be (B, T, C), got ",
        x_in.defined() ? x_in.desc() : std::string("an undefined tensor"));
  CHECK(x_in.is_floating(), "gather_rows: x must be f32 or f64, got ", x_in.desc());
  const int64_t B = x_in.size(0), Tn = x_in.size(1), C = x_in.size(2);
  CHECK(index_in.defined() && index_in.dtype() == DType::I32,
        "gather_rows: index must be an i32 tensor");
  check_shape(index_in, {B}, "gather_rows: index");
  // The index is read on the host (range check, flat row numbers). Callers keep it there (the
  // fine-tuning batch's lengths are host data); one on a device is copied back, which waits.
  const std::vector<int32_t> ip = index_in.to_i32_vector();
  std::vector<int32_t> flat(B);  // (B,) row b*T + index[b] of x seen as (B*T, C)
  for (int64_t b = 0; b < B; ++b) {
    CHECK(ip[b] >= 0 && ip[b] < Tn, "gather_rows: index[", b, "] = ", ip[b],
          " is outside [0, ", Tn, ") for x ", x_in.desc());
    flat[b] = static_cast<int32_t>(b * Tn + ip[b]);
  }
  // Picking one row per sequence is an embedding lookup into x viewed as a (B*T, C) table, so the
  // embedding op's forward (gather) and backward (scatter-add into zeros) are exactly this op's,
  // on x's device: the flat row numbers go there (a host-to-device copy, no wait for the GPU).
  const Tensor rows = Tensor::from_i32(flat, {B}).to(x_in.device());
  return embedding(rows, reshape(x_in, {B * Tn, C}));  // (B, C)
}

Tensor last_token(const Tensor& hidden, const Tensor& lengths) {
  CHECK(hidden.defined() && hidden.dim() == 3, "last_token: hidden must be (B, T, C)");
  CHECK(lengths.defined() && lengths.dtype() == DType::I32,
        "last_token: lengths must be an i32 tensor");
  const int64_t B = hidden.size(0), Tn = hidden.size(1);
  check_shape(lengths, {B}, "last_token: lengths");
  const std::vector<int32_t> len = lengths.to_i32_vector();  // host data (see last_token.h)
  std::vector<int32_t> idx(B);
  for (int64_t b = 0; b < B; ++b) {
    CHECK(len[b] >= 1 && len[b] <= Tn, "last_token: sequence ", b, " has length ", len[b],
          "; lengths must be in [1, ", Tn, "] (an empty sequence has no last token)");
    idx[b] = len[b] - 1;
  }
  return gather_rows(hidden, Tensor::from_i32(idx, {B}));
}

}  // namespace moe
