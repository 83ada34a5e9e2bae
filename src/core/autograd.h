// autograd.h — reverse-mode automatic differentiation on a tape (notes/design.md "The core").
//
// How it works, in one paragraph: every differentiable op computes its output, then calls
// record() with its inputs and a backward closure. If gradients are enabled and any input requires
// grad, record() gives the output an AutogradMeta whose grad_fn is a Node holding (a) the metas of
// the inputs, one slot per input by position, empty where that input needs no grad, and (b) the
// closure, which owns exactly the tensors the backward reads. backward(loss) walks the graph from
// the loss with an explicit stack (no recursion, so deep graphs cannot overflow the C++ stack),
// orders the nodes topologically, and runs each closure once in reverse order, adding (+=) the
// returned gradients into the inputs' slots.
//
// Rules the ops follow (each one prevents a bug seen in other autograd code; notes/design.md "The
// core"):  * Backward returns one gradient per forward input, by position; an input that does not need a
//    gradient gets an undefined Tensor. The engine checks every returned shape against the input.
//    (Storing edges only for grad-requiring inputs but indexing by position misaligns them.)
//  * A closure must never capture its own output with history (that makes a reference cycle and
//    leaks the graph): save outputs as out.detach().
//  * Gradients accumulate: a tensor used twice gets the sum. Leaves (parameters) keep their own
//    .grad buffer, added to in place, so gradient accumulation over micro-batches is free;
//    interior gradients are freed as soon as their node has run.
//  * A graph can be run backward once; its closures are released afterwards.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace moe {

// Backward closure: given dL/d(output) and which inputs need a gradient, return one slot per input.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs)>;

struct Node {
  std::string name;                                    // op name, for error messages and dumps
  std::vector<std::shared_ptr<AutogradMeta>> inputs;   // one per forward input; null = no grad
  std::vector<Shape> input_shapes;                     // to check the shapes backward returns
  BackwardFn backward;
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                     // accumulated dL/d(this); kept for leaves, freed for the rest
  std::shared_ptr<Node> grad_fn;   // null for leaves (parameters, inputs)
};

// Is the tape recording? Off inside a NoGradGuard (evaluation, optimizer updates).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool prev_;
};

// Attach history to `out` (see the file comment). Returns `out` for chaining.
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn);

// Run backward from a scalar loss (numel 1), seeding dL/dL = 1.
void backward(const Tensor& loss);
// Run backward from any tensor with an explicit seed gradient of the same shape.
void backward(const Tensor& out, const Tensor& grad_out);

// Leaf hooks: while a LeafReadyScope lives, backward() calls its function once for every leaf
// (parameter) of the graph as soon as that leaf's gradient is final. In the topological order a
// leaf comes after every node that uses it, so "final" costs nothing to know: the engine reaches
// the leaf. The order is a function of the graph alone, the same on every rank running the same
// model. GradSync (dist/grad_sync.h) uses it to start the all-reduce of a bucket of gradients
// while the backward of the earlier layers is still running. The leaf's grad may be undefined
// (no gradient reached it). One scope at a time; not nestable.
using LeafReadyFn = std::function<void(AutogradMeta& leaf)>;
class LeafReadyScope {
 public:
  explicit LeafReadyScope(LeafReadyFn fn);
  ~LeafReadyScope();
  LeafReadyScope(const LeafReadyScope&) = delete;
  LeafReadyScope& operator=(const LeafReadyScope&) = delete;
};

// Accumulate `g` into a leaf's gradient buffer (used by the engine and by expert-parallel code).
void accumulate_grad(AutogradMeta& meta, const Tensor& g);

}  // namespace moe
