// tensor_math.cpp — CPU loops of core/tensor_math.h and the device dispatch of its Tensor
// functions (the CUDA kernels are in cuda/core/tensor_math.cu).
#include "core/tensor_math.h"

#include <cstring>
#include <vector>

#include "core/parallel.h"

namespace moe {

template <typename T>
void add_forward(T* out, const T* a, const T* b, int64_t n) {
  parallel_for(n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  }, 1 << 16);
}
template void add_forward<float>(float*, const float*, const float*, int64_t);
template void add_forward<double>(double*, const double*, const double*, int64_t);

// ---------------------------------------------------------------------------------------------

static StridedLayout layout_of(const Tensor& t) {
  CHECK(t.dim() <= kMaxDims, "tensors have at most ", kMaxDims, " dims, got ", t.desc());
  StridedLayout l;
  l.nd = t.dim();
  l.offset = t.offset();
  for (int d = 0; d < l.nd; ++d) {
    l.shape[d] = t.shape()[d];
    l.strides[d] = t.strides()[d];
  }
  return l;
}

// Copy a strided CPU view into a packed buffer, one innermost row at a time.
static void pack_strided_cpu(const Tensor& src, void* dst) {
  const size_t es = dtype_size(src.dtype());
  const char* base = static_cast<const char*>(src.storage()->data);
  char* out = static_cast<char*>(dst);
  const int nd = src.dim();
  if (nd == 0) {
    std::memcpy(out, base + src.offset() * es, es);
    return;
  }
  const int64_t inner = src.shape()[nd - 1], inner_stride = src.strides()[nd - 1];
  const int64_t rows = inner == 0 ? 0 : src.numel() / inner;
  std::vector<int64_t> idx(nd, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = src.offset();
    for (int d = 0; d < nd - 1; ++d) off += idx[d] * src.strides()[d];
    for (int64_t i = 0; i < inner; ++i, out += es)
      std::memcpy(out, base + (off + i * inner_stride) * es, es);
    for (int d = nd - 2; d >= 0; --d) {  // odometer increment over the outer dims
      if (++idx[d] < src.shape()[d]) break;
      idx[d] = 0;
    }
  }
}

void copy_strided(Tensor& dst, const Tensor& src) {
  CHECK(dst.is_contiguous() && dst.shape() == src.shape() && dst.dtype() == src.dtype() &&
            dst.device() == src.device(),
        "copy_strided: ", src.desc(), " into ", dst.desc());
  if (src.numel() == 0) return;
  if (src.is_contiguous()) {  // one block of bytes: memcpy, or a device-to-device copy
    copy_bytes(dst.raw_data(), dst.device(), src.raw_data(), src.device(),
               src.numel() * dtype_size(src.dtype()));
    return;
  }
  if (dst.device().is_cuda()) {
    strided_copy_cuda(dst.raw_data(), src.storage()->data, layout_of(src),
                      static_cast<int>(dtype_size(src.dtype())), src.numel());
  } else {
    pack_strided_cpu(src, dst.raw_data());
  }
}

void fill_tensor(Tensor& t, double value) {
  CHECK(t.is_contiguous(), "fill: needs a contiguous tensor, got ", t.desc());
  const int64_t n = t.numel();
  if (n == 0) return;
  if (t.device().is_cuda()) {
    uint64_t bits = 0;
    if (t.dtype() == DType::F32) {
      const float v = static_cast<float>(value);
      std::memcpy(&bits, &v, 4);
    } else if (t.dtype() == DType::F64) {
      std::memcpy(&bits, &value, 8);
    } else {
      const int32_t v = static_cast<int32_t>(value);
      std::memcpy(&bits, &v, 4);
    }
    fill_bits_cuda(t.raw_data(), bits, static_cast<int>(dtype_size(t.dtype())), n);
    return;
  }
  if (t.dtype() == DType::F32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(value);
  } else if (t.dtype() == DType::F64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  } else {
    int32_t* p = t.data<int32_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(value);
  }
}

static void run_add(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_op(a, "add", [&](auto z, auto dev) {
    using T = decltype(z);
    T* o = out.data<T>(true);
    const T* ap = a.data<T>(true);
    const T* bp = b.data<T>(true);
    if constexpr (is_cuda(dev)) add_forward_cuda<T>(o, ap, bp, a.numel());
    else add_forward<T>(o, ap, bp, a.numel());
  });
}

static void check_add(const Tensor& a, const Tensor& b, const char* op) {
  check_same_shape(a, b, op);
  CHECK(a.dtype() == b.dtype(), op, ": dtypes differ, ", a.desc(), " vs ", b.desc());
  check_same_device(a.device(), {&b}, op);
}

void add_into(Tensor& dst, const Tensor& src_in) {
  check_add(dst, src_in, "add_into");
  CHECK(dst.is_contiguous(), "add_into: destination must be contiguous, got ", dst.desc());
  run_add(dst, dst, src_in.contiguous());
}

Tensor add_tensors(const Tensor& a_in, const Tensor& b_in) {
  check_add(a_in, b_in, "add");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  run_add(out, a, b);
  return out;
}

}  // namespace moe
