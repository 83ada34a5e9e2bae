// loss_plot.cpp — loss.svg from log.jsonl (see loss_plot.h).
#include "train/loss_plot.h"

#include <cmath>
#include <sstream>

#include "io/svg.h"
#include "io/text_io.h"

namespace moe {

namespace {

// One panel: train and validation loss against `x_of` each point.
LineChart loss_chart(const std::vector<LogPoint>& points, double LogPoint::*x_of,
                     const std::string& title, const std::string& x_label) {
  LineChart c;
  c.title = title;
  c.x_label = x_label;
  c.y_label = "loss (nats per token)";
  LineSeries train{"train loss", {}, {}, "#1f77b4", false, false, true};
  LineSeries val{"validation loss", {}, {}, "#d62728", true, false, true};
  for (const LogPoint& p : points) {
    const double x = p.*x_of;
    if (!std::isfinite(x)) continue;
    if (std::isfinite(p.loss)) {
      train.x.push_back(x);
      train.y.push_back(p.loss);
    }
    if (std::isfinite(p.val_loss)) {
      val.x.push_back(x);
      val.y.push_back(p.val_loss);
    }
  }
  c.series.push_back(train);
  if (!val.x.empty()) c.series.push_back(val);
  return c;
}

}  // namespace

std::string loss_plot_svg(const std::vector<LogPoint>& points, const std::string& title) {
  const LineChart by_tokens = loss_chart(points, &LogPoint::tokens, title + " — by tokens",
                                         "tokens seen");
  const LineChart by_compute = loss_chart(points, &LogPoint::compute, title + " — by compute",
                                          "training compute (FLOPs, paper count)");
  // line_chart_svg makes a whole <svg> document; an <svg> may hold others, each placed by the
  // translate of its group, so the two panels share one file.
  const int w = by_tokens.width, h = by_tokens.height;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << 2 * w << "\" height=\"" << h
    << "\" viewBox=\"0 0 " << 2 * w << " " << h << "\">\n"
    << "<g>\n" << line_chart_svg(by_tokens) << "</g>\n"
    << "<g transform=\"translate(" << w << ",0)\">\n" << line_chart_svg(by_compute) << "</g>\n"
    << "</svg>\n";
  return o.str();
}

bool write_loss_plot(const std::string& log_path, const std::string& svg_path,
                     const std::string& title) {
  const std::vector<LogPoint> points = read_log_points(log_path);
  if (points.empty()) return false;
  write_file_atomic(svg_path, loss_plot_svg(points, title));
  return true;
}

}  // namespace moe
