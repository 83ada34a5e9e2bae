// params.h — the named parameter registry (notes/design.md "The core").
//
// Every trainable tensor of a model is registered once, under a stable dotted name
// ("blocks.3.attn.qkv.weight"). The optimizer walks this list, checkpoints store tensors under
// these names, and a mismatched checkpoint is reported name by name. Order is registration order,
// which makes the walk (and so the optimizer's arithmetic) deterministic.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace moe {

class ParamRegistry {
 public:
  // Register a leaf tensor; it is marked requires_grad. Names must be unique.
  Tensor add(const std::string& name, Tensor t);
  const std::vector<std::pair<std::string, Tensor>>& all() const { return params_; }
  Tensor get(const std::string& name) const;  // CHECK-fails naming the parameter
  int64_t count() const;                      // total number of scalars
  void zero_grad();
  // Moves every parameter to `dev` (new leaves there; handles taken earlier keep the old copy,
  // so owners re-fetch theirs with get()).
  void to(Device dev);

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
};

}  // namespace moe
