// Tests for CUDA device storage (cuda/device.cu) and the first CUDA kernel (cuda/elementwise.cu).
//
// Three groups:
//  * CudaDevice.*     run in every build, with or without a GPU: device discovery never throws,
//                     and a CUDA tensor without a device fails with a HINT.
//  * CudaStorage.*    the caching allocator and host<->device copies (bitwise round trips).
//  * CudaElementwise.* each kernel against its CPU op, under the policy of tests/tolerances.h.
// The last two need a GPU: they skip, saying why, when none is visible, and they are compiled only
// in CUDA builds (the Makefile defines MOE_CUDA there), since the kernels do not exist otherwise.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "ops/elementwise.h"
#include "tolerances.h"
#include "core/tensor_math.h"

using namespace moe;
using namespace moe::testing;

namespace {

// The message of the moe::Error that `f` throws ("" and a test failure if it throws none).
std::string error_message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a moe::Error, none was thrown";
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// every build

TEST(CudaDevice, DiscoveryNeverThrows) {
  EXPECT_NO_THROW(devices_init());
  EXPECT_NO_THROW(devices_init());  // idempotent
  EXPECT_GE(cuda_device_count(), 0);
  EXPECT_EQ(cuda_available(), cuda_device_count() > 0);
  const std::string line = devices_describe();
  EXPECT_FALSE(line.empty());
  if (cuda_available()) EXPECT_EQ(line.rfind("cuda:0 ", 0), 0u) << line;
  else EXPECT_EQ(line.rfind("cpu only (", 0), 0u) << line;
}

TEST(CudaDevice, CudaTensorWithoutDeviceThrowsWithHint) {
  devices_init();
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present; this checks the no-GPU message";
  const std::string msg = error_message_of([] { Tensor::empty({4}, DType::F32, cuda()); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CUDA"), std::string::npos) << msg;
}

// Guards against a silent gap: a CUDA build whose test objects were compiled without -DMOE_CUDA
// would leave out every kernel test below and still pass.
TEST(CudaDevice, BuildFlagMatchesLinkedDeviceCode) {
#ifdef MOE_CUDA
  EXPECT_TRUE(built_with_cuda());
#else
  EXPECT_FALSE(built_with_cuda())
      << "this file was compiled without MOE_CUDA but linked with cuda/device.cu, so its CUDA "
         "tests were left out. HINT: add -DMOE_CUDA=1 to the CUDA build's CPPFLAGS";
#endif
}

#ifdef MOE_CUDA
// ---------------------------------------------------------------------------------------------
// device storage

namespace {

// Every bit pattern, NaNs and denormals included: a copy must move bytes, never values.
Tensor random_bits(const Shape& shape, DType dt, uint64_t seed) {
  Tensor t = Tensor::empty(shape, dt);
  Rng rng(seed);
  auto* bytes = static_cast<unsigned char*>(t.raw_data());
  const size_t n = static_cast<size_t>(t.numel()) * dtype_size(dt);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>(rng.next_u64());
  return t;
}

Tensor random_f32(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(2.0 * rng.uniform() - 1.0);
  return Tensor::from_f32(v, {n});
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  const size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.device().is_cpu() &&
         b.device().is_cpu() && a.is_contiguous() && b.is_contiguous() &&
         std::memcmp(a.raw_data(), b.raw_data(), n) == 0;
}

}  // namespace

TEST(CudaStorage, EmptyTensorLivesOnDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  const size_t before = cuda_memory_stats().bytes_in_use;
  Tensor t = Tensor::empty({3, 5}, DType::F32, cuda());
  EXPECT_TRUE(t.device().is_cuda());
  EXPECT_EQ(t.device().str(), "cuda:0");
  EXPECT_EQ(t.numel(), 15);
  EXPECT_NE(t.raw_data(), nullptr);
  EXPECT_GE(cuda_memory_stats().bytes_in_use, before + 15 * sizeof(float));
  // Host code must not dereference a device pointer by accident.
  const std::string msg = error_message_of([&] { t.data<float>(); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NO_THROW(t.data<float>(/*allow_device=*/true));
}

TEST(CudaStorage, HostDeviceHostRoundTripIsBitwise) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  uint64_t seed = 1;
  for (DType dt : {DType::F32, DType::F64, DType::I32}) {
    for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 3}}) {
      Tensor host = random_bits({n}, dt, seed++);
      Tensor dev = host.to(cuda());
      ASSERT_TRUE(dev.device().is_cuda());
      EXPECT_TRUE(same_bytes(dev.to(cpu()), host)) << dtype_name(dt) << " n=" << n;
    }
  }
}

TEST(CudaStorage, DeviceToDeviceCopy) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  Tensor host = random_bits({37, 11}, DType::F32, 7);
  Tensor a = host.to(cuda());
  Tensor b = a.clone();  // a new device block, filled by a device-to-device copy
  EXPECT_NE(b.raw_data(), a.raw_data());
  Tensor c = Tensor::empty({37, 11}, DType::F32, cuda());
  c.copy_from(b);
  EXPECT_TRUE(same_bytes(c.to(cpu()), host));
}

TEST(CudaStorage, NonContiguousHostViewToDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  Tensor host = random_bits({4, 6, 5}, DType::F32, 11);
  Tensor view = host.transpose_view(0, 2).slice_view(1, 1, 5);  // (5, 4, 4), strided
  ASSERT_FALSE(view.is_contiguous());
  Tensor dev = view.to(cuda());
  EXPECT_EQ(dev.shape(), (Shape{5, 4, 4}));
  EXPECT_TRUE(same_bytes(dev.to(cpu()), view.contiguous()));
}

TEST(CudaStorage, ZerosAndFullOnDevice) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  EXPECT_EQ(Tensor::zeros({5}, DType::F32, cuda()).to_f32_vector(), std::vector<float>(5, 0.f));
  EXPECT_EQ(Tensor::full({3}, 2.5, DType::F64, cuda()).to_f64_vector(),
            std::vector<double>(3, 2.5));
  EXPECT_EQ(Tensor::empty({0}, DType::F32, cuda()).to(cpu()).numel(), 0);
}

TEST(CudaStorage, AllocatorReusesFreedBlock) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  cuda_empty_cache();
  const CudaMemoryStats s0 = cuda_memory_stats();
  void* first = nullptr;
  { first = Tensor::empty({1000}, DType::F32, cuda()).raw_data(); }  // freed at once
  const CudaMemoryStats s1 = cuda_memory_stats();
  EXPECT_EQ(s1.num_cuda_malloc, s0.num_cuda_malloc + 1);
  EXPECT_EQ(s1.bytes_in_use, s0.bytes_in_use);
  EXPECT_GE(s1.bytes_cached, 4000u);
  // 1020 floats = 4080 bytes rounds to the same 4096-byte block as 4000 bytes did.
  Tensor again = Tensor::empty({1020}, DType::F32, cuda());
  const CudaMemoryStats s2 = cuda_memory_stats();
  EXPECT_EQ(again.raw_data(), first);
  EXPECT_EQ(s2.num_cuda_malloc, s1.num_cuda_malloc) << "a cached block should have been reused";
  EXPECT_EQ(s2.num_cache_hits, s1.num_cache_hits + 1);
}

TEST(CudaStorage, LargeSizeClassesAreShared) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  cuda_empty_cache();
  // 3 MiB + 4 bytes and 3 MiB + 400 bytes both round up to the 3.5 MiB class.
  const int64_t three_mib_floats = (int64_t{3} << 20) / 4;
  void* first = nullptr;
  { first = Tensor::empty({three_mib_floats + 1}, DType::F32, cuda()).raw_data(); }
  const int64_t mallocs = cuda_memory_stats().num_cuda_malloc;
  Tensor again = Tensor::empty({three_mib_floats + 100}, DType::F32, cuda());
  EXPECT_EQ(again.raw_data(), first);
  EXPECT_EQ(cuda_memory_stats().num_cuda_malloc, mallocs);
}

TEST(CudaStorage, StatsTrackInUseCachedAndPeak) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  cuda_empty_cache();
  cuda_reset_peak_memory();
  const CudaMemoryStats s0 = cuda_memory_stats();
  EXPECT_EQ(s0.bytes_cached, 0u);
  const size_t mib = size_t(1) << 20;
  Tensor a = Tensor::empty({int64_t(mib / 4)}, DType::F32, cuda());
  {
    Tensor b = Tensor::empty({int64_t(mib / 4)}, DType::F32, cuda());
    EXPECT_EQ(cuda_memory_stats().bytes_in_use, s0.bytes_in_use + 2 * mib);
  }
  const CudaMemoryStats s1 = cuda_memory_stats();
  EXPECT_EQ(s1.bytes_in_use, s0.bytes_in_use + mib);
  EXPECT_EQ(s1.bytes_cached, mib);
  EXPECT_EQ(s1.peak_bytes_in_use, s0.bytes_in_use + 2 * mib);
  cuda_empty_cache();
  const CudaMemoryStats s2 = cuda_memory_stats();
  EXPECT_EQ(s2.bytes_cached, 0u);
  EXPECT_EQ(s2.num_cuda_free, s1.num_cuda_free + 1);
  cuda_reset_peak_memory();
  EXPECT_EQ(cuda_memory_stats().peak_bytes_in_use, s2.bytes_in_use);
}

TEST(CudaStorage, OutOfMemoryNamesTheSizeAndRecovers) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  const size_t in_use = cuda_memory_stats().bytes_in_use;
  const int64_t floats = int64_t{1} << 48;  // 2^50 bytes = 1 PiB, more than any GPU
  const std::string msg =
      error_message_of([&] { Tensor::empty({floats}, DType::F32, cuda()); });
  EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1125899906842624 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_EQ(cuda_memory_stats().bytes_in_use, in_use);
  // The failed cudaMalloc must not linger as the runtime's "last error" and break the next launch.
  Tensor a = Tensor::full({8}, 1.0, DType::F32, cuda());
  Tensor out = Tensor::empty({8}, DType::F32, cuda());
  EXPECT_NO_THROW(add_forward_cuda<float>(out.data<float>(true), a.data<float>(true),
                                   a.data<float>(true), 8));
  EXPECT_EQ(out.to_f32_vector(), std::vector<float>(8, 2.f));
}

// ---------------------------------------------------------------------------------------------
// kernels against their CPU ops

TEST(CudaElementwise, AddForwardMatchesCpu) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  // 1: a single thread; 1000: a partial block; 2^20 + 3: many blocks, ragged end;
  // 2^24 + 7: more elements than threads in the capped grid, so the grid-stride loop wraps.
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{(1 << 20) + 3}, int64_t{(1 << 24) + 7}}) {
    Tensor a = random_f32(n, 100 + n), b = random_f32(n, 200 + n);
    Tensor ref = add(a, b);  // the CPU op
    Tensor da = a.to(cuda()), db = b.to(cuda());
    Tensor out = Tensor::empty({n}, DType::F32, cuda());
    add_forward_cuda<float>(out.data<float>(true), da.data<float>(true), db.data<float>(true), n);
    expect_allclose(out.to_f64_vector(), ref.to_f64_vector(), tol::add,
                    "add_forward_cuda n=" + std::to_string(n));
  }
}

TEST(CudaElementwise, AddForwardZeroElementsIsANoOp) {
  MOE_SKIP_WITHOUT_CUDA();
  devices_init();
  Tensor e = Tensor::empty({0}, DType::F32, cuda());
  EXPECT_NO_THROW(add_forward_cuda<float>(e.data<float>(true), e.data<float>(true),
                                   e.data<float>(true), 0));
}
#endif  // MOE_CUDA
