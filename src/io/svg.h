// svg.h — two kinds of plot, written as standalone SVG files (no plotting library, C++17 only).
//
//   line_chart_svg  several named series of (x, y) points: axes with "nice" ticks, optional
//                   log-scale x and/or y (decade ticks), axis labels, a title, a legend. The
//                   speedup figures of SPEC §8 (metric and speedup vs compute) use it.
//   heatmap_svg     a matrix of values with row and column labels, a colour per cell on a
//                   perceptual (viridis-like) scale, and a colour bar with its label. The MoE code
//                   uses it for tokens-per-expert plots (rows = layers, columns = experts).
//
// Non-finite values are skipped in line charts (the line breaks there) and drawn grey in heatmaps.
// The legend of a line chart never covers data: it takes a free corner of the plot, or moves
// outside it (line_chart_layout).
// All text is XML-escaped. Output is deterministic (fixed-precision numbers), so a plot can be
// compared in a test or a diff.
//
// Left out: interactivity, bar charts, subplots, fonts beyond the viewer's sans-serif.
#pragma once
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace moe {

struct LineSeries {
  std::string name;         // legend entry ("" = not in the legend)
  std::vector<double> x, y;  // same length
  std::string color;        // "#1f77b4"; empty = the next palette colour
  bool markers = true;      // a dot at every point
  bool dashed = false;
  bool lines = true;        // connect the points (false: markers only)
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;  // log scales need positive values (others are skipped)
  std::vector<LineSeries> series;
  int width = 640, height = 420;      // pixels
  // Optional horizontal reference line (e.g. speedup = 1); drawn when finite.
  double reference_y = std::numeric_limits<double>::quiet_NaN();
};

struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> row_labels, col_labels;
  std::vector<std::vector<double>> values;  // (rows, cols)
  std::string colorbar_label;               // "tokens"
  bool annotate = false;                    // write each value in its cell
  int cell = 28;                            // pixels per cell side
};

std::string line_chart_svg(const LineChart& chart);

// Where line_chart_svg puts things, in pixels (SVG coordinates: y grows downwards). The legend
// goes to the first corner of the plot (top-left, top-right, bottom-left, bottom-right) whose box
// holds no data point, line segment or reference line; when every corner is taken, the plot is
// narrowed and the legend sits to its right, outside the frame. Exposed for tests.
struct PixelBox {
  double x = 0, y = 0, w = 0, h = 0;
  bool contains(double px, double py) const { return px >= x && px <= x + w && py >= y && py <= y + h; }
};
struct LineChartLayout {
  PixelBox frame, legend;  // legend.w == 0 when no series is named
  bool legend_outside = false;
  // Every drawn point of every series (pixels), and each series' segments as consecutive pairs.
  std::vector<std::pair<double, double>> points;
  std::vector<std::pair<std::pair<double, double>, std::pair<double, double>>> segments;
};
LineChartLayout line_chart_layout(const LineChart& chart);
std::string heatmap_svg(const Heatmap& map);

// Write an SVG document atomically (FILE.tmp, then rename); creates parent folders.
void write_svg(const std::string& path, const std::string& svg);

// Tick positions for an axis over [lo, hi]: 1-2-5 steps for linear axes (about `target` ticks),
// powers of ten for log axes (with 2x and 5x added when the range spans under two decades).
std::vector<double> axis_ticks(double lo, double hi, bool log_scale, int target = 6);
// Short tick text: "0.5", "12", "1e+15" style for very large or small magnitudes.
std::string tick_label(double v);

}  // namespace moe
