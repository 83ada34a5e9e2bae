// speedup.h — the speedup factor of SPEC §8: how much less training compute the MoE family needs
// to reach the quality the dense family reaches.
//
// For one metric (in-domain ppl, out-of-domain ppl, zero-shot average, few-shot average), each
// family is a set of (training compute, metric) points, one per evaluated checkpoint. Then:
//  1. Sort by compute and make the curve monotone with a running best: a point that is worse than
//     a cheaper point of the same family takes that cheaper point's value (a larger model never
//     "needs" more compute to reach a quality a smaller one already reached). notes/eval.md says
//     why a running best and not, e.g., dropping the point: it keeps every compute value and never
//     invents quality that was not measured.
//  2. c(t), the compute to reach metric t, interpolates linearly in (log compute, metric) between
//     the two envelope points around t; on a plateau it is the cheapest compute reaching t. Outside
//     the family's measured range c(t) is undefined (no extrapolation).
//  3. speedup(t) = c_dense(t) / c_moe(t), for t in the range both families reach.
// Lower is better for perplexity, higher for accuracy; step 1 and 2 work on "goodness" (metric
// or -ppl), so both cases share one code path.
//
// Left out: fitting power laws (the paper interpolates too), error bars from few-shot draws.
#pragma once
#include <string>
#include <vector>

#include "io/svg.h"

namespace moe {

struct ComputePoint {
  double compute = 0.0;  // training FLOPs (SPEC §5 paper count); > 0
  double metric = 0.0;
};

// The running-best envelope, sorted by compute (ties: the better metric first).
std::vector<ComputePoint> monotone_envelope(std::vector<ComputePoint> points,
                                            bool higher_is_better);
// c(t) on an envelope; NaN when t lies outside the range it covers.
double compute_to_reach(const std::vector<ComputePoint>& envelope, double t,
                        bool higher_is_better);

struct SpeedupRow {
  double target = 0.0;         // metric value t
  double dense_compute = 0.0;  // c_dense(t)
  double moe_compute = 0.0;    // c_moe(t)
  double speedup = 0.0;        // c_dense(t) / c_moe(t)
};

struct SpeedupCurve {
  std::string metric;           // "ppl-in-domain", ...
  bool higher_is_better = false;
  std::vector<ComputePoint> dense, moe;  // the envelopes
  bool overlap = false;         // do the families reach a common range of t?
  double t_lo = 0.0, t_hi = 0.0;  // that range, as metric values (t_lo is the worse end)
  std::vector<SpeedupRow> at_dense_points;  // t = each dense envelope value inside the range
  std::vector<SpeedupRow> grid;             // t evenly spaced over the range (for the plot)
};

// Needs at least one point per family; with one point the range is a single value.
SpeedupCurve speedup_curve(const std::string& metric, const std::vector<ComputePoint>& dense,
                           const std::vector<ComputePoint>& moe, bool higher_is_better,
                           int grid_points = 41);

// The metric-vs-compute figure of one curve: each family's measured points (dense_points,
// moe_points) as markers and its interpolated c(t) as a dashed line; perplexity on a log axis.
LineChart metric_vs_compute_chart(const SpeedupCurve& c, const std::string& label,
                                  const std::vector<ComputePoint>& dense_points,
                                  const std::vector<ComputePoint>& moe_points);

// `eval --speedup`: read the dense and MoE results files (report.h format), list them (checkpoint,
// step, compute; warnings on stderr for files made with --limit or with fewer than 100 items or
// 10k perplexity tokens), compute the four curves, print a table, write speedup.json and the SVG
// plots into out_dir: per metric the measured points of both families with their interpolated
// c(t) (dashed; perplexity on a log axis), and the speedup over the common range. Returns the
// curves.
std::vector<SpeedupCurve> run_speedup(const std::vector<std::string>& dense_files,
                                      const std::vector<std::string>& moe_files,
                                      const std::string& out_dir);

}  // namespace moe
