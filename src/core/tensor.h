// tensor.h — the n-dimensional array every layer of moe-gpt is written in.
//
// Axis convention (stated once, used everywhere): shapes are in PyTorch order, outermost first.
// A (B, T, C) tensor is B blocks of T rows of C contiguous values; element [b][t][c] sits at
// offset + b*strides[0] + t*strides[1] + c*strides[2] (strides counted in elements, not bytes).
//
// Dimension letters used across the code base (notes/spec.md):
//   B batch, T sequence length, C model width, H FFN width (4C), V vocabulary, L layers,
//   NH heads, hs head size (C/NH), E experts, K = 2 (top-k), N = B*T tokens, Cap expert capacity.
//
// What a Tensor is: a cheap handle (copying it shares the data) to
//   - storage: a ref-counted block of bytes owned by an Allocator of one device (CPU now; the
//     CUDA allocator in cuda/ plugs in through register_allocator without changing this file),
//   - a view into it: offset, shape, strides (reshape/transpose/slice make views, no copy),
//   - a dtype: f32 for model math, f64 for gradient checks (every CPU op runs in both), i32 for ids,
//   - autograd state (see autograd.h): whether it requires grad, its accumulated grad, and the
//     node that produced it.
// What it leaves out: broadcasting (ops state their shapes), bf16 (GPU-only, later), in-place ops
// on tensors that require grad.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/check.h"

namespace moe {

enum class DType : uint8_t { F32 = 0, F64 = 1, I32 = 2 };
size_t dtype_size(DType dt);
const char* dtype_name(DType dt);

enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};
inline Device cpu() { return Device{DeviceType::CPU, 0}; }
inline Device cuda(int index = 0) { return Device{DeviceType::CUDA, index}; }

// Where bytes come from. The CPU allocator is 64-byte aligned malloc; the CUDA side registers a
// caching allocator (no cudaMalloc per op). Tensors never call malloc/cudaMalloc directly.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
};
void register_allocator(DeviceType type, Allocator* alloc);
Allocator* allocator_for(Device d);  // CHECK-fails with a HINT if the device has none (CPU build)

// Byte copies between devices, provided by cuda/ when built with CUDA.
using CopyBytesFn = void (*)(void* dst, Device dst_dev, const void* src, Device src_dev,
                             size_t bytes);
void register_copy_bytes(CopyBytesFn fn);
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes);

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Allocator* alloc = nullptr;
  Storage(size_t nbytes, Device dev);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "(2, 3, 4)"
int64_t shape_numel(const Shape& s);

struct AutogradMeta;  // autograd.h

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (e.g. an empty gradient slot)

  // ---- construction (contiguous, new storage) ----
  static Tensor empty(const Shape& shape, DType dt = DType::F32, Device dev = cpu());
  static Tensor zeros(const Shape& shape, DType dt = DType::F32, Device dev = cpu());
  static Tensor full(const Shape& shape, double value, DType dt = DType::F32, Device dev = cpu());
  static Tensor from_f32(const std::vector<float>& v, const Shape& shape);
  static Tensor from_f64(const std::vector<double>& v, const Shape& shape);
  static Tensor from_i32(const std::vector<int32_t>& v, const Shape& shape);

  // ---- metadata ----
  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : cpu(); }
  bool is_contiguous() const;
  bool is_floating() const { return dtype_ == DType::F32 || dtype_ == DType::F64; }
  std::string desc() const;  // "f32(2, 3) cpu" for messages

  // Typed pointer to element 0 of this view. CHECKs the dtype matches T and the data is on CPU
  // unless allow_device is set (CUDA kernels take device pointers through it).
  template <typename T> T* data(bool allow_device = false) const;
  void* raw_data() const;  // untyped, any device
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t offset() const { return offset_; }

  // ---- views (share storage; no autograd — the ops in ops/shape.h add that) ----
  Tensor view(const Shape& shape) const;  // contiguous only; one dim may be -1
  Tensor transpose_view(int d0, int d1) const;
  Tensor slice_view(int d, int64_t start, int64_t end) const;  // [start, end) along d

  // ---- copies ----
  Tensor contiguous() const;               // this if already contiguous, else a packed copy
  Tensor clone() const;                    // always a new contiguous copy (no autograd)
  Tensor to(Device dev) const;             // copy to a device (this if already there)
  Tensor to(DType dt) const;               // value cast, CPU (this if already that dtype)
  void copy_from(const Tensor& src);       // same shape and dtype, any devices, into this view
  void fill(double value);                 // in place, contiguous, any device

  // Element access for tests and small host code (CPU, any dtype, converts to double).
  double item() const;                     // numel == 1
  double at(std::initializer_list<int64_t> idx) const;
  std::vector<float> to_f32_vector() const;
  std::vector<double> to_f64_vector() const;
  std::vector<int32_t> to_i32_vector() const;

  // ---- autograd (autograd.h has the engine) ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);  // leaves only
  Tensor grad() const;                 // accumulated gradient of a leaf (undefined if none)
  void zero_grad();                    // drop the accumulated gradient
  Tensor detach() const;               // same data, no autograd history
  const std::shared_ptr<AutogradMeta>& meta() const { return meta_; }
  void set_meta(std::shared_ptr<AutogradMeta> m) { meta_ = std::move(m); }

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;       // in elements
  DType dtype_ = DType::F32;
  std::shared_ptr<AutogradMeta> meta_;
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }

template <typename T>
T* Tensor::data(bool allow_device) const {
  CHECK(defined(), "use of an undefined tensor");
  CHECK(dtype_ == dtype_of<T>(), "tensor has dtype ", dtype_name(dtype_), " but ",
        dtype_name(dtype_of<T>()), " was requested");
  CHECK(allow_device || device().is_cpu(), "tensor ", desc(),
        " is not on the CPU. HINT: copy it with .to(cpu()) first");
  return static_cast<T*>(storage_->data) + offset_;
}

// Run `f(T{})` with T = float or double according to a floating dtype; the one place where ops
// choose their precision, so every CPU op is instantiated for both (f64 = gradient checks).
template <typename F>
void dispatch_floating(DType dt, F&& f) {
  if (dt == DType::F32) {
    f(float{});
  } else if (dt == DType::F64) {
    f(double{});
  } else {
    CHECK(false, "expected a floating tensor (f32 or f64), got ", dtype_name(dt));
  }
}

// Shape checks shared by ops: "linear: x must be (N, C) ...".
void check_shape(const Tensor& t, const Shape& expected, const char* what);
void check_same_shape(const Tensor& a, const Tensor& b, const char* what);

}  // namespace moe
