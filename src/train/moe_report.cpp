// moe_report.cpp — routing statistics, their history and the two SVG pictures (moe_report.h).
#include "train/moe_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/autograd.h"
#include "data/synthetic.h"
#include "io/svg.h"
#include "io/text_io.h"

namespace moe {

ExpertLoad expert_load(const std::vector<int64_t>& tpe) {
  ExpertLoad l;
  if (tpe.empty()) return l;
  l.min = *std::min_element(tpe.begin(), tpe.end());
  l.max = *std::max_element(tpe.begin(), tpe.end());
  double mean = 0, var = 0;
  for (int64_t v : tpe) mean += static_cast<double>(v);
  mean /= static_cast<double>(tpe.size());
  for (int64_t v : tpe) var += (v - mean) * (v - mean);
  var /= static_cast<double>(tpe.size());
  l.cv = mean > 0 ? std::sqrt(var) / mean : 0.0;
  return l;
}

static std::string num(double v, const char* f = "%.5g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A number inside log.jsonl: JSON has no NaN or infinity, so those become null (notes/design.md
// "Hardening": every log line stays valid JSON).
static std::string json_num(double v) { return std::isfinite(v) ? num(v) : "null"; }

std::string moe_stats_json(const std::vector<int>& layers, const std::vector<MoEStats>& stats) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < stats.size(); ++i) {
    const MoEStats& s = stats[i];
    const ExpertLoad l = expert_load(s.tokens_per_expert);
    os << (i ? "," : "") << "{\"layer\":" << layers[i] << ",\"l_aux\":" << json_num(s.l_aux)
       << ",\"dropped\":" << json_num(s.fraction_dropped) << ",\"tokens_per_expert_min\":"
       << l.min << ",\"tokens_per_expert_max\":" << l.max << ",\"tokens_per_expert_cv\":"
       << json_num(l.cv) << ",\"router_entropy\":" << json_num(s.router_entropy)
       << ",\"capacity\":" << s.capacity << "}";
  }
  os << "]";
  return os.str();
}

std::string moe_stats_line(const std::vector<MoEStats>& stats) {
  if (stats.empty()) return "";
  double aux = 0, drop = 0, cv = 0;
  for (const MoEStats& s : stats) {
    aux += s.l_aux;
    drop += s.fraction_dropped;
    cv += expert_load(s.tokens_per_expert).cv;
  }
  const double n = static_cast<double>(stats.size());
  return " | moe l_aux " + num(aux / n, "%.3f") + " drop " + num(100 * drop / n, "%.1f") +
         "% cv " + num(cv / n, "%.2f");
}

void RoutingHistory::add(int64_t step, const std::vector<MoEStats>& stats) {
  std::vector<std::vector<double>> per_layer;
  for (const MoEStats& s : stats) {
    double total = 0;
    for (int64_t v : s.tokens_per_expert) total += static_cast<double>(v);
    std::vector<double> share;
    for (int64_t v : s.tokens_per_expert) share.push_back(total > 0 ? v / total : 0.0);
    per_layer.push_back(share);
  }
  steps_.push_back(step);
  share_.push_back(per_layer);
}

void RoutingHistory::write_svg(const std::string& path, const std::vector<int>& layers) const {
  if (steps_.empty()) return;
  // At most ~48 columns: thin the logged steps evenly so the picture stays readable.
  const size_t n = steps_.size(), cols = std::min<size_t>(n, 48);
  std::vector<size_t> pick;
  for (size_t c = 0; c < cols; ++c) pick.push_back(cols == 1 ? n - 1 : c * (n - 1) / (cols - 1));
  Heatmap h;
  h.title = "Tokens per expert";
  h.x_label = "training step";
  h.y_label = "MoE layer / expert";
  h.colorbar_label = "share of the layer's tokens";
  for (size_t c : pick) h.col_labels.push_back(std::to_string(steps_[c]));
  for (size_t l = 0; l < layers.size(); ++l) {
    const size_t E = share_[0][l].size();
    for (size_t e = 0; e < E; ++e) {
      h.row_labels.push_back("L" + std::to_string(layers[l]) + " e" + std::to_string(e));
      std::vector<double> row;
      for (size_t c : pick) row.push_back(share_[c][l][e]);
      h.values.push_back(row);
    }
  }
  h.cell = 14;
  write_file_atomic(path, heatmap_svg(h));  // checked writes (a full disk names the file)
}

// Tokens of `domain`: documents of that domain from the synthetic stream, encoded as in training,
// cut into `blocks` rows of T tokens (fewer if the documents run out).
static std::vector<int32_t> domain_tokens(const BpeTokenizer& tok, int domain, int64_t want) {
  std::vector<int32_t> out;
  for (uint64_t i = 0; static_cast<int64_t>(out.size()) < want && i < 200000; ++i) {
    SyntheticDoc d = synthetic_document(777, i);  // a seed the training corpus does not use
    if (d.domain != domain) continue;
    std::vector<int32_t> ids = tok.encode_document(d.text + "\n");
    out.insert(out.end(), ids.begin(), ids.end());
  }
  out.resize(std::min<int64_t>(want, static_cast<int64_t>(out.size())));
  return out;
}

void write_domain_routing_svg(GPT& model, const BpeTokenizer& tok, const std::string& path) {
  if (!model.config().is_moe()) return;
  NoGradGuard ng;
  const int T = model.config().seq_len, B = 8, E = model.config().moe_experts;
  const std::vector<int> layers = model.moe_layer_indices();
  Heatmap h;
  h.title = "Routing by domain (no capacity limit)";
  h.x_label = "expert";
  h.y_label = "MoE layer / domain";
  h.colorbar_label = "share of the domain's assignments";
  for (int e = 0; e < E; ++e) h.col_labels.push_back(std::to_string(e));
  std::vector<std::vector<std::vector<double>>> rows(layers.size());  // [layer][domain][expert]
  CounterRng rng;  // evaluation: nothing is drawn
  // Capacity would clip the picture at Cap/N: route without dropping (Cap = N) to show the
  // router's preferences, then restore the model's evaluation rule.
  const double saved_fraction = model.config().eval_capacity_fraction;
  model.set_eval_capacity_fraction(1.0);
  for (int d = 0; d < synthetic_num_domains(); ++d) {
    std::vector<int32_t> ids = domain_tokens(tok, d, static_cast<int64_t>(B) * T);
    const int b = static_cast<int>(ids.size()) / T;
    if (b == 0) continue;
    ids.resize(static_cast<size_t>(b) * T);
    model.forward_hidden(Tensor::from_i32(ids, {b, T}), false, rng);
    const std::vector<MoEStats> stats = model.moe_stats();
    for (size_t l = 0; l < layers.size(); ++l) {
      const std::vector<int64_t>& tpe = stats[l].tokens_per_expert;
      double total = 0;
      for (int64_t v : tpe) total += static_cast<double>(v);
      std::vector<double> share;
      for (int64_t v : tpe) share.push_back(total > 0 ? v / total : 0.0);
      rows[l].push_back(share);
    }
  }
  model.set_eval_capacity_fraction(saved_fraction);
  for (size_t l = 0; l < layers.size(); ++l)
    for (size_t d = 0; d < rows[l].size(); ++d) {
      h.row_labels.push_back("L" + std::to_string(layers[l]) + " " + synthetic_domain_name(static_cast<int>(d)));
      h.values.push_back(rows[l][d]);
    }
  h.annotate = E <= 16;
  write_file_atomic(path, heatmap_svg(h));  // checked writes (a full disk names the file)
}

}  // namespace moe
