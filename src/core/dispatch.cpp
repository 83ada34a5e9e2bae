// dispatch.cpp — the error paths of core/dispatch.h.
#include "core/dispatch.h"

namespace moe {

void fail_without_cuda(const char* launcher) {
  throw Error(str_cat(launcher, ": this binary was built without CUDA (make cpu), so no CUDA "
                      "kernel exists. HINT: rebuild with `make` on a machine with nvcc, or run "
                      "with --device cpu"));
}

void check_same_device(const Device& dev, std::initializer_list<const Tensor*> ts,
                       const char* op) {
  for (const Tensor* t : ts) {
    if (t == nullptr || !t->defined()) continue;
    CHECK(t->device() == dev, op, ": inputs are on different devices (", dev.str(), " and ",
          t->desc(), "). HINT: move the model and its inputs to one device with .to(...)");
  }
}

}  // namespace moe
