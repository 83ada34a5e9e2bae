// moe_report.h — what training says about routing (SPEC §3, last line; notes/moe-training.md).
//
// Per logged step and MoE layer: l_aux, the fraction of assignments dropped at capacity, tokens
// per expert (min, max, coefficient of variation = std/mean; 0 is perfect balance) and the router
// entropy (nats; ln E is uniform routing). At the end of a run, two SVG pictures:
//   moe_tokens_per_expert.svg  a heat map, rows = (layer, expert), columns = logged steps, cell =
//                              the expert's share of that layer's kept assignments;
//   moe_domain_routing.svg     (embedded corpus only) rows = (layer, domain), columns = experts:
//                              where the tokens of each synthetic domain are sent.
#pragma once
#include <string>
#include <vector>

#include "data/bpe.h"
#include "moe/moe_layer.h"
#include "nn/gpt.h"

namespace moe {

struct ExpertLoad {
  int64_t min = 0, max = 0;
  double cv = 0;  // coefficient of variation of tokens per expert
};
ExpertLoad expert_load(const std::vector<int64_t>& tokens_per_expert);

// JSON array of per-layer statistics: [{"layer":1,"l_aux":..,"dropped":..,...}, ...]
std::string moe_stats_json(const std::vector<int>& layers, const std::vector<MoEStats>& stats);
// One short text line for the progress output: "moe: l_aux 1.02 drop 3.1% cv 0.21".
std::string moe_stats_line(const std::vector<MoEStats>& stats);

class RoutingHistory {
 public:
  void add(int64_t step, const std::vector<MoEStats>& stats);
  bool empty() const { return steps_.empty(); }
  void write_svg(const std::string& path, const std::vector<int>& layers) const;

 private:
  std::vector<int64_t> steps_;
  std::vector<std::vector<std::vector<double>>> share_;  // [step][layer][expert]
};

// Route documents of each synthetic domain through `model` (no grad, no dropout) and draw where
// they go. T and B are taken from the model's context and a small batch.
void write_domain_routing_svg(GPT& model, const BpeTokenizer& tok, const std::string& path);

}  // namespace moe
