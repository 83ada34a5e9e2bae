// Fine-tuning on W ranks against one process (SPEC §4 "eval and finetune under mpirun", SPEC §7;
// notes/finetune.md "Under mpirun"). Real Finetuner runs on the synthetic good/bad task of
// tests/finetune (ft_fixtures.h), every rank of the world taking part.
//
//   MatchesOneProcessMoe / MatchesOneProcessDense / MatchesOneProcessWithGradientScaling
//       W ranks fine-tune a tiny model (L2 C32, E = 4 experts in layer 1, or dense) for 2 epochs
//       of 37 examples in batches of 8 — the last batch is short, so at W = 4 one rank holds only
//       dummy rows — next to a one-process Finetuner on the same data in the same process. With
//       the training capacity factor 4 (Cap >= 2N) and --eval-capacity-fraction 1 nothing is
//       dropped, and with --aux-loss-weight 0 and --dropout 0 the two minimise the same loss
//       (each rank's load-balancing loss covers its own tokens only, and dropout masks are drawn
//       per rank: both are left out of the comparison by design). Checked: every step's logged
//       loss and gradient norm, each epoch's mean loss and dev accuracy (equal), every dev logit,
//       a checkpoint saved by W ranks holds the full expert tensors, bitwise those the ranks
//       hold, and best.bin (the same epoch) is within tolerance of the one-process file.
//       Tolerance: float32 sums in another order (GradSync adds rank by rank, the experts run as
//       (E/W, W*Cap) batches; one step's gradients agree to 1e-8), grown through 10 Adam steps
//       of lr 3e-3: 2e-4 relative + 2e-5 on losses and gradient norms; 1e-4 absolute on logits
//       and parameters; 5e-3 on the router, and on the experts under "gradient" scaling (see
//       the comments at the check); the key bias left out (its gradient is zero in exact
//       arithmetic). Measured at W = 2 and 4: losses 3e-6 relative, logits 7e-6, parameters
//       1.3e-6, the router and the "gradient"-scaled experts up to 1e-3.
//   DevAccuracyEqualsOneRankWhenNothingDrops
//       a fine-tuned MoE checkpoint is scored (--epochs 0) at W' = 1, 2 and 4 (DistGroupScope);
//       the printed "dev accuracy of the checkpoint" line is the same at every W'.
//   BadInputOnOneRankIsAClearErrorOnEveryRank
//       the last rank reads a malformed dev.tsv (its own folder, the same relative path), another
//       valid dev.tsv, another --batch-size; a batch size that does not divide over W; E % W != 0:
//       every rank throws an Error naming the problem (nothing hangs).
//   StopOnOneRankStopsEveryRank, NonFiniteOnOneRankStopsEveryRank
//       Ctrl-C seen by the last rank only: every rank stops at the same step with 130 and rank 0
//       writes interrupted.bin with the full experts; a NaN in one rank's head: every rank
//       returns 3, and nothing is saved.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "dist/collect.h"
#include "dist/dist.h"
#include "finetune/finetuner.h"
#include "finetune/ft_fixtures.h"
#include "io/checkpoint.h"
#include "io/json.h"
#include "nn/gpt_io.h"

using namespace moe;
namespace fs = std::filesystem;

namespace {

// The tolerances of the file comment.
constexpr double kLossRel = 2e-4, kLossAbs = 2e-5, kLogitAbs = 1e-4, kParamAbs = 1e-4,
                 kLooseAbs = 5e-3;

// The same folder name on every rank (rank 0's pid).
std::string shared_dir(const std::string& name) {
  const std::string pid = dist_broadcast(std::to_string(::getpid()));
  return (fs::temp_directory_path() / ("moe-gpt-ftmpi-" + name + "-" + pid)).string();
}

struct Fixture {
  std::string dir, ckpt;
};

// Rank 0 writes the task files and a tiny "pretrained" checkpoint; the others wait for them.
// Capacity factor 4 gives Cap = 8*ceil(N/4) >= 2N slots per expert: no training token drops.
Fixture make_fixture(const std::string& name, int experts, int n_train = 37, int n_dev = 29) {
  Fixture f;
  f.dir = shared_dir(name);
  f.ckpt = f.dir + "/pretrained.bin";
  if (is_root()) {
    fs::remove_all(f.dir);
    fs::create_directories(f.dir);
    const std::string corpus = moe::testing::write_good_bad_task(f.dir, n_train, n_dev, 42);
    GPTConfig cfg = moe::testing::tiny_config();
    cfg.moe_experts = experts;
    if (experts > 0) cfg.capacity_factor = 4.0;
    moe::testing::write_tiny_checkpoint(f.dir, corpus, cfg, 300, 7);
  }
  dist_barrier();
  return f;
}

FinetuneConfig config(const Fixture& f, const std::string& out_dir) {
  FinetuneConfig c;
  c.ckpt = f.ckpt;
  c.data.task = "sst2";
  c.data.train_file = f.dir + "/train.tsv";
  c.data.dev_file = f.dir + "/dev.tsv";
  c.data.data_dir = "";
  c.epochs = 2;
  c.batch_size = 8;
  c.lr = 3e-3;
  c.warmup = 0.1;
  c.dropout = 0.0;
  c.seed = 1;
  c.log_every = 1;
  c.aux_loss_weight = 0.0;
  c.eval_capacity_fraction = 1.0;  // Cap = N: every assignment finds a slot
  c.out_dir = out_dir;
  c.quiet = true;
  c.transport = "host";
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// The step lines of a finetune_log.jsonl: (loss, grad_norm) per step.
std::vector<std::pair<double, double>> step_lines(const std::string& path) {
  std::vector<std::pair<double, double>> out;
  std::istringstream in(slurp(path));
  for (std::string line; std::getline(in, line);) {
    const Json j = parse_json(line);
    if (j.find("loss") != nullptr)
      out.emplace_back(j.at("loss").as_number(), j.at("grad_norm").as_number());
  }
  return out;
}

void expect_near_rel(double got, double want, const std::string& what) {
  EXPECT_NEAR(got, want, kLossAbs + kLossRel * std::fabs(want)) << what << " on rank "
                                                                 << dist().rank;
}

// W ranks and one process (in each rank's own folder) run the same fine-tuning; see the file
// comment for what is compared.
void expect_matches_one_process(int experts, const std::string& scaling) {
  const std::string tag = str_cat("match-e", experts, "-", scaling);
  const Fixture f = make_fixture(tag, experts);
  FinetuneConfig many = config(f, f.dir + "/ranks");
  many.expert_scaling = scaling;
  FinetuneConfig one = config(f, str_cat(f.dir, "/one-rank", dist().rank));
  one.expert_scaling = scaling;
  one.distributed = false;
  Finetuner ranks(many), ref(one);
  ASSERT_EQ(ranks.world(), dist().world);
  ASSERT_EQ(ranks.run(), 0);
  ASSERT_EQ(ref.run(), 0);
  ASSERT_EQ(ranks.history().size(), ref.history().size());
  for (size_t e = 0; e < ref.history().size(); ++e) {
    expect_near_rel(ranks.history()[e].train_loss, ref.history()[e].train_loss,
                    str_cat("epoch ", e + 1, " mean loss"));
    EXPECT_EQ(ranks.history()[e].dev_accuracy, ref.history()[e].dev_accuracy) << "epoch " << e + 1;
  }
  const std::vector<float>& a = ranks.dev_logits();
  const std::vector<float>& b = ref.dev_logits();
  // No ASSERT between collectives: a rank that returned early would leave the others waiting.
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  EXPECT_LE(worst, kLogitAbs) << "largest dev logit difference on rank " << dist().rank;
  // Every rank holds the gathered logits: rank 0's and this rank's agree bitwise.
  const std::vector<float> root_logits =
      dist_all_gather_dim0(Tensor::from_f32(a, {static_cast<int64_t>(a.size())}))
          .slice_view(0, 0, static_cast<int64_t>(a.size())).to_f32_vector();
  EXPECT_EQ(root_logits, a) << "rank " << dist().rank << " computed other dev logits than rank 0";
  // A checkpoint saved by W ranks holds full experts, bitwise the ranks' slices gathered
  // (collective: every rank saves and gathers, rank 0 writes and compares).
  const std::string final_path = f.dir + "/final.bin";
  ranks.model().save(final_path, {});
  dist_barrier();
  const GPT& m = ranks.model().gpt();
  const Checkpoint saved = is_root() ? load_checkpoint(final_path) : Checkpoint();
  for (const auto& [name, t] : m.params().all()) {
    const Tensor full = gather_if_expert("param/" + name, t, m.expert_parallel());
    if (!is_root()) continue;
    EXPECT_EQ(full.to_f32_vector(), saved.get_tensor("param/" + name).to_f32_vector()) << name;
  }
  if (!is_root()) return;
  const Checkpoint mine = load_checkpoint(ranks.best_path());
  // Rank 0: every step of the log, and best.bin against the one-process one.
  const auto sa = step_lines(many.out_dir + "/finetune_log.jsonl");
  const auto sb = step_lines(one.out_dir + "/finetune_log.jsonl");
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_EQ(sa.size(), 10u);  // 2 epochs of ceil(37 / 8) steps
  // "gradient" scaling keeps sqrt(W) times the exact expert gradient: the norm differs then.
  const bool same_norm = scaling == "lr" || dist().world == 1 || experts == 0;
  for (size_t s = 0; s < sa.size(); ++s) {
    expect_near_rel(sa[s].first, sb[s].first, str_cat("loss of step ", s + 1));
    if (same_norm) expect_near_rel(sa[s].second, sb[s].second, str_cat("grad norm of step ", s + 1));
  }
  const Checkpoint theirs = load_checkpoint(ref.best_path());
  const int64_t C = m.config().d_model;
  for (const auto& [name, t] : mine.tensors) {
    const std::vector<float> x = t.to_f32_vector(), y = theirs.get_tensor(name).to_f32_vector();
    ASSERT_EQ(x.size(), y.size()) << name;
    // The key bias (elements [C, 2C) of qkv.bias) has an exactly-zero gradient (softmax ignores a
    // shift common to all keys), so its f32 gradient is rounding noise that differs with the order
    // of the sums, and Adam turns noise into full-size steps of random sign. It changes no output.
    // The router's gradients agree to 1e-8 after one step, but they are small (no aux loss) and
    // its softmax is blind to a shift common to all experts, so Adam's per-element division
    // spreads the rounding: 1e-3 apart after 10 steps (measured). Its effect on the outputs is
    // checked by the logits above.
    const bool key_bias = name.size() > 13 && name.compare(name.size() - 13, 13, "attn.qkv.bias") == 0;
    // Under "gradient" scaling the experts' gradients are sqrt(W) times the exact ones: Adam
    // cancels the factor except against its eps, which matters for the smallest gradients.
    const bool loose = name.find(".moe.gate.") != std::string::npos ||
                       (!same_norm && GPT::is_expert_param(name.substr(name.find('/') + 1)));
    const double tol = loose ? kLooseAbs : kParamAbs;
    for (size_t i = 0; i < x.size(); ++i) {
      if (key_bias && static_cast<int64_t>(i) >= C && static_cast<int64_t>(i) < 2 * C) continue;
      ASSERT_NEAR(x[i], y[i], tol) << name << "[" << i << "]";
    }
  }
}

void cleanup(const std::string& dir) {
  dist_barrier();
  if (is_root()) fs::remove_all(dir);
}

}  // namespace

TEST(FinetuneMpi, MatchesOneProcessMoe) {
  expect_matches_one_process(4, "lr");
  cleanup(shared_dir("match-e4-lr"));
}

TEST(FinetuneMpi, MatchesOneProcessWithGradientScaling) {
  expect_matches_one_process(4, "gradient");
  cleanup(shared_dir("match-e4-gradient"));
}

TEST(FinetuneMpi, MatchesOneProcessDense) {
  expect_matches_one_process(0, "gradient");
  cleanup(shared_dir("match-e0-gradient"));
}

namespace {

// Runs `f` with std::cout and std::cerr captured; returns what went to std::cout.
std::string captured_stdout(const std::function<void()>& f) {
  std::ostringstream out, err;
  std::streambuf* o = std::cout.rdbuf(out.rdbuf());
  std::streambuf* e = std::cerr.rdbuf(err.rdbuf());
  try {
    f();
  } catch (...) {
    std::cout.rdbuf(o);
    std::cerr.rdbuf(e);
    throw;
  }
  std::cout.rdbuf(o);
  std::cerr.rdbuf(e);
  return out.str();
}

// The text after `key` up to the end of its line ("" when absent).
std::string line_after(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return "";
  const size_t from = at + key.size();
  return text.substr(from, text.find('\n', from) - from);
}

}  // namespace

TEST(FinetuneMpi, DevAccuracyEqualsOneRankWhenNothingDrops) {
  const Fixture f = make_fixture("accuracy", 4, 64, 61);
  // A fine-tuned checkpoint to score: one process on rank 0 (a run of its own, as a user would).
  const std::string tuned = f.dir + "/tuned";
  if (is_root()) {
    FinetuneConfig c = config(f, tuned);
    c.distributed = false;
    Finetuner ft(c);
    EXPECT_EQ(ft.run(), 0);
  }
  dist_barrier();
  std::string printed_at_one;
  std::vector<float> logits_at_one;
  for (int w : {1, 2, 4}) {
    if (dist().world % w != 0) continue;
    DistGroupScope group(w);
    FinetuneConfig c = config(f, str_cat(f.dir, "/score-w", w, "-g", dist_broadcast(
                                             std::to_string(::getpid()))));
    c.ckpt = tuned + "/best.bin";
    c.epochs = 0;
    c.quiet = false;
    std::string out;
    std::vector<float> logits;
    out = captured_stdout([&] {
      Finetuner ft(c);
      EXPECT_EQ(ft.run(), 0);
      logits = ft.dev_logits();
    });
    if (!is_root()) continue;  // group rank 0 prints
    const std::string acc = line_after(out, "dev accuracy of the checkpoint: ");
    EXPECT_FALSE(acc.empty()) << "W' = " << w << " printed no accuracy:\n" << out;
    if (w == 1) {
      printed_at_one = acc;
      logits_at_one = logits;
      continue;
    }
    EXPECT_EQ(acc, printed_at_one) << "dev accuracy printed at W' = " << w << " differs from W' = 1";
    double worst = 0;
    for (size_t i = 0; i < std::min(logits.size(), logits_at_one.size()); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - logits_at_one[i]));
    EXPECT_LE(worst, 1e-4) << "dev logits at W' = " << w << " against W' = 1";
  }
  cleanup(f.dir);
}

namespace {

// Every rank's error from constructing a Finetuner with `c` ("(no error)" if none).
std::string construction_error(const FinetuneConfig& c) {
  try {
    Finetuner ft(c);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(FinetuneMpi, BadInputOnOneRankIsAClearErrorOnEveryRank) {
  const int W = dist().world, last = W - 1;
  if (W == 1) GTEST_SKIP() << "needs several ranks";
  const Fixture f = make_fixture("bad", 4);
  const std::string prefix = str_cat("rank ", last, "/", W, ": ");
  // Each rank reads "dev.tsv" from its own working folder; the last rank's copy is malformed.
  const fs::path home = fs::current_path();
  const std::string mine = str_cat(f.dir, "/cwd", dist().rank);
  fs::create_directories(mine);
  const std::string good = slurp(f.dir + "/dev.tsv");
  {
    std::ofstream out(mine + "/dev.tsv");
    out << (dist().rank == last ? std::string("sentence\tlabel\nfine words \t1\nbad row \tmaybe\n")
                                : good);
  }
  fs::current_path(mine);
  FinetuneConfig c = config(f, f.dir + "/out");
  c.data.dev_file = "dev.tsv";
  std::string e = construction_error(c);
  EXPECT_TRUE(has(e, "dev.tsv:3")) << e;
  EXPECT_TRUE(has(e, "maybe")) << e;
  if (dist().rank != last) {
    EXPECT_TRUE(has(e, prefix)) << e;
  }
  // A valid file with other contents: refused before the first exchange, naming the dev data.
  {
    std::ofstream out(mine + "/dev.tsv");
    out << (dist().rank == last ? good + "one more good row \t1\n" : good);
  }
  e = construction_error(c);
  EXPECT_TRUE(has(e, "the dev examples (dev.tsv)")) << e;
  EXPECT_TRUE(has(e, "HINT: every rank must read the same files")) << e;
  fs::current_path(home);
  // Another flag on one rank.
  c = config(f, f.dir + "/out");
  if (dist().rank == last) c.batch_size = 16;
  e = construction_error(c);
  EXPECT_TRUE(has(e, str_cat("--batch-size is '16' on rank ", last, " but '8' on rank 0"))) << e;
  // A global batch that does not split evenly, on every rank.
  c = config(f, f.dir + "/out");
  c.batch_size = W + 1;
  e = construction_error(c);
  EXPECT_TRUE(has(e, str_cat("must divide evenly over the ", W, " ranks"))) << e;
  // E % W != 0: 4 experts on 3 ranks cannot happen here (W is 1, 2 or 4), so 2 experts on 4.
  if (W == 4) {
    const Fixture two = make_fixture("bad-e2", 2);
    e = construction_error(config(two, two.dir + "/out"));
    EXPECT_TRUE(has(e, "E % W must be 0")) << e;
    cleanup(two.dir);
  }
  cleanup(f.dir);
}

TEST(FinetuneMpi, StopOnOneRankStopsEveryRank) {
  const Fixture f = make_fixture("stop", 4);
  FinetuneConfig c = config(f, f.dir + "/out");
  Finetuner ft(c);
  if (dist().rank == dist().world - 1) StopSignals::request(SIGINT);
  EXPECT_EQ(ft.run(), 130);
  EXPECT_EQ(ft.steps_done(), 1) << "rank " << dist().rank << " stopped at another step";
  StopSignals::request(0);
  const std::string path = c.out_dir + "/interrupted.bin";
  dist_barrier();
  if (is_root()) {
    const Checkpoint ck = load_checkpoint(path);
    EXPECT_EQ(ck.get_tensor("param/blocks.1.moe.experts.w1").size(0), 4)
        << "interrupted.bin must hold every expert";
    EXPECT_TRUE(has(slurp(c.out_dir + "/results.json"), "\"interrupted\": true"));
  }
  cleanup(f.dir);
}

TEST(FinetuneMpi, NonFiniteOnOneRankStopsEveryRank) {
  const Fixture f = make_fixture("nan", 4);
  FinetuneConfig c = config(f, f.dir + "/out");
  Finetuner ft(c);
  if (dist().rank == dist().world - 1) {
    Tensor b = ft.model().params().get("head.bias");
    b.data<float>()[0] = NAN;
  }
  const std::vector<float> before = ft.model().params().get("head.weight").to_f32_vector();
  EXPECT_EQ(ft.run(), 3);
  EXPECT_EQ(ft.steps_done(), 0);
  EXPECT_EQ(ft.model().params().get("head.weight").to_f32_vector(), before)
      << "rank " << dist().rank << " applied an update";
  dist_barrier();
  if (is_root()) {
    EXPECT_FALSE(fs::exists(c.out_dir + "/best.bin"));
  }
  cleanup(f.dir);
}
