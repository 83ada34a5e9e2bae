// dispatch.h — how an op picks its CPU loop or its CUDA kernel (notes/cuda.md §5).
//
// Every op of moe-gpt is written twice with the same name and argument order: a CPU function
// (`layernorm_forward<T>`, src/ops/layernorm.cpp) and a CUDA launcher (`layernorm_forward_cuda<T>`,
// cuda/ops/layernorm.cu), declared side by side in the op's header in src/. The op's Tensor
// wrapper chooses between them in exactly one place per forward and one per backward, by the
// device of its inputs ("ops follow their inputs' device"):
//
//   dispatch_op(x, "layernorm", [&](auto z, auto dev) {
//     using T = decltype(z);
//     if constexpr (is_cuda(dev)) layernorm_forward_cuda<T>(out, mean, rstd, x, g, b, eps, R, C);
//     else                        layernorm_forward<T>(out, mean, rstd, x, g, b, eps, R, C);
//   });
//
// What runs where: CPU tensors run in f32 or f64 (f64 is for the gradient checks); CUDA tensors
// run in f32 (bf16 comes as more instantiations of the same kernels, not as new kernels).
//
// CPU-only builds (`make cpu`) have no cuda/ objects, so every launcher is declared with
// MOE_CUDA_STUB: in a CUDA build that is a plain declaration (the definition is in cuda/), in a
// CPU build it becomes a body that throws a clear error. It is the same pattern as core/device.h
// with cuda/core/device.cu and device_nocuda.cpp, without a second list of signatures to keep in
// step. Reaching a stub is only possible with a CUDA tensor, which a CPU build cannot create, so
// the stub is a safety net, not a path.
#pragma once
#include <initializer_list>

#include "core/tensor.h"

namespace moe {

[[noreturn]] void fail_without_cuda(const char* launcher);

struct OnCpu {};
struct OnCuda {};
constexpr bool is_cuda(OnCpu) { return false; }
constexpr bool is_cuda(OnCuda) { return true; }

// Runs f(T{}, OnCpu{}) with T = float or double for a CPU tensor, f(float{}, OnCuda{}) for a
// CUDA one. The CUDA branch of f is only compiled for float.
template <typename F>
void dispatch_op(const Tensor& t, const char* op, F&& f) {
  if (t.device().is_cuda()) {
    CHECK(t.dtype() == DType::F32, op, ": CUDA kernels take f32 tensors, got ", t.desc(),
          ". HINT: f64 is for gradient checks on the CPU; move the tensor with .to(cpu())");
    f(float{}, OnCuda{});
    return;
  }
  dispatch_floating(t.dtype(), [&](auto z) { f(z, OnCpu{}); });
}

// Every defined tensor in `ts` must be on `dev` (the first input's device): an op never moves
// data behind the caller's back.
void check_same_device(const Device& dev, std::initializer_list<const Tensor*> ts, const char* op);

}  // namespace moe

// Launchers are declared between MOE_CUDA_BEGIN and MOE_CUDA_END. In a CPU build the stubs are
// defined in the header itself, so they go into an unnamed namespace (one private copy per file,
// no clash at link time), and only there are -Wunused-parameter (a stub ignores its arguments)
// and -Wunused-function (most files call few of them) silenced.
#ifdef MOE_CUDA
#define MOE_CUDA_STUB ;
#define MOE_CUDA_BEGIN
#define MOE_CUDA_END
#else
#define MOE_CUDA_STUB \
  { ::moe::fail_without_cuda(__func__); }
#define MOE_CUDA_BEGIN                                             \
  _Pragma("GCC diagnostic push")                                   \
  _Pragma("GCC diagnostic ignored \"-Wunused-parameter\"")          \
  _Pragma("GCC diagnostic ignored \"-Wunused-function\"") namespace {
#define MOE_CUDA_END \
  }                  \
  _Pragma("GCC diagnostic pop")
#endif
