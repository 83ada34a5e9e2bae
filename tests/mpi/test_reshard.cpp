// Checkpoints of expert-parallel training (SPEC §4; notes/distributed.md "Checkpoints"): a
// checkpoint written by W ranks holds the full expert tensors and loads on any W' that divides
// E, and a resumed run continues the identical curve. Trainer-level: real runs of `train`'s
// Trainer on the embedded corpus, every rank of a group taking part.
//
//   ReshardedLoadIsBitwise     (needs 4 ranks) W = 4 trains and saves; at W' = 1, 2 and 4 every
//                              tensor gathered from the ranks equals the file's, bit for bit, and
//                              with an eval capacity where nothing drops the model evaluates the
//                              same as at W' = 1.
//   ResumeAtTwoRanksIsIdentical (needs 2 or 4 ranks, groups of 2) a W = 2 run of 6 steps, and a
//                              run that stops at step 3 and resumes, give the same losses and the
//                              same checkpoint tensors, bit for bit.
//   MismatchedSplitIsAClearError (needs 2 or 4 ranks) E = 6 on 4 ranks, or E = 3 on 2 ranks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dist/dist.h"
#include "io/checkpoint.h"
#include "nn/gpt_io.h"
#include "train/trainer.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

// The same folder name on every rank of the world (rank 0's pid), one per group.
std::string shared_dir(const std::string& name, int group) {
  const std::string pid = dist_broadcast(std::to_string(::getpid()));
  return (fs::temp_directory_path() / ("moe-gpt-mpi-" + name + "-" + pid + "-g" +
                                       std::to_string(group))).string();
}

TrainConfig moe_config(const std::string& out_dir, int experts) {
  TrainConfig c;
  c.model.n_layer = 2;
  c.model.d_model = 32;
  c.model.n_head = 2;
  c.model.seq_len = 16;
  c.model.dropout = 0.1;
  c.model.moe_experts = experts;
  c.data.cache_dir = "/tmp/moe-gpt-test-cache";
  c.data.vocab_size = 512;
  c.batch_size = 4;
  c.steps = 6;
  c.lr = 3e-3;
  c.warmup = 0.25;
  c.out_dir = out_dir;
  c.eval_every = 3;
  c.eval_batches = 1;
  c.ckpt_every = 3;
  c.quiet = true;
  c.transport = "host";
  return c;
}

// The full expert tensors of `model` (gathered on group rank 0) equal those of `ck`, bitwise.
void expect_params_equal_file(const GPT& model, const Checkpoint& ck, const std::string& what) {
  for (const auto& [name, t] : model.params().all()) {
    const Tensor full = gather_if_expert("param/" + name, t, model.expert_parallel());
    if (!is_root()) continue;
    const std::vector<float> a = full.to(cpu()).to_f32_vector(),
                             b = ck.get_tensor("param/" + name).to_f32_vector();
    ASSERT_EQ(a, b) << name << " " << what;
  }
}

}  // namespace

TEST(Reshard, ReshardedLoadIsBitwise) {
  if (dist().world != 4) GTEST_SKIP() << "needs 4 ranks (make test runs -np 4)";
  const std::string dir = shared_dir("reshard", 0);
  {
    Trainer t(moe_config(dir, 4));
    ASSERT_EQ(t.run(), 0);
  }
  dist_barrier();
  const Checkpoint ck = load_checkpoint(dir + "/checkpoint.bin");
  // Reference scores at W' = 1 (one process), with a capacity where nothing drops.
  std::vector<float> want;
  Tensor ids;
  {
    std::vector<int32_t> v(2 * 16);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>((i * 31 + 7) % 500);
    ids = Tensor::from_i32(v, {2, 16});
  }
  for (int w : {1, 2, 4}) {
    DistGroupScope group(w);
    std::unique_ptr<Transport> tr = make_transport("host", cpu());
    auto model2 = gpt_from_checkpoint(ck, cpu(), ExpertParallel{dist().rank, w, tr.get()});
    expect_params_equal_file(*model2, ck, "loaded at W' = " + std::to_string(w));
    model2->set_eval_capacity_fraction(2.0);  // Cap = 2N: nothing can drop
    CounterRng rng;
    const std::vector<float> got = model2->forward_logits(ids, rng).to_f32_vector();
    if (w == 1) want = got;
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-5 * std::fabs(want[i]))
          << "logit " << i << " at W' = " << w << " differs from W' = 1";
  }
  dist_barrier();
  if (is_root()) fs::remove_all(dir);
}

TEST(Reshard, ResumeAtTwoRanksIsIdentical) {
  if (dist().world % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  DistGroupScope group(2);  // W = 2 (two groups side by side at -np 4)
  const std::string a = shared_dir("straight", 0), b = shared_dir("halves", 0);
  TrainConfig ca = moe_config(a, 4);
  Trainer straight(ca);
  std::vector<double> losses;  // this rank's share's losses
  for (int i = 0; i < 6; ++i) losses.push_back(straight.train_step().loss.item());

  TrainConfig cb = moe_config(b, 4);
  std::vector<double> resumed;
  {
    Trainer first_half(cb);
    for (int i = 0; i < 3; ++i) resumed.push_back(first_half.train_step().loss.item());
    first_half.save_checkpoint_to(b + "/half.bin");
  }
  dist_barrier();  // rank 0 wrote the file; every rank reads it
  TrainConfig cr = cb;
  cr.resume = b + "/half.bin";
  Trainer second_half(cr);
  EXPECT_EQ(second_half.step(), 3);
  for (int i = 0; i < 3; ++i) resumed.push_back(second_half.train_step().loss.item());
  ASSERT_EQ(losses.size(), resumed.size());
  for (size_t i = 0; i < losses.size(); ++i)
    EXPECT_EQ(losses[i], resumed[i]) << "step " << i << " on rank " << dist().rank;
  const auto& pa = straight.model().params().all();
  const auto& pb = second_half.model().params().all();
  for (size_t k = 0; k < pa.size(); ++k)  // this rank's experts and the replicated parameters
    EXPECT_EQ(pa[k].second.to_f32_vector(), pb[k].second.to_f32_vector()) << pa[k].first;
  dist_barrier();
  if (is_root()) {
    fs::remove_all(a);
    fs::remove_all(b);
  }
}

TEST(Reshard, MismatchedSplitIsAClearError) {
  if (dist().world == 1) GTEST_SKIP() << "needs several ranks";
  const std::string dir = shared_dir("mismatch", 0);
  // A checkpoint of E = 6 experts (written by one process), loaded on 4 ranks; or E = 3 on 2.
  const int E = dist().world == 4 ? 6 : 3;
  GPTConfig cfg = moe_config(dir, E).model;
  cfg.vocab_size = 64;
  Checkpoint ck;
  ck.path = "mem.ckpt";
  {
    GPT one(cfg, 1, cpu());
    add_gpt_to_checkpoint(ck, one);
  }
  std::unique_ptr<Transport> tr = make_transport("host", cpu());
  try {
    gpt_from_checkpoint(ck, cpu(), ExpertParallel{dist().rank, dist().world, tr.get()});
    FAIL() << "E = " << E << " on " << dist().world << " ranks was accepted";
  } catch (const Error& e) {  // the message names the file and the fix
    const std::string m = e.what();
    EXPECT_NE(m.find("checkpoint mem.ckpt has " + std::to_string(E) + " experts per MoE layer"),
              std::string::npos) << m;
    EXPECT_NE(m.find("HINT: run it with a number of ranks that divides"), std::string::npos) << m;
  }
}
