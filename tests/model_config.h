// model_config.h — a GPTConfig for tests in one line: gpt_config(L, C, NH, T, V, E).
#pragma once
#include "nn/config.h"

namespace moe::testing {

// L layers, width C, NH heads, context T, vocabulary V, E experts (0 = dense); dropout as default.
inline GPTConfig gpt_config(int L, int C, int NH, int T, int V, int E = 0) {
  GPTConfig c;
  c.n_layer = L;
  c.d_model = C;
  c.n_head = NH;
  c.seq_len = T;
  c.vocab_size = V;
  c.moe_experts = E;
  return c;
}

}  // namespace moe::testing
