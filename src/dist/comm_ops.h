// comm_ops.h — the exchanges of expert parallelism as ops on the autograd tape (SPEC §4).
//
//   all_to_all(x)   x (W, ...) -> (W, ...): chunk r goes to rank r, chunk r of the result came
//                   from rank r. Backward: the same exchange applied to the gradient — the
//                   all-to-all is its own inverse (rank i sent its chunk j to rank j, which holds it
//                   in slot i; the gradient of slot i on rank j must go back to rank i, slot j).
// In the MoE layer: the (E, Cap, C) dispatch buffer is (W, E/W, Cap, C) — chunk r holds the rows
// for rank r's experts — so one all_to_all delivers every rank's rows to the experts' owner, and a
// second one after the experts brings the outputs home (moe/moe_layer.cpp).
#pragma once
#include "core/tensor.h"
#include "dist/transport.h"

namespace moe {

Tensor all_to_all(const Tensor& x, Transport& t);

}  // namespace moe
