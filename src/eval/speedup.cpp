// speedup.cpp — see speedup.h.
#include "eval/speedup.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "core/check.h"
#include "eval/report.h"
#include "io/text_io.h"
#include "io/json.h"
#include "io/svg.h"

namespace moe {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// "Goodness": larger is better for both kinds of metric.
double good(double metric, bool higher_is_better) { return higher_is_better ? metric : -metric; }

bool close_enough(double a, double b) {
  return std::fabs(a - b) <= 1e-12 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

}  // namespace

std::vector<ComputePoint> monotone_envelope(std::vector<ComputePoint> points,
                                            bool higher_is_better) {
  // ASSIGNMENT 7 BEGIN monotone_envelope
  std::sort(points.begin(), points.end(), [&](const ComputePoint& a, const ComputePoint& b) {
    if (a.compute != b.compute) return a.compute < b.compute;
    return good(a.metric, higher_is_better) > good(b.metric, higher_is_better);
  });
  for (size_t i = 1; i < points.size(); ++i)
    if (good(points[i].metric, higher_is_better) < good(points[i - 1].metric, higher_is_better))
      points[i].metric = points[i - 1].metric;  // running best
  return points;
  // ASSIGNMENT 7 END
}

double compute_to_reach(const std::vector<ComputePoint>& env, double t, bool higher_is_better) {
  // ASSIGNMENT 7 BEGIN compute_to_reach
  if (env.empty()) return kNaN;
  const double tg = good(t, higher_is_better);
  const double g0 = good(env[0].metric, higher_is_better);
  if (close_enough(tg, g0)) return env[0].compute;
  if (tg < g0) return kNaN;  // even the cheapest run is better: c(t) < c_0 is not measured
  for (size_t i = 1; i < env.size(); ++i) {
    const double ga = good(env[i - 1].metric, higher_is_better);
    const double gb = good(env[i].metric, higher_is_better);
    if (tg > gb && !close_enough(tg, gb)) continue;
    if (close_enough(tg, gb)) return env[i].compute;  // exactly a measured point
    // ga < tg < gb here: interpolate log compute linearly in the metric.
    const double f = std::min(1.0, std::max(0.0, (tg - ga) / (gb - ga)));
    const double la = std::log(env[i - 1].compute), lb = std::log(env[i].compute);
    return std::exp(la + f * (lb - la));
  }
  return kNaN;  // better than anything this family reached
  // ASSIGNMENT 7 END
}

SpeedupCurve speedup_curve(const std::string& metric, const std::vector<ComputePoint>& dense,
                           const std::vector<ComputePoint>& moe, bool higher_is_better,
                           int grid_points) {
  SpeedupCurve c;
  c.metric = metric;
  c.higher_is_better = higher_is_better;
  c.dense = monotone_envelope(dense, higher_is_better);
  c.moe = monotone_envelope(moe, higher_is_better);
  if (c.dense.empty() || c.moe.empty()) return c;
  const auto g = [&](double m) { return good(m, higher_is_better); };
  const double g_lo = std::max(g(c.dense.front().metric), g(c.moe.front().metric));
  const double g_hi = std::min(g(c.dense.back().metric), g(c.moe.back().metric));
  c.overlap = g_lo <= g_hi;
  if (!c.overlap) return c;
  c.t_lo = higher_is_better ? g_lo : -g_lo;
  c.t_hi = higher_is_better ? g_hi : -g_hi;
  const auto row = [&](double t) {
    SpeedupRow r{t, compute_to_reach(c.dense, t, higher_is_better),
                 compute_to_reach(c.moe, t, higher_is_better), kNaN};
    r.speedup = r.dense_compute / r.moe_compute;
    return r;
  };
  for (size_t i = 0; i < c.dense.size(); ++i) {
    const double t = c.dense[i].metric;
    const bool plateau = i > 0 && close_enough(t, c.dense[i - 1].metric);
    if (!plateau && g(t) >= g_lo && g(t) <= g_hi) c.at_dense_points.push_back(row(t));
  }
  const int n = (g_hi > g_lo) ? std::max(grid_points, 2) : 1;
  for (int k = 0; k < n; ++k) {
    const double gk = n == 1 ? g_lo : g_lo + (g_hi - g_lo) * k / (n - 1);
    c.grid.push_back(row(higher_is_better ? gk : -gk));
  }
  return c;
}

// -------------------------------------------------------------------------------------------------
// eval --speedup

namespace {

struct MetricSpec {
  const char* task;  // summary row of the results file (report.h)
  const char* label;
  bool higher_is_better;
};
const MetricSpec kMetrics[] = {{"ppl-in-domain", "in-domain perplexity", false},
                               {"ppl-out-of-domain", "out-of-domain perplexity", false},
                               {"zero-shot-avg", "zero-shot average accuracy", true},
                               {"few-shot-avg", "few-shot average accuracy", true}};

// Below these, a results file is flagged as small: an accuracy over fewer than 100 items has a
// standard error of 5 points or more, and a perplexity over fewer than 10k tokens moves by
// several percent from one text sample to the next.
constexpr int64_t kFewItems = 100, kFewTokens = 10000;

struct Family {
  std::vector<ResultsFile> files;
  std::vector<std::string> paths;
};

Family read_family(const std::vector<std::string>& paths, const char* name) {
  CHECK(!paths.empty(), "--speedup needs results files for the ", name,
        " family. HINT: --dense a.json,b.json --moe c.json,d.json");
  Family f;
  for (const std::string& p : paths) {
    ResultsFile r = read_results(p);
    CHECK(std::isfinite(r.training_compute) && r.training_compute > 0, p,
          ": no training compute. HINT: evaluate checkpoints written by train (their meta "
          "compute-paper-flops gives it)");
    f.files.push_back(std::move(r));
    f.paths.push_back(p);
  }
  return f;
}

// The inputs on stdout, one line per file; warnings on stderr for a file computed on a prefix
// (--limit) or on too few items or tokens for its numbers to separate nearby models.
void describe_inputs(const Family& f, const char* name) {
  std::cout << name << " results files:\n";
  for (size_t i = 0; i < f.files.size(); ++i) {
    const ResultsFile& r = f.files[i];
    std::cout << "  " << f.paths[i] << ": " << r.checkpoint << " (step " << r.step << ", "
              << tick_label(r.training_compute) << " FLOPs"
              << (r.limit > 0 ? str_cat(", --limit ", r.limit) : std::string()) << ")\n";
    int64_t limit = r.limit;
    for (const ResultRow& row : r.rows) limit = std::max(limit, row.limit);
    if (limit > 0)
      std::cerr << "warning: " << f.paths[i] << " was computed with --limit " << limit
                << ": only the first items of each task (perplexity: windows); the speedup is "
                   "a rough estimate\n";
    for (const ResultRow& row : r.rows) {
      const bool acc = (row.metric == "acc" || row.metric == "em") &&
                       row.task.find("-avg") == std::string::npos;
      const bool ppl = row.task == "ppl";
      if (acc && row.n < kFewItems)
        std::cerr << "warning: " << f.paths[i] << ": " << row.task << " has only n = " << row.n
                  << " items (standard error " << tick_label(100 * row.std_err)
                  << " points): too few to tell nearby models apart\n";
      if (ppl && row.n < kFewTokens)
        std::cerr << "warning: " << f.paths[i] << ": perplexity of " << row.split << " rests on "
                  << row.n << " tokens only\n";
    }
  }
}

// The family's points for one metric; warns when files average different task sets.
std::vector<ComputePoint> family_points(const Family& f, const MetricSpec& m, const char* name) {
  std::vector<ComputePoint> pts;
  std::string first_note;
  for (size_t i = 0; i < f.files.size(); ++i)
    for (const ResultRow& r : f.files[i].rows)
      if (r.task == m.task && std::isfinite(r.mean)) {
        pts.push_back({f.files[i].training_compute, r.mean});
        if (first_note.empty()) first_note = r.note;
        else if (r.note != first_note && m.higher_is_better)
          std::cerr << "warning: " << name << " " << m.task << ": " << f.paths[i]
                    << " averages other tasks (" << r.note << " vs " << first_note << ")\n";
      }
  return pts;
}

std::string curve_table(const SpeedupCurve& c, const MetricSpec& m) {
  std::ostringstream o;
  char buf[256];
  o << m.label << " (" << (m.higher_is_better ? "higher" : "lower") << " is better): ";
  if (c.dense.empty() || c.moe.empty()) return o.str() + "not in both families' results\n";
  if (!c.overlap)
    return o.str() + "no common range (dense " + tick_label(c.dense.front().metric) + ".." +
           tick_label(c.dense.back().metric) + ", MoE " + tick_label(c.moe.front().metric) + ".." +
           tick_label(c.moe.back().metric) + ")\n";
  o << "common range " << tick_label(c.t_lo) << " .. " << tick_label(c.t_hi) << "\n";
  std::snprintf(buf, sizeof buf, "  %12s %14s %14s %9s\n", "target", "dense FLOPs", "MoE FLOPs",
                "speedup");
  o << buf;
  for (const SpeedupRow& r : c.at_dense_points) {
    std::snprintf(buf, sizeof buf, "  %12.4f %14.4g %14.4g %8.2fx\n", r.target, r.dense_compute,
                  r.moe_compute, r.speedup);
    o << buf;
  }
  return o.str();
}

}  // namespace

// c(t) of one family as a line: t over the envelope's range, at the compute it interpolates.
static LineSeries interpolated_curve(const std::vector<ComputePoint>& env, bool higher_is_better,
                                     const std::string& name, const char* color) {
  LineSeries s;
  s.name = name;
  s.color = color;
  s.markers = false;
  s.dashed = true;
  if (env.size() < 2) return s;
  const double a = env.front().metric, b = env.back().metric;
  const int n = 60;
  for (int k = 0; k <= n; ++k) {
    const double t = a + (b - a) * k / n;
    const double c = compute_to_reach(env, t, higher_is_better);
    if (std::isfinite(c)) { s.x.push_back(c); s.y.push_back(t); }
  }
  return s;
}

LineChart metric_vs_compute_chart(const SpeedupCurve& c, const std::string& label,
                                  const std::vector<ComputePoint>& dense,
                                  const std::vector<ComputePoint>& moe) {
  LineChart chart;
  chart.title = label + " vs training compute";
  chart.x_label = "training compute (FLOPs)";
  chart.y_label = label;
  chart.log_x = true;
  chart.log_y = !c.higher_is_better;  // perplexity: a log axis, as in the paper's figures
  const auto add = [&](std::vector<ComputePoint> pts, const std::vector<ComputePoint>& env,
                       const char* name, const char* color) {
    std::sort(pts.begin(), pts.end(),
              [](const ComputePoint& a, const ComputePoint& b) { return a.compute < b.compute; });
    LineSeries s;
    s.name = name;
    s.color = color;
    s.lines = false;  // the measured points; the line is the interpolation c(t) beside them
    for (const ComputePoint& p : pts) { s.x.push_back(p.compute); s.y.push_back(p.metric); }
    chart.series.push_back(s);
    chart.series.push_back(
        interpolated_curve(env, c.higher_is_better, std::string(name) + " c(t)", color));
  };
  add(dense, c.dense, "dense", "#1f5fa8");
  add(moe, c.moe, "MoE", "#d0611e");
  return chart;
}

namespace {

void write_plots(const SpeedupCurve& c, const MetricSpec& m,
                 const std::vector<ComputePoint>& dense, const std::vector<ComputePoint>& moe,
                 const std::string& out_dir) {
  const LineChart curves = metric_vs_compute_chart(c, m.label, dense, moe);
  write_svg(out_dir + "/speedup_" + m.task + "_curves.svg", line_chart_svg(curves));
  if (!c.overlap) return;
  LineChart sp;
  sp.title = std::string("speedup factor: ") + m.label;
  sp.x_label = "dense training compute (FLOPs)";
  sp.y_label = "c_dense(t) / c_MoE(t)";
  sp.log_x = true;
  sp.reference_y = 1.0;
  LineSeries line;  // the whole common range
  line.name = "speedup";
  line.color = "#2f8f3a";
  line.markers = false;
  for (const SpeedupRow& r : c.grid) {
    line.x.push_back(r.dense_compute);
    line.y.push_back(r.speedup);
  }
  LineSeries dots;  // the measured dense checkpoints inside it
  dots.name = "at dense checkpoints";
  dots.color = "#111111";
  dots.lines = false;
  for (const SpeedupRow& r : c.at_dense_points) {
    dots.x.push_back(r.dense_compute);
    dots.y.push_back(r.speedup);
  }
  sp.series = {line, dots};
  write_svg(out_dir + "/speedup_" + m.task + ".svg", line_chart_svg(sp));
}

std::string curves_json(const std::vector<SpeedupCurve>& curves) {
  std::ostringstream o;
  o << "{\n  \"format\": \"moe-gpt speedup\",\n  \"curves\": [";
  for (size_t i = 0; i < curves.size(); ++i) {
    const SpeedupCurve& c = curves[i];
    o << (i ? ",\n" : "\n") << "    {\"metric\": " << json_quote(c.metric)
      << ", \"higher_is_better\": " << (c.higher_is_better ? "true" : "false")
      << ", \"overlap\": " << (c.overlap ? "true" : "false")
      << ", \"t_lo\": " << json_number(c.t_lo)
      << ", \"t_hi\": " << json_number(c.t_hi) << ", \"at_dense_points\": [";
    for (size_t k = 0; k < c.at_dense_points.size(); ++k) {
      const SpeedupRow& r = c.at_dense_points[k];
      o << (k ? ", " : "") << "{\"target\": " << json_number(r.target)
        << ", \"dense_compute\": " << json_number(r.dense_compute)
        << ", \"moe_compute\": " << json_number(r.moe_compute)
        << ", \"speedup\": " << json_number(r.speedup) << "}";
    }
    o << "]}";
  }
  o << "\n  ]\n}\n";
  return o.str();
}

}  // namespace

std::vector<SpeedupCurve> run_speedup(const std::vector<std::string>& dense_files,
                                      const std::vector<std::string>& moe_files,
                                      const std::string& out_dir) {
  const Family dense = read_family(dense_files, "dense");
  const Family moe = read_family(moe_files, "MoE");
  describe_inputs(dense, "dense");
  describe_inputs(moe, "MoE");
  std::vector<SpeedupCurve> curves;
  std::cout << "speedup factor c_dense(t) / c_MoE(t) (SPEC §8): monotone (running-best) "
               "piecewise-linear interpolation in (log compute, metric)\n\n";
  for (const MetricSpec& m : kMetrics) {
    const std::vector<ComputePoint> d = family_points(dense, m, "dense");
    const std::vector<ComputePoint> e = family_points(moe, m, "MoE");
    SpeedupCurve c = speedup_curve(m.task, d, e, m.higher_is_better);
    std::cout << curve_table(c, m) << "\n";
    if (!c.dense.empty() || !c.moe.empty()) write_plots(c, m, d, e, out_dir);
    curves.push_back(std::move(c));
  }
  write_file_atomic(out_dir + "/speedup.json", curves_json(curves));
  std::cout << "wrote " << out_dir << "/speedup.json and speedup_*.svg" << std::endl;
  return curves;
}

}  // namespace moe
