// eval under mpirun (SPEC §4; notes/distributed.md "eval and finetune"): W ranks split the rows
// of every scoring batch and run the MoE layers expert-parallel. Each rank gates its own rows
// with its own capacity, so scores can differ from one process only through dropped
// assignments; with the eval capacity fraction 1 (Cap = N: an expert can take every token,
// nothing drops) the log-probabilities must equal one process's, bit for bit.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "dist/dist.h"
#include "dist/transport.h"
#include "eval/scoring.h"
#include "io/checkpoint.h"
#include "nn/gpt_io.h"

using namespace moe;

namespace {

GPTConfig tiny_moe() {
  GPTConfig c;
  c.n_layer = 2;
  c.d_model = 16;
  c.n_head = 2;
  c.seq_len = 12;
  c.vocab_size = 50;
  c.dropout = 0.0;
  c.moe_experts = 4;
  c.moe_freq = 2;
  return c;
}

// 5 rows of different lengths: not a multiple of W, and the longest row is on one rank only.
std::vector<std::vector<int32_t>> rows() {
  std::vector<std::vector<int32_t>> out;
  for (int b = 0; b < 5; ++b) {
    std::vector<int32_t> s;
    for (int i = 0; i < 3 + 2 * b; ++i) s.push_back((b * 17 + i * 7 + 3) % 50);
    out.push_back(s);
  }
  return out;
}

std::vector<std::vector<double>> score(const Checkpoint& ck, double capacity_fraction) {
  std::unique_ptr<Transport> t = make_transport("host", cpu());
  auto model = gpt_from_checkpoint(ck, cpu(), ExpertParallel{dist().rank, dist().world, t.get()});
  model->set_eval_capacity_fraction(capacity_fraction);
  GPTScorer scorer(*model, 0);
  return scorer.token_logprobs(rows());
}

}  // namespace

TEST(EvalMpi, ScoresEqualOneProcessWhenNothingDrops) {
  Checkpoint ck;
  {
    GPT one(tiny_moe(), 3, cpu());
    add_gpt_to_checkpoint(ck, one);
  }
  std::vector<std::vector<double>> want;
  {
    DistGroupScope alone(1);
    want = score(ck, 1.0);
  }
  const std::vector<std::vector<double>> got = score(ck, 1.0);
  ASSERT_EQ(got.size(), want.size());
  for (size_t b = 0; b < got.size(); ++b)
    EXPECT_EQ(got[b], want[b]) << "row " << b << " at W = " << dist().world << " on rank "
                               << dist().rank;
}
