// params.cpp — ParamRegistry (see params.h).
#include "nn/params.h"

namespace moe {

Tensor ParamRegistry::add(const std::string& name, Tensor t) {
  for (const auto& [n, _] : params_)
    ASSERT_INTERNAL(n != name, "parameter '", name, "' registered twice");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor ParamRegistry::get(const std::string& name) const {
  for (const auto& [n, t] : params_)
    if (n == name) return t;
  CHECK(false, "no parameter named '", name, "'");
  return Tensor();
}

int64_t ParamRegistry::count() const {
  int64_t n = 0;
  for (const auto& [_, t] : params_) n += t.numel();
  return n;
}

void ParamRegistry::to(Device dev) {
  for (auto& [name, t] : params_) {
    if (t.device() == dev) continue;
    Tensor moved = t.detach().to(dev);
    moved.set_requires_grad(true);
    t = moved;
  }
}

void ParamRegistry::zero_grad() {
  for (auto& [_, t] : params_) t.zero_grad();
}

}  // namespace moe
