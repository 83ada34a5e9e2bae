// cuda_check.h — the one routine every CUDA op test uses: run an op on the CPU and on the GPU
// from the same inputs, and compare the output and every input gradient under the tolerance
// policy of tests/tolerances.h (notes/cuda.md §6).
//
// How: the inputs are f32 CPU tensors (leaves; those that require grad are marked). Each is
// copied twice — a CPU copy and a CUDA copy, each a fresh leaf with the same requires-grad — the
// op runs on both, the outputs are compared, then both are run backward from one random seed
// gradient (the same numbers on both devices) and each input's gradient is compared. The CPU op
// is the reference: its own correctness is established by the double-precision gradient checks
// in tests/ops and tests/moe.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/device.h"
#include "core/rng.h"
#include "tolerances.h"

namespace moe::testing {

// Random f32 tensor with values in [lo, hi) from a fixed seed (CPU).
inline Tensor random_f32(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = static_cast<float>(lo + (hi - lo) * rng.uniform());
  return Tensor::from_f32(v, shape);
}

inline Tensor leaf_f32(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Tensor t = random_f32(shape, seed, lo, hi);
  t.set_requires_grad(true);
  return t;
}

// A copy of `t` on `dev` that is a new leaf with t's requires-grad flag.
inline Tensor leaf_copy(const Tensor& t, Device dev) {
  Tensor c = t.to(dev);
  if (c.storage() == t.storage()) c = t.clone();  // same device: .to() returned t itself
  if (t.requires_grad()) c.set_requires_grad(true);
  return c;
}

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs `f` on CPU and CUDA copies of `inputs`; compares outputs with `fwd`, the gradients of the
// inputs that require grad with `bwd`. `what` names the case in failure messages.
inline void expect_cuda_matches_cpu(const OpFn& f, const std::vector<Tensor>& inputs,
                                    Tolerance fwd, Tolerance bwd, const std::string& what) {
  std::vector<Tensor> on_cpu, on_gpu;
  for (const Tensor& t : inputs) {
    on_cpu.push_back(leaf_copy(t, cpu()));
    on_gpu.push_back(leaf_copy(t, cuda()));
  }
  Tensor y_cpu = f(on_cpu);
  Tensor y_gpu = f(on_gpu);
  ASSERT_TRUE(y_gpu.device().is_cuda()) << what << ": the op did not follow its inputs to the GPU";
  ASSERT_EQ(y_gpu.shape(), y_cpu.shape()) << what;
  expect_allclose(y_gpu.to_f64_vector(), y_cpu.to_f64_vector(), fwd, what + " forward");
  if (!y_cpu.requires_grad()) return;
  ASSERT_TRUE(y_gpu.requires_grad()) << what << ": the GPU output is not on the tape";
  Tensor seed = random_f32(y_cpu.shape(), 777, -1.0, 1.0);
  backward(y_cpu, seed);
  backward(y_gpu, seed.to(cuda()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor g_cpu = on_cpu[i].grad(), g_gpu = on_gpu[i].grad();
    ASSERT_EQ(g_cpu.defined(), g_gpu.defined()) << what << ": input " << i;
    if (!g_cpu.defined()) continue;
    ASSERT_TRUE(g_gpu.device().is_cuda()) << what << ": gradient " << i << " is not on the GPU";
    expect_allclose(g_gpu.to_f64_vector(), g_cpu.to_f64_vector(), bwd,
                    what + " gradient of input " + std::to_string(i));
  }
}

}  // namespace moe::testing
