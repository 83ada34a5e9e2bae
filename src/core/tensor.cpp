// tensor.cpp — storage, allocators, views and copies for Tensor (see tensor.h for the model).
#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/autograd.h"
#include "core/tensor_math.h"

namespace moe {

// ---------------------------------------------------------------------------------------------
// dtypes and devices

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
  }
  return "?";
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : str_cat("cuda:", index);
}

// ---------------------------------------------------------------------------------------------
// allocators

namespace {

// 64-byte alignment keeps rows cache-line aligned for the CPU kernels' vector loads.
class CpuAllocator : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

Allocator* g_allocators[2] = {nullptr, nullptr};
CopyBytesFn g_copy_bytes = nullptr;

}  // namespace

void register_allocator(DeviceType type, Allocator* alloc) {
  g_allocators[static_cast<int>(type)] = alloc;
}

Allocator* allocator_for(Device d) {
  static CpuAllocator cpu_alloc;
  if (d.is_cpu()) return g_allocators[0] ? g_allocators[0] : &cpu_alloc;
  Allocator* a = g_allocators[static_cast<int>(d.type)];
  CHECK(a != nullptr, "no allocator for device ", d.str(),
        ": this binary was built without CUDA. HINT: build with `make` on a machine with nvcc, "
        "or run on the CPU");
  return a;
}

void register_copy_bytes(CopyBytesFn fn) { g_copy_bytes = fn; }

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) {
  if (bytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  CHECK(g_copy_bytes != nullptr, "cannot copy between ", src_dev.str(), " and ", dst_dev.str(),
        ": this binary was built without CUDA");
  g_copy_bytes(dst, dst_dev, src, src_dev, bytes);
}

Storage::Storage(size_t nbytes, Device dev) : bytes(nbytes), device(dev) {
  alloc = allocator_for(dev);
  data = alloc->allocate(nbytes);
}

Storage::~Storage() {
  if (alloc && data) alloc->deallocate(data, bytes);
}

// ---------------------------------------------------------------------------------------------
// shapes

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << (s.size() == 1 ? ",)" : ")");
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

static Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

void check_shape(const Tensor& t, const Shape& expected, const char* what) {
  CHECK(t.defined(), what, ": tensor is undefined");
  CHECK(t.shape() == expected, what, ": expected shape ", shape_str(expected), ", got ",
        shape_str(t.shape()));
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* what) {
  CHECK(a.shape() == b.shape(), what, ": shapes differ, ", shape_str(a.shape()), " vs ",
        shape_str(b.shape()));
}

// ---------------------------------------------------------------------------------------------
// construction

Tensor Tensor::empty(const Shape& shape, DType dt, Device dev) {
  for (int64_t d : shape) CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.storage_ = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dt), dev);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dt;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  fill_tensor(t, 0.0);
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  fill_tensor(t, value);
  return t;
}

Tensor Tensor::from_f32(const std::vector<float>& v, const Shape& shape) {
  CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_f32: ", v.size(),
        " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.storage_->data, v.data(), v.size() * sizeof(float));
  return t;
}

Tensor Tensor::from_f64(const std::vector<double>& v, const Shape& shape) {
  CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_f64: ", v.size(),
        " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::F64);
  std::memcpy(t.storage_->data, v.data(), v.size() * sizeof(double));
  return t;
}

Tensor Tensor::from_i32(const std::vector<int32_t>& v, const Shape& shape) {
  CHECK(static_cast<int64_t>(v.size()) == shape_numel(shape), "from_i32: ", v.size(),
        " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::I32);
  std::memcpy(t.storage_->data, v.data(), v.size() * sizeof(int32_t));
  return t;
}

// ---------------------------------------------------------------------------------------------
// metadata

int64_t Tensor::size(int d) const {
  int nd = dim();
  if (d < 0) d += nd;
  CHECK(d >= 0 && d < nd, "dimension ", d, " out of range for shape ", shape_str(shape_));
  return shape_[d];
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return str_cat(dtype_name(dtype_), shape_str(shape_), " ", device().str());
}

void* Tensor::raw_data() const {
  CHECK(defined(), "use of an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * dtype_size(dtype_);
}

// ---------------------------------------------------------------------------------------------
// views

Tensor Tensor::view(const Shape& shape) const {
  CHECK(is_contiguous(), "view of a non-contiguous tensor ", desc(),
        ". HINT: call .contiguous() first");
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      CHECK(infer < 0, "view: more than one -1 in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    CHECK(known > 0 && numel() % known == 0, "view: cannot infer -1 in ", shape_str(shape),
          " for ", numel(), " elements");
    s[infer] = numel() / known;
  }
  CHECK(shape_numel(s) == numel(), "view: shape ", shape_str(s), " has ", shape_numel(s),
        " elements, tensor ", desc(), " has ", numel());
  Tensor t = *this;
  t.meta_.reset();
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::transpose_view(int d0, int d1) const {
  int nd = dim();
  if (d0 < 0) d0 += nd;
  if (d1 < 0) d1 += nd;
  CHECK(d0 >= 0 && d0 < nd && d1 >= 0 && d1 < nd, "transpose: dims out of range for ", desc());
  Tensor t = *this;
  t.meta_.reset();
  std::swap(t.shape_[d0], t.shape_[d1]);
  std::swap(t.strides_[d0], t.strides_[d1]);
  return t;
}

Tensor Tensor::slice_view(int d, int64_t start, int64_t end) const {
  int nd = dim();
  if (d < 0) d += nd;
  CHECK(d >= 0 && d < nd, "slice: dim out of range for ", desc());
  CHECK(0 <= start && start <= end && end <= shape_[d], "slice [", start, ", ", end,
        ") out of range for dim ", d, " of ", desc());
  Tensor t = *this;
  t.meta_.reset();
  t.offset_ += start * strides_[d];
  t.shape_[d] = end - start;
  return t;
}

// ---------------------------------------------------------------------------------------------
// copies

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  CHECK(defined(), "clone of an undefined tensor");
  Tensor out = empty(shape_, dtype_, device());
  out.copy_from(*this);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  CHECK(src.shape() == shape_ && src.dtype() == dtype_, "copy_from: ", src.desc(), " into ",
        desc());
  CHECK(is_contiguous(), "copy_from into a non-contiguous view ", desc(), " is not supported");
  if (device() == src.device()) {
    copy_strided(*this, src);  // packs a strided view on its own device (CPU loop or kernel)
    return;
  }
  // Between devices bytes move packed: pack a strided source on its own device first.
  Tensor s = src.contiguous();
  copy_bytes(raw_data(), device(), s.raw_data(), s.device(), numel() * dtype_size(dtype_));
}

Tensor Tensor::to(Device dev) const {
  if (device() == dev) return *this;
  Tensor out = empty(shape_, dtype_, dev);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype_) return *this;
  CHECK(device().is_cpu(), "dtype conversion runs on the CPU; got ", desc());
  Tensor src = contiguous();
  Tensor out = empty(shape_, dt);
  const int64_t n = numel();
  std::vector<double> tmp = src.to_f64_vector();
  for (int64_t i = 0; i < n; ++i) {
    if (dt == DType::F32) out.data<float>()[i] = static_cast<float>(tmp[i]);
    else if (dt == DType::F64) out.data<double>()[i] = tmp[i];
    else out.data<int32_t>()[i] = static_cast<int32_t>(tmp[i]);
  }
  return out;
}

void Tensor::fill(double value) { fill_tensor(*this, value); }

// ---------------------------------------------------------------------------------------------
// element access

std::vector<double> Tensor::to_f64_vector() const {
  Tensor c = device().is_cpu() ? contiguous() : to(cpu());
  const int64_t n = c.numel();
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) {
    if (dtype_ == DType::F32) v[i] = c.data<float>()[i];
    else if (dtype_ == DType::F64) v[i] = c.data<double>()[i];
    else v[i] = c.data<int32_t>()[i];
  }
  return v;
}

std::vector<float> Tensor::to_f32_vector() const {
  std::vector<double> d = to_f64_vector();
  return std::vector<float>(d.begin(), d.end());
}

std::vector<int32_t> Tensor::to_i32_vector() const {
  CHECK(dtype_ == DType::I32, "to_i32_vector on ", desc());
  Tensor c = device().is_cpu() ? contiguous() : to(cpu());
  return std::vector<int32_t>(c.data<int32_t>(), c.data<int32_t>() + c.numel());
}

double Tensor::item() const {
  CHECK(numel() == 1, "item() needs exactly one element, tensor is ", desc());
  return to_f64_vector()[0];
}

double Tensor::at(std::initializer_list<int64_t> idx) const {
  CHECK(static_cast<int>(idx.size()) == dim(), "at(): ", idx.size(), " indices for ", desc());
  Tensor t = device().is_cpu() ? *this : to(cpu());
  int64_t off = t.offset();
  int d = 0;
  for (int64_t i : idx) {
    CHECK(i >= 0 && i < t.shape()[d], "at(): index ", i, " out of range in dim ", d);
    off += i * t.strides()[d++];
  }
  const void* base = t.storage()->data;
  if (dtype_ == DType::F32) return static_cast<const float*>(base)[off];
  if (dtype_ == DType::F64) return static_cast<const double*>(base)[off];
  return static_cast<const int32_t*>(base)[off];
}

// ---------------------------------------------------------------------------------------------
// autograd accessors (the engine is in autograd.cpp)

bool Tensor::requires_grad() const { return meta_ && meta_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  CHECK(!meta_ || !meta_->grad_fn, "set_requires_grad on a non-leaf tensor");
  CHECK(!on || is_floating(), "only floating tensors can require grad, got ", desc());
  if (!meta_) meta_ = std::make_shared<AutogradMeta>();
  meta_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return meta_ ? meta_->grad : Tensor(); }

void Tensor::zero_grad() {
  if (meta_) meta_->grad = Tensor();
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.meta_.reset();
  return t;
}

}  // namespace moe
