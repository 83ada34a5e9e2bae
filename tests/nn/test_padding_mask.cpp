// Tests for GPT::forward_hidden / forward_logits with row lengths (SPEC §3 step 5a,
// notes/design.md "Hardening" item 9): the MoE gates give the padding of a right-padded batch no
// expert slot and count it in no statistic, so an MoE model scores a sequence the same whatever batch it shares. (1) One real
// sequence padded into a batch of 16 gives bitwise the hidden states it gives alone, where the
// unmasked padding would push it out of its experts. (2) With an eval capacity fraction of 1.0
// (nothing drops) the same sequences give bitwise the same logits at batch sizes 1, 7 and 16, in
// any order, and the routing statistics add up to the same real-token counts. (3) Bad lengths are
// errors, and no padding gives bitwise the old results. (4) Fine-tuning's path (training mode with
// lengths) gets the same gradients as the sequence alone. GPU versions skip without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "model_config.h"
#include "nn/gpt.h"
#include "ops/elementwise.h"
#include "tolerances.h"

using namespace moe;
using namespace moe::testing;

namespace {

constexpr int32_t kPad = 1;  // any valid id: the mask, not the id, marks padding

// A tiny MoE model: 2 layers (the second is MoE), width 16, context 16, vocabulary 50.
GPTConfig moe_config(int E, double eval_fraction) {
  GPTConfig cfg = gpt_config(2, 16, 2, 16, 50, E);
  cfg.eval_capacity_fraction = eval_fraction;
  cfg.dropout = 0.0;
  return cfg;
}

std::vector<int32_t> sequence(int len, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> s(static_cast<size_t>(len));
  for (int32_t& id : s) id = 2 + static_cast<int32_t>(rng.below(48));
  return s;
}

// A right-padded batch of `seqs` (the longest row sets T unless `T` is given).
struct Batch {
  Tensor ids, lengths;
  int T;
};
Batch pad_batch(const std::vector<std::vector<int32_t>>& seqs, int T = 0) {
  for (const auto& s : seqs) T = std::max(T, static_cast<int>(s.size()));
  const int B = static_cast<int>(seqs.size());
  std::vector<int32_t> ids(static_cast<size_t>(B) * T, kPad), len;
  for (int b = 0; b < B; ++b) {
    std::copy(seqs[b].begin(), seqs[b].end(), ids.begin() + static_cast<size_t>(b) * T);
    len.push_back(static_cast<int32_t>(seqs[b].size()));
  }
  return {Tensor::from_i32(ids, {B, T}), Tensor::from_i32(len, {B}), T};
}

// Row b's first n positions of a (B, T, W) or (B*T, W) output, as floats.
std::vector<float> real_part(const Tensor& out, int b, int T, int n) {
  const int64_t W = out.size(-1);
  const std::vector<float> v = out.to_f32_vector();
  const size_t begin = static_cast<size_t>(b) * T * W;
  return std::vector<float>(v.begin() + begin, v.begin() + begin + static_cast<size_t>(n) * W);
}

// Kept assignments per expert, summed over the MoE layers of the last forward.
std::vector<int64_t> kept_per_expert(const GPT& m) {
  std::vector<int64_t> total;
  for (const MoEStats& st : m.moe_stats()) {
    total.resize(st.tokens_per_expert.size(), 0);
    for (size_t e = 0; e < total.size(); ++e) total[e] += st.tokens_per_expert[e];
  }
  return total;
}

// The one-sequence case of (1) on `dev`: hidden states of `seq` alone, and of `seq` in row `row`
// of 16 rows of 12 positions whose other rows are padding only, with or without the lengths.
struct OneInSixteen {
  Tensor alone, masked, unmasked;
  std::vector<int64_t> kept_alone, kept_masked;
};
OneInSixteen one_in_sixteen(GPT& model, const std::vector<int32_t>& seq, int row) {
  CounterRng rng(0, 0);
  OneInSixteen r;
  const int L = static_cast<int>(seq.size());
  r.alone = model.forward_hidden(Tensor::from_i32(seq, {1, L}), false, rng);
  r.kept_alone = kept_per_expert(model);
  std::vector<std::vector<int32_t>> rows(16);
  rows[static_cast<size_t>(row)] = seq;
  const Batch b = pad_batch(rows, 12);
  r.masked = model.forward_hidden(b.ids, false, rng, b.lengths);
  r.kept_masked = kept_per_expert(model);
  r.unmasked = model.forward_hidden(b.ids, false, rng);
  return r;
}

}  // namespace

// (1) E = 2 and the eval fraction 0.9. Alone, 8 tokens get Cap = ceil(7.2) = 8 slots per expert
// and make 8 assignments to each: nothing drops. In the batch, Cap = ceil(0.9 * 192) = 173. With
// top-2 of 2 experts every token makes one assignment to each expert, so unmasked padding fills
// 192 places in each queue and the last 19 top-2 assignments of each expert drop: among them
// every top-2 of row 15, whose tokens are the batch's last. With the mask the queues hold only
// the 8 real tokens and the row must come out bitwise as alone.
TEST(PaddingMask, OneSequencePaddedIntoABatchOf16ScoresAsAlone) {
  GPT model(moe_config(2, 0.9), 5);
  const std::vector<int32_t> seq = sequence(8, 6);
  for (int row : {15, 0, 7}) {
    const OneInSixteen r = one_in_sixteen(model, seq, row);
    const std::vector<float> alone = real_part(r.alone, 0, 8, 8);
    EXPECT_EQ(real_part(r.masked, row, 12, 8), alone) << "sequence in row " << row;
    EXPECT_EQ(r.kept_masked, r.kept_alone) << "statistics count real tokens only, row " << row;
    if (row == 15) {
      EXPECT_NE(real_part(r.unmasked, row, 12, 8), alone)
          << "without lengths the padding must push row 15 out of its experts: the case would "
             "not test the mask";
    }
  }
}

// (2) Sixteen sequences of 3 .. 16 tokens, E = 4, eval fraction 1.0 (Cap = N: nothing ever
// drops), batched as the evaluation scorer does (each batch padded to its longest row).
TEST(PaddingMask, BatchSizeAndOrderDoNotChangeTheLogits) {
  GPT model(moe_config(4, 1.0), 8);
  std::vector<std::vector<int32_t>> seqs;
  Rng rng(9);
  for (int i = 0; i < 16; ++i)
    seqs.push_back(sequence(3 + static_cast<int>(rng.below(14)), 100 + static_cast<uint64_t>(i)));
  int64_t real_tokens = 0;
  for (const auto& s : seqs) real_tokens += static_cast<int64_t>(s.size());

  std::vector<int> forward(16), shuffled(16);
  std::iota(forward.begin(), forward.end(), 0);
  shuffled = {11, 3, 15, 0, 7, 9, 1, 14, 5, 12, 2, 8, 13, 6, 10, 4};
  std::vector<std::vector<float>> reference;  // per sequence, from batch size 1
  for (int bs : {1, 7, 16})
    for (const std::vector<int>* order : {&forward, &shuffled}) {
      std::vector<std::vector<float>> got(16);
      std::vector<int64_t> kept_total;
      for (size_t begin = 0; begin < 16; begin += static_cast<size_t>(bs)) {
        std::vector<std::vector<int32_t>> rows;
        const size_t end = std::min<size_t>(16, begin + static_cast<size_t>(bs));
        for (size_t i = begin; i < end; ++i) rows.push_back(seqs[(*order)[i]]);
        const Batch b = pad_batch(rows);
        CounterRng r(0, 0);
        const Tensor logits = model.forward_logits(b.ids, r, b.lengths);  // (B*T, V)
        for (size_t i = begin; i < end; ++i) {
          const int id = (*order)[i];
          got[id] = real_part(logits, static_cast<int>(i - begin), b.T,
                              static_cast<int>(seqs[id].size()));
        }
        const std::vector<int64_t> kept = kept_per_expert(model);
        kept_total.resize(kept.size(), 0);
        for (size_t e = 0; e < kept.size(); ++e) kept_total[e] += kept[e];
      }
      const std::string what = "batch size " + std::to_string(bs) +
                               (order == &forward ? ", in order" : ", shuffled");
      if (reference.empty()) reference = got;
      for (int i = 0; i < 16; ++i) EXPECT_EQ(got[i], reference[i]) << what << ", sequence " << i;
      // nothing drops and padding makes no assignment: 2 per real token in the one MoE layer
      EXPECT_EQ(std::accumulate(kept_total.begin(), kept_total.end(), int64_t{0}),
                2 * real_tokens)
          << what;
    }
}

// (3) Lengths are checked, a dense model ignores them, and a batch without padding gives bitwise
// what it gave without lengths.
TEST(PaddingMask, LengthsAreCheckedAndNoPaddingChangesNothing) {
  GPT model(moe_config(4, 0.5), 3);
  const Batch b = pad_batch({sequence(6, 1), sequence(6, 2)});
  CounterRng rng(0, 0);
  const std::vector<float> plain = model.forward_hidden(b.ids, false, rng).to_f32_vector();
  EXPECT_EQ(model.forward_hidden(b.ids, false, rng, b.lengths).to_f32_vector(), plain);
  for (const Tensor& bad : {Tensor::from_i32({6}, {1}), Tensor::from_i32({6, 7}, {2}),
                            Tensor::from_i32({6, -1}, {2}), Tensor::from_f32({6, 6}, {2})}) {
    try {
      model.forward_hidden(b.ids, false, rng, bad);
      ADD_FAILURE() << "expected an error for lengths " << bad.desc();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
    }
  }
  GPT dense(gpt_config(2, 16, 2, 16, 50), 3);
  const Batch p = pad_batch({sequence(6, 1), sequence(2, 2)});
  EXPECT_EQ(dense.forward_hidden(p.ids, false, rng, p.lengths).to_f32_vector(),
            dense.forward_hidden(p.ids, false, rng).to_f32_vector());
  EXPECT_TRUE(dense.moe_capacity_rule(false).empty());
  EXPECT_NE(model.moe_capacity_rule(false).find("ceil(0.5 * N)"), std::string::npos);
}

// (4) Fine-tuning runs the model in training mode on padded batches. E = 2, capacity factor 0.9,
// no dropout. Alone, 7 tokens get Cap = ceil(0.9 * 2 * 4) = 8 >= 7: nothing drops. In a batch of
// 4 rows of 9 (lengths 3, 0, 2, 7; the sequence last) Cap = ceil(0.9 * 36) = 33: the 12 real
// tokens fit, while unmasked padding would overflow both queues at their ends, where the
// sequence is. The gradient of sum(h^2) over the sequence's positions must then reach every
// parameter as from the sequence alone: no other row touches it through attention (causal,
// row-wise) or through expert capacity (nothing of theirs drops and padding takes no slot).
// The aux loss is left out: its me averages P over all N rows, padding included, by design.
TEST(PaddingMask, TrainingWithLengthsGivesTheGradientsOfTheSequenceAlone) {
  GPTConfig cfg = moe_config(2, 0.0);
  cfg.capacity_factor = 0.9;
  GPT model(cfg, 12);
  const std::vector<int32_t> seq = sequence(7, 13);
  // sum over the positions of row `row`, first 7, of h^2, with h (B, T, C)
  auto grads = [&](const Tensor& ids, const Tensor& lengths, int row) {
    model.params().zero_grad();
    CounterRng rng(0, 0);
    const Tensor h = model.forward_hidden(ids, true, rng, lengths);  // (B, T, C)
    const int64_t T = h.size(1), C = h.size(2);
    std::vector<float> w(static_cast<size_t>(h.numel()), 0.0f);  // 1 on the sequence's positions
    std::fill(w.begin() + row * T * C, w.begin() + (row * T + 7) * C, 1.0f);
    backward(sum(mul(mul(h, h), Tensor::from_f32(w, h.shape()))));
    std::vector<std::vector<double>> g;
    for (const auto& entry : model.params().all()) g.push_back(entry.second.grad().to_f64_vector());
    return g;
  };
  const auto alone = grads(Tensor::from_i32(seq, {1, 7}), Tensor(), 0);
  const Batch b = pad_batch({sequence(3, 14), {}, sequence(2, 15), seq}, 9);
  const auto batched = grads(b.ids, b.lengths, 3);
  ASSERT_EQ(batched.size(), alone.size());
  for (size_t k = 0; k < alone.size(); ++k)
    expect_allclose(batched[k], alone[k], Tolerance{1e-6, 1e-5}, "parameter " + std::to_string(k));
}

// ---------------------------------------------------------------------------------------------
// GPU (skipped without one): the same one-sequence case on the device. The GPU's products are
// not bitwise the same for different batch shapes, so the comparison is within the model
// tolerance; the routing (E = 2: no near ties to decide) and its statistics are exact.

TEST(CudaPaddingMask, OneSequencePaddedIntoABatchOf16ScoresAsAloneOnGpu) {
  MOE_SKIP_WITHOUT_CUDA();
  GPT model(moe_config(2, 0.9), 5, cuda());
  GPT on_cpu(moe_config(2, 0.9), 5);
  const std::vector<int32_t> seq = sequence(8, 6);
  for (int row : {15, 0}) {
    const OneInSixteen g = one_in_sixteen(model, seq, row), c = one_in_sixteen(on_cpu, seq, row);
    ASSERT_TRUE(g.masked.device().is_cuda());
    const std::vector<float> alone = real_part(g.alone, 0, 8, 8);
    const std::vector<float> in = real_part(g.masked, row, 12, 8);
    expect_allclose(std::vector<double>(in.begin(), in.end()),
                    std::vector<double>(alone.begin(), alone.end()), tol::model,
                    "row " + std::to_string(row) + " vs alone on the GPU");
    const std::vector<float> cpu_in = real_part(c.masked, row, 12, 8);
    expect_allclose(std::vector<double>(in.begin(), in.end()),
                    std::vector<double>(cpu_in.begin(), cpu_in.end()), tol::model,
                    "row " + std::to_string(row) + " GPU vs CPU");
    EXPECT_EQ(g.kept_masked, g.kept_alone) << "row " << row;
    EXPECT_EQ(g.kept_masked, c.kept_masked) << "row " << row;
  }
}
