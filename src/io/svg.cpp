// svg.cpp — see svg.h. Coordinates: SVG's origin is the top-left corner and y grows downwards, so
// every data y is flipped when it is mapped to pixels.
#include "io/svg.h"

#include "io/text_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"

namespace moe {

namespace {

// A qualitative palette (distinct hues that survive greyscale printing reasonably well).
const char* kPalette[] = {"#1f5fa8", "#d0611e", "#2f8f3a", "#b3262e", "#6c4aa8", "#7a5230",
                          "#c8479a", "#5f5f5f"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string num(double v) {  // pixel coordinates: two decimals are plenty
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string text_el(double x, double y, const std::string& s, const char* anchor, int size,
                    const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor +
         "\" font-size=\"" + std::to_string(size) + "\"" + extra + ">" + xml_escape(s) +
         "</text>\n";
}

// One axis: data range [lo, hi] onto pixels [p0, p1] (p1 < p0 for the flipped y axis).
struct Axis {
  double lo, hi, p0, p1;
  bool log;
  double t(double v) const { return log ? std::log10(v) : v; }
  double px(double v) const { return p0 + (t(v) - t(lo)) / (t(hi) - t(lo)) * (p1 - p0); }
};

// Range of the finite (and, on a log axis, positive) values, padded so points are not drawn on
// the frame; a single value gets a range around it.
void data_range(const std::vector<double>& v, bool log, double* lo, double* hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (const double x : v)
    if (std::isfinite(x) && (!log || x > 0)) { *lo = std::min(*lo, x); *hi = std::max(*hi, x); }
  if (!std::isfinite(*lo)) { *lo = log ? 1 : 0; *hi = log ? 10 : 1; return; }
  if (log) {
    const double pad = std::max(0.05 * std::log10(*hi / *lo), 0.15);
    *lo /= std::pow(10.0, pad);
    *hi *= std::pow(10.0, pad);
  } else {
    const double span = *hi - *lo;
    const double pad = span > 0 ? 0.06 * span : std::max(std::fabs(*lo) * 0.1, 0.5);
    *lo -= pad;
    *hi += pad;
  }
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// ticks

std::vector<double> axis_ticks(double lo, double hi, bool log_scale, int target) {
  std::vector<double> ticks;
  if (!(hi > lo)) return ticks;
  if (log_scale) {
    const double decades = std::log10(hi / lo);
    std::vector<double> mults = {1};
    if (decades < 2) mults = {1, 2, 5};
    if (decades < 0.6) mults = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (int e = static_cast<int>(std::floor(std::log10(lo))); e <= std::ceil(std::log10(hi)); ++e)
      for (const double m : mults) {
        const double v = m * std::pow(10.0, e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
      }
    // Many decades: keep every k-th power so labels do not collide.
    if (static_cast<int>(ticks.size()) > 2 * target) {
      std::vector<double> thin;
      const size_t k = (ticks.size() + target - 1) / target;
      for (size_t i = 0; i < ticks.size(); i += k) thin.push_back(ticks[i]);
      ticks = thin;
    }
    return ticks;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double s = r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10;
  const double step = s * mag;
  // Tick k is k*s*mag; for mag < 1 it is computed as k*s / (1/mag), because 10^-k is inexact and
  // 3 * 0.2 gives 0.6000000000000001 while 6 / 10 gives 0.6.
  const double inv = mag < 1 ? std::round(1.0 / mag) : 0.0;
  for (double k = std::ceil(lo / step); k * step <= hi + 1e-9 * step; k += 1.0)
    ticks.push_back(inv > 0 ? (k * s) / inv : k * s * mag);
  return ticks;
}

std::string tick_label(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a == 0.0 || (a >= 1e-3 && a < 1e5)) {
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
  }
  const int e = static_cast<int>(std::floor(std::log10(a)));
  const double m = v / std::pow(10.0, e);
  if (std::fabs(m - std::round(m)) < 1e-9) std::snprintf(buf, sizeof buf, "%.0fe%d", m, e);
  else std::snprintf(buf, sizeof buf, "%.2ge%d", m, e);
  return buf;
}

// -------------------------------------------------------------------------------------------------
// line chart

static std::string axes_svg(const LineChart& c, const Axis& ax, const Axis& ay) {
  std::ostringstream o;
  const double left = ax.p0, right = ax.p1, bottom = ay.p0, top = ay.p1;
  o << "<rect x=\"" << num(left) << "\" y=\"" << num(top) << "\" width=\"" << num(right - left)
    << "\" height=\"" << num(bottom - top) << "\" fill=\"none\" stroke=\"#333\"/>\n";
  for (const double v : axis_ticks(ax.lo, ax.hi, ax.log)) {
    const double x = ax.px(v);
    o << "<line x1=\"" << num(x) << "\" y1=\"" << num(top) << "\" x2=\"" << num(x) << "\" y2=\""
      << num(bottom) << "\" stroke=\"#e4e4e4\"/>\n"
      << text_el(x, bottom + 16, tick_label(v), "middle", 11);
  }
  for (const double v : axis_ticks(ay.lo, ay.hi, ay.log)) {
    const double y = ay.px(v);
    o << "<line x1=\"" << num(left) << "\" y1=\"" << num(y) << "\" x2=\"" << num(right)
      << "\" y2=\"" << num(y) << "\" stroke=\"#e4e4e4\"/>\n"
      << text_el(left - 6, y + 4, tick_label(v), "end", 11);
  }
  o << text_el((left + right) / 2, bottom + 38, c.x_label, "middle", 13)
    << text_el(16, (top + bottom) / 2, c.y_label, "middle", 13,
               " transform=\"rotate(-90 16 " + num((top + bottom) / 2) + ")\"")
    << text_el(c.width / 2.0, 22, c.title, "middle", 15, " font-weight=\"bold\"");
  return o.str();
}

static std::string series_svg(const LineSeries& s, const std::string& color, const Axis& ax,
                              const Axis& ay) {
  std::ostringstream o, dots;
  std::string d;
  bool pen_down = false;  // a skipped (non-finite) point lifts the pen: the line breaks there
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    const bool ok = std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!ax.log || s.x[i] > 0) &&
                    (!ay.log || s.y[i] > 0);
    if (!ok) { pen_down = false; continue; }
    const double x = ax.px(s.x[i]), y = ay.px(s.y[i]);
    d += (pen_down ? "L" : "M") + num(x) + "," + num(y) + " ";
    pen_down = true;
    if (s.markers)
      dots << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"3.2\" fill=\"" << color
           << "\"/>\n";
  }
  if (!d.empty() && s.lines)
    o << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\""
      << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
  o << dots.str();
  return o.str();
}

namespace {

bool drawable(const LineSeries& s, size_t i, const Axis& ax, const Axis& ay) {
  return std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!ax.log || s.x[i] > 0) &&
         (!ay.log || s.y[i] > 0);
}

// The pixels the data occupies: points (markers or line corners) and the segments between
// consecutive drawable points of a series drawn with lines.
void collect_data_pixels(const LineChart& c, const Axis& ax, const Axis& ay, LineChartLayout* L) {
  L->points.clear();
  L->segments.clear();
  for (const LineSeries& s : c.series) {
    bool have_prev = false;
    std::pair<double, double> prev;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!drawable(s, i, ax, ay)) { have_prev = false; continue; }
      const std::pair<double, double> p{ax.px(s.x[i]), ay.px(s.y[i])};
      L->points.push_back(p);
      if (have_prev && s.lines) L->segments.push_back({prev, p});
      prev = p;
      have_prev = true;
    }
  }
}

// Does the segment p-q cross the box? (Liang-Barsky: clip the parameter range against each side.)
bool segment_hits(const std::pair<double, double>& p, const std::pair<double, double>& q,
                  const PixelBox& b) {
  double t0 = 0.0, t1 = 1.0;
  const double dx = q.first - p.first, dy = q.second - p.second;
  const double edges[4][2] = {{-dx, p.first - b.x}, {dx, b.x + b.w - p.first},
                              {-dy, p.second - b.y}, {dy, b.y + b.h - p.second}};
  for (const auto& e : edges) {
    if (e[0] == 0.0) {
      if (e[1] < 0.0) return false;  // parallel to this side and outside it
      continue;
    }
    const double t = e[1] / e[0];
    if (e[0] < 0.0) t0 = std::max(t0, t);
    else t1 = std::min(t1, t);
    if (t0 > t1) return false;
  }
  return true;
}

bool box_is_free(const PixelBox& box, const LineChartLayout& L, double reference_px) {
  const PixelBox pad{box.x - 5, box.y - 5, box.w + 10, box.h + 10};  // marker radius and a gap
  for (const auto& p : L.points)
    if (pad.contains(p.first, p.second)) return false;
  for (const auto& sg : L.segments)
    if (segment_hits(sg.first, sg.second, pad)) return false;
  return !(std::isfinite(reference_px) && reference_px >= pad.y && reference_px <= pad.y + pad.h);
}

struct ChartGeometry {
  Axis ax, ay;
  LineChartLayout layout;
};

ChartGeometry chart_geometry(const LineChart& c) {
  std::vector<double> xs, ys;
  size_t named = 0, longest = 0;
  for (const LineSeries& s : c.series) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
    if (!s.name.empty()) { ++named; longest = std::max(longest, s.name.size()); }
  }
  if (std::isfinite(c.reference_y)) ys.push_back(c.reference_y);
  ChartGeometry g{Axis{0, 1, 72, static_cast<double>(c.width - 24), c.log_x},
                  Axis{0, 1, static_cast<double>(c.height - 56), 40, c.log_y}, {}};
  data_range(xs, c.log_x, &g.ax.lo, &g.ax.hi);
  data_range(ys, c.log_y, &g.ay.lo, &g.ay.hi);
  const double w = named ? 40.0 + 7.0 * longest : 0.0, h = named ? 18.0 * named + 8 : 0.0;
  const auto ref_px = [&] {
    return std::isfinite(c.reference_y) && (!c.log_y || c.reference_y > 0) ? g.ay.px(c.reference_y)
                                                                             : NAN;
  };
  collect_data_pixels(c, g.ax, g.ay, &g.layout);
  const double m = 8;  // gap between the legend and the frame
  const PixelBox corners[4] = {{g.ax.p0 + m, g.ay.p1 + m, w, h},
                               {g.ax.p1 - m - w, g.ay.p1 + m, w, h},
                               {g.ax.p0 + m, g.ay.p0 - m - h, w, h},
                               {g.ax.p1 - m - w, g.ay.p0 - m - h, w, h}};
  g.layout.legend = corners[0];
  bool placed = named == 0;
  for (int k = 0; k < 4 && !placed; ++k)
    if (box_is_free(corners[k], g.layout, ref_px())) { g.layout.legend = corners[k]; placed = true; }
  if (!placed) {  // every corner holds data: narrow the plot and put the legend to its right
    g.ax.p1 = c.width - 24 - w - 2 * m;
    collect_data_pixels(c, g.ax, g.ay, &g.layout);
    g.layout.legend = PixelBox{g.ax.p1 + 2 * m, g.ay.p1, w, h};
    g.layout.legend_outside = true;
  }
  g.layout.frame = PixelBox{g.ax.p0, g.ay.p1, g.ax.p1 - g.ax.p0, g.ay.p0 - g.ay.p1};
  return g;
}

}  // namespace

LineChartLayout line_chart_layout(const LineChart& c) { return chart_geometry(c).layout; }

std::string line_chart_svg(const LineChart& c) {
  const ChartGeometry g = chart_geometry(c);
  const Axis &ax = g.ax, &ay = g.ay;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << c.width << "\" height=\""
    << c.height << "\" viewBox=\"0 0 " << c.width << " " << c.height
    << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << axes_svg(c, ax, ay);
  if (std::isfinite(c.reference_y) && (!c.log_y || c.reference_y > 0))
    o << "<line x1=\"" << num(ax.p0) << "\" y1=\"" << num(ay.px(c.reference_y)) << "\" x2=\""
      << num(ax.p1) << "\" y2=\"" << num(ay.px(c.reference_y))
      << "\" stroke=\"#888\" stroke-dasharray=\"3,3\"/>\n";
  const PixelBox& box = g.layout.legend;
  if (box.w > 0)
    o << "<rect x=\"" << num(box.x) << "\" y=\"" << num(box.y) << "\" width=\"" << num(box.w)
      << "\" height=\"" << num(box.h) << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n";
  int legend_rows = 0;
  for (size_t i = 0; i < c.series.size(); ++i) {
    const LineSeries& s = c.series[i];
    const std::string color = s.color.empty() ? kPalette[i % std::size(kPalette)] : s.color;
    o << series_svg(s, color, ax, ay);
    if (s.name.empty()) continue;
    const double lx = box.x + 6, y = box.y + 16 + 18 * legend_rows++;
    if (s.lines)
      o << "<line x1=\"" << num(lx) << "\" y1=\"" << num(y - 4) << "\" x2=\"" << num(lx + 24)
        << "\" y2=\"" << num(y - 4) << "\" stroke=\"" << color << "\" stroke-width=\"2\""
        << (s.dashed ? " stroke-dasharray=\"6,4\"" : "") << "/>\n";
    if (s.markers)
      o << "<circle cx=\"" << num(lx + 12) << "\" cy=\"" << num(y - 4) << "\" r=\"3.2\" fill=\""
        << color << "\"/>\n";
    o << text_el(lx + 30, y, s.name, "start", 12);
  }
  o << "</svg>\n";
  return o.str();
}

// -------------------------------------------------------------------------------------------------
// heatmap

// Five key colours of a perceptually uniform dark-blue -> green -> yellow scale, interpolated.
static std::string scale_color(double t) {
  static const double key[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::min(1.0, std::max(0.0, t)) * 4.0;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x",
                static_cast<int>(std::lround(key[i][0] + f * (key[i + 1][0] - key[i][0]))),
                static_cast<int>(std::lround(key[i][1] + f * (key[i + 1][1] - key[i][1]))),
                static_cast<int>(std::lround(key[i][2] + f * (key[i + 1][2] - key[i][2]))));
  return buf;
}

// A cell annotation must fit in its cell: two decimals for fractions, else the tick format.
static std::string cell_label(double v) {
  if (std::fabs(v) >= 10) return tick_label(v);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string heatmap_svg(const Heatmap& m) {
  const int R = static_cast<int>(m.values.size());
  const int C = R > 0 ? static_cast<int>(m.values[0].size()) : 0;
  CHECK(static_cast<int>(m.row_labels.size()) == R && static_cast<int>(m.col_labels.size()) == C,
        "heatmap: ", R, "x", C, " values but ", m.row_labels.size(), " row and ",
        m.col_labels.size(), " column labels");
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& row : m.values) {
    CHECK(static_cast<int>(row.size()) == C, "heatmap: rows of different lengths");
    for (const double v : row)
      if (std::isfinite(v)) { lo = std::min(lo, v); hi = std::max(hi, v); }
  }
  if (!std::isfinite(lo)) { lo = 0; hi = 1; }
  if (hi == lo) hi = lo + 1;
  size_t longest = 1;
  for (const auto& s : m.row_labels) longest = std::max(longest, s.size());
  const double left = 30 + 7.0 * longest, top = 70, cell = m.cell;
  // Wide enough for the title and the colour-bar label, not only for the cells.
  const double width = std::max({left + C * cell + 110, 9.0 * m.title.size() + 40,
                                 left + C * cell + 40 + 6.5 * m.colorbar_label.size()}),
               height = top + R * cell + 50;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\""
    << num(height) << "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" "
    << "fill=\"white\"/>\n"
    << text_el(width / 2, 22, m.title, "middle", 15, " font-weight=\"bold\"");
  for (int r = 0; r < R; ++r) {
    o << text_el(left - 6, top + (r + 0.5) * cell + 4, m.row_labels[r], "end", 11);
    for (int c = 0; c < C; ++c) {
      const double v = m.values[r][c];
      const std::string fill = std::isfinite(v) ? scale_color((v - lo) / (hi - lo)) : "#bbbbbb";
      o << "<rect x=\"" << num(left + c * cell) << "\" y=\"" << num(top + r * cell)
        << "\" width=\"" << num(cell) << "\" height=\"" << num(cell) << "\" fill=\"" << fill
        << "\"><title>" << xml_escape(m.row_labels[r] + " / " + m.col_labels[c] + ": " +
                                      tick_label(v)) << "</title></rect>\n";
      if (m.annotate && std::isfinite(v))
        o << text_el(left + (c + 0.5) * cell, top + (r + 0.5) * cell + 3, cell_label(v), "middle",
                     8, (v - lo) / (hi - lo) > 0.6 ? "" : " fill=\"white\"");
    }
  }
  for (int c = 0; c < C; ++c) {
    const double x = left + (c + 0.5) * cell, y = top - 6;
    o << text_el(x, y, m.col_labels[c], "start", 11,
                 " transform=\"rotate(-60 " + num(x) + " " + num(y) + ")\"");
  }
  o << text_el(left + C * cell / 2.0, top + R * cell + 30, m.x_label, "middle", 13)
    << text_el(14, top + R * cell / 2.0, m.y_label, "middle", 13,
               " transform=\"rotate(-90 14 " + num(top + R * cell / 2.0) + ")\"");
  // Colour bar: a vertical gradient from hi (top) to lo (bottom), with its end values.
  const double bx = left + C * cell + 24, bh = std::max(R * cell, 60.0);
  o << "<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int k = 0; k <= 4; ++k)
    o << "<stop offset=\"" << num(k / 4.0) << "\" stop-color=\"" << scale_color(k / 4.0) << "\"/>";
  o << "</linearGradient></defs>\n<rect x=\"" << num(bx) << "\" y=\"" << num(top)
    << "\" width=\"14\" height=\"" << num(bh) << "\" fill=\"url(#scale)\" stroke=\"#333\"/>\n"
    << text_el(bx + 18, top + 10, tick_label(hi), "start", 11)
    << text_el(bx + 18, top + bh, tick_label(lo), "start", 11)
    << text_el(bx + 7, top + bh + 18, m.colorbar_label, "middle", 11);
  o << "</svg>\n";
  return o.str();
}

// Atomic, and a failed write (a full disk) names the file and leaves no .tmp (io/text_io.h).
void write_svg(const std::string& path, const std::string& svg) { write_file_atomic(path, svg); }

}  // namespace moe
