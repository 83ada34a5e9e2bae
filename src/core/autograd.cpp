// autograd.cpp — the tape engine (see autograd.h for the rules every op follows).
#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/tensor_math.h"

namespace moe {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const Tensor& t : inputs) any = any || t.requires_grad();
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(fn);
  for (const Tensor& t : inputs) {
    node->inputs.push_back(t.requires_grad() ? t.meta() : nullptr);
    node->input_shapes.push_back(t.shape());
  }
  auto meta = std::make_shared<AutogradMeta>();
  meta->requires_grad = true;
  meta->grad_fn = std::move(node);
  out.set_meta(std::move(meta));
  return out;
}

static thread_local const LeafReadyFn* t_leaf_ready = nullptr;

LeafReadyScope::LeafReadyScope(LeafReadyFn fn) {
  CHECK(t_leaf_ready == nullptr, "LeafReadyScope: one leaf hook at a time");
  t_leaf_ready = new LeafReadyFn(std::move(fn));
}

LeafReadyScope::~LeafReadyScope() {
  delete t_leaf_ready;
  t_leaf_ready = nullptr;
}

void accumulate_grad(AutogradMeta& meta, const Tensor& g) {
  if (!meta.grad.defined()) {
    // A leaf's buffer must be its own: the incoming gradient may alias another slot (add's
    // backward returns the same tensor twice) and the optimizer may scale .grad in place. When
    // nothing else holds g's storage and g covers all of it, g already is its own buffer: keep
    // it instead of copying (a full copy of every parameter's gradient per step otherwise).
    const size_t bytes = static_cast<size_t>(g.numel()) * dtype_size(g.dtype());
    const bool sole_owner = g.storage().use_count() == 1 && g.is_contiguous() &&
                            g.offset() == 0 && g.storage()->bytes == bytes;
    meta.grad = meta.grad_fn || sole_owner ? g : g.clone();
    return;
  }
  if (meta.grad_fn) {
    meta.grad = add_tensors(meta.grad, g);  // interior: out of place, the buffer may be shared
  } else {
    add_into(meta.grad, g);                 // leaf: own buffer, accumulate in place
  }
}

// Topological order of the nodes reachable from `root`, outputs before inputs, computed with an
// explicit stack (post-order DFS, then reversed).
static std::vector<AutogradMeta*> topo_order(AutogradMeta* root) {
  std::vector<AutogradMeta*> post;
  std::unordered_set<AutogradMeta*> seen;
  std::vector<std::pair<AutogradMeta*, size_t>> stack;  // (node, next input to visit)
  stack.push_back({root, 0});
  seen.insert(root);
  while (!stack.empty()) {
    auto& [m, next] = stack.back();
    const auto& ins = m->grad_fn ? m->grad_fn->inputs : std::vector<std::shared_ptr<AutogradMeta>>{};
    if (next < ins.size()) {
      AutogradMeta* child = ins[next++].get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      post.push_back(m);
      stack.pop_back();
    }
  }
  return std::vector<AutogradMeta*>(post.rbegin(), post.rend());
}

void backward(const Tensor& out, const Tensor& grad_out) {
  CHECK(out.requires_grad(), "backward() on a tensor that does not require grad. HINT: did the "
        "forward run inside a NoGradGuard, or do no parameters require grad?");
  check_same_shape(out, grad_out, "backward seed gradient");
  AutogradMeta* root = out.meta().get();
  std::vector<AutogradMeta*> order = topo_order(root);
  accumulate_grad(*root, grad_out);
  std::vector<std::shared_ptr<Node>> ran;  // to release the graph afterwards (see below)
  for (AutogradMeta* m : order) {
    if (!m->grad_fn) {  // a leaf: its .grad is the result, final now (every user has run)
      if (t_leaf_ready != nullptr) (*t_leaf_ready)(*m);
      continue;
    }
    std::shared_ptr<Node> node = m->grad_fn;
    Tensor g = m->grad;
    m->grad = Tensor();  // interior gradients are not kept
    if (!g.defined()) continue;
    CHECK(node->backward != nullptr, "backward through the graph of op '", node->name,
          "' a second time. HINT: run the forward again before calling backward");
    std::vector<bool> needs(node->inputs.size());
    for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->inputs[i] != nullptr;
    std::vector<Tensor> grads = node->backward(g, needs);
    ASSERT_INTERNAL(grads.size() == node->inputs.size(), "op '", node->name, "' returned ",
                    grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      if (!needs[i] || !grads[i].defined()) continue;
      ASSERT_INTERNAL(grads[i].shape() == node->input_shapes[i], "op '", node->name,
                      "' gradient ", i, " has shape ", shape_str(grads[i].shape()),
                      ", input has ", shape_str(node->input_shapes[i]));
      accumulate_grad(*node->inputs[i], grads[i]);
    }
    node->backward = nullptr;  // release saved tensors now
    ran.push_back(node);
  }
  // Release the graph's edges, inputs' side first: a long chain of nodes owning each other would
  // otherwise be destroyed recursively (one stack frame per node) when the output goes away.
  for (auto it = ran.rbegin(); it != ran.rend(); ++it) (*it)->inputs.clear();
}

void backward(const Tensor& loss) {
  CHECK(loss.numel() == 1, "backward(loss) needs a scalar loss, got ", loss.desc());
  Tensor seed = Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device());  // dL/dL = 1
  backward(loss, seed);
}

}  // namespace moe
