// test_svg.cpp — the SVG writer (src/io/svg.h): tick placement and labels, and that charts and
// heatmaps contain what they were given (points, legend entries, labels, escaped text, grey
// non-finite cells).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/svg.h"

namespace moe {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Svg, LinearTicksUseOneTwoFiveSteps) {
  EXPECT_EQ(axis_ticks(0, 1, false, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  const auto t = axis_ticks(13, 87, false, 6);  // raw step 12.3 -> 20
  EXPECT_EQ(t, (std::vector<double>{20, 40, 60, 80}));
  EXPECT_TRUE(axis_ticks(1, 1, false).empty());
}

TEST(Svg, LogTicksArePowersOfTen) {
  EXPECT_EQ(axis_ticks(5e14, 2e18, true, 6), (std::vector<double>{1e15, 1e16, 1e17, 1e18}));
  // Under two decades: 1x, 2x, 5x; well under one: every multiple.
  EXPECT_EQ(axis_ticks(1.5e15, 9e15, true), (std::vector<double>{2e15, 5e15}));
  EXPECT_EQ(axis_ticks(1.5e15, 4e15, true), (std::vector<double>{2e15, 3e15, 4e15}));
  EXPECT_EQ(tick_label(1e15), "1e15");
  EXPECT_EQ(tick_label(2.5e16), "2.5e16");
  EXPECT_EQ(tick_label(0.25), "0.25");
  EXPECT_EQ(tick_label(12), "12");
}

TEST(Svg, LineChartHasSeriesLegendAndEscapedText) {
  LineChart c;
  c.title = "ppl <in-domain> & more";
  c.x_label = "compute";
  c.y_label = "ppl";
  c.log_x = true;
  c.reference_y = 1.0;
  LineSeries a;
  a.name = "dense";
  a.x = {1e15, 1e16, 1e17};
  a.y = {30, 20, NAN};  // the NaN point is skipped
  LineSeries b;
  b.name = "MoE";
  b.x = {1e15, 1e16};
  b.y = {22, 16};
  b.lines = false;
  c.series = {a, b};
  const std::string svg = line_chart_svg(c);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("ppl &lt;in-domain&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(count(svg, "<path"), 1u);  // MoE is markers only
  EXPECT_EQ(count(svg, "<circle"), 2u + 2u + 2u);  // points of both + one legend dot each
  EXPECT_NE(svg.find(">dense</text>"), std::string::npos);
  EXPECT_NE(svg.find(">MoE</text>"), std::string::npos);
  EXPECT_NE(svg.find(">1e16</text>"), std::string::npos);
}

// ---- the legend keeps off the data -----------------------------------------------------------
// Read back from the SVG itself (so the check does not trust the layout code): each legend entry
// is a <text> with a name; its box runs from its sample line (30 px to the left) to the end of
// the name. Data markers are every <circle> except the legend's own (18 px left of its text),
// data lines every <path> "M x,y L x,y ..." segment.

double attr(const std::string& el, const std::string& name) {
  const size_t p = el.find(" " + name + "=\"");
  return p == std::string::npos ? NAN : std::stod(el.substr(p + name.size() + 3));
}

std::vector<std::string> elements(const std::string& svg, const std::string& tag) {
  std::vector<std::string> out;
  for (size_t p = svg.find("<" + tag + " "); p != std::string::npos;
       p = svg.find("<" + tag + " ", p + 1))
    out.push_back(svg.substr(p, svg.find('>', p) - p + 1));
  return out;
}

struct Box {
  double x0, y0, x1, y1;
  bool has(double x, double y) const { return x >= x0 && x <= x1 && y >= y0 && y <= y1; }
};

// Legend boxes, one per named entry, and whether (px, py) is one of the legend's own markers.
std::vector<Box> legend_boxes(const std::string& svg, const std::vector<std::string>& names,
                              std::vector<std::pair<double, double>>* legend_dots) {
  std::vector<Box> boxes;
  for (const std::string& n : names) {
    const size_t end = svg.find(">" + n + "</text>");
    const size_t start = svg.rfind("<text ", end);
    const std::string el = svg.substr(start, end - start + 1);
    const double x = attr(el, "x"), y = attr(el, "y");
    boxes.push_back({x - 30, y - 12, x + 7.0 * n.size(), y + 3});
    legend_dots->push_back({x - 18, y - 4});
  }
  return boxes;
}

// The straight pieces of every <path d="M..L..">, sampled every pixel or so.
std::vector<std::pair<double, double>> path_samples(const std::string& svg) {
  std::vector<std::pair<double, double>> out;
  for (const std::string& el : elements(svg, "path")) {
    std::istringstream d(el.substr(el.find(" d=\"") + 4));
    std::string cmd;
    bool have = false;
    double px = 0, py = 0;
    while (d >> cmd && (cmd[0] == 'M' || cmd[0] == 'L')) {
      const double x = std::stod(cmd.substr(1)), y = std::stod(cmd.substr(cmd.find(',') + 1));
      if (cmd[0] == 'L' && have)
        for (int k = 0; k <= 400; ++k)
          out.push_back({px + (x - px) * k / 400.0, py + (y - py) * k / 400.0});
      px = x;
      py = y;
      have = true;
    }
  }
  return out;
}

// Counts of data markers and line samples inside any legend box.
int data_under_legend(const LineChart& c) {
  const std::string svg = line_chart_svg(c);
  std::vector<std::string> names;
  for (const LineSeries& s : c.series)
    if (!s.name.empty()) names.push_back(s.name);
  std::vector<std::pair<double, double>> dots;
  const std::vector<Box> boxes = legend_boxes(svg, names, &dots);
  int hits = 0;
  for (const std::string& el : elements(svg, "circle")) {
    const double x = attr(el, "cx"), y = attr(el, "cy");
    bool own = false;
    for (const auto& d : dots) own = own || (std::fabs(d.first - x) < 0.01 && std::fabs(d.second - y) < 0.01);
    if (own) continue;
    for (const Box& b : boxes) hits += b.has(x, y);
  }
  for (const auto& p : path_samples(svg))
    for (const Box& b : boxes) hits += b.has(p.first, p.second);
  return hits;
}

TEST(Svg, LegendNeverCoversTheData) {
  // Points in both top corners (the old rule only compared the two and sat on one of them).
  LineChart top;
  LineSeries a;
  a.name = "dense model, measured";
  a.x = {1, 1.2, 5, 9, 9.5};
  a.y = {10, 9.6, 2, 9.7, 10};
  LineSeries b;
  b.name = "MoE";
  b.x = {1, 5, 10};
  b.y = {9.8, 1, 9.9};
  b.lines = false;
  top.series = {a, b};
  EXPECT_EQ(data_under_legend(top), 0);
  const LineChartLayout lt = line_chart_layout(top);
  EXPECT_FALSE(lt.legend_outside);
  EXPECT_GT(lt.legend.y, lt.frame.y + lt.frame.h / 2);  // a bottom corner was free

  // Lines through all four corners: the legend moves out of the frame, to its right.
  LineChart full;
  LineSeries z;
  z.name = "zigzag";
  for (int i = 0; i <= 20; ++i) { z.x.push_back(i); z.y.push_back(i % 2 ? 0.0 : 1.0); }
  full.series = {z};
  full.reference_y = 0.5;
  EXPECT_EQ(data_under_legend(full), 0);
  const LineChartLayout lf = line_chart_layout(full);
  EXPECT_TRUE(lf.legend_outside);
  EXPECT_GE(lf.legend.x, lf.frame.x + lf.frame.w);
  EXPECT_LE(lf.legend.x + lf.legend.w, full.width);

  // Random charts, log axes included: never a point or a segment under the legend.
  for (int seed = 1; seed <= 30; ++seed) {
    LineChart r;
    r.log_x = seed % 2 == 0;
    r.log_y = seed % 3 == 0;
    unsigned state = static_cast<unsigned>(seed) * 2654435761u;
    const auto next = [&] { state = state * 1103515245u + 12345u; return (state >> 8) % 1000 / 1000.0; };
    for (int k = 0; k < 3; ++k) {
      LineSeries s;
      s.name = "series " + std::to_string(k);
      for (int i = 0; i < 4 + seed % 5; ++i) {
        s.x.push_back(std::pow(10.0, 1 + 3 * next()));
        s.y.push_back(1 + 100 * next());
      }
      std::sort(s.x.begin(), s.x.end());
      r.series.push_back(s);
    }
    EXPECT_EQ(data_under_legend(r), 0) << "seed " << seed;
  }
}

TEST(Svg, HeatmapCellsLabelsAndScale) {
  Heatmap h;
  h.title = "tokens per expert";
  h.row_labels = {"layer 1", "layer 3"};
  h.col_labels = {"e0", "e1", "e2"};
  h.values = {{10, 20, 30}, {0, NAN, 60}};
  h.colorbar_label = "tokens";
  h.annotate = true;
  const std::string svg = heatmap_svg(h);
  EXPECT_EQ(count(svg, "<rect x="), 6u + 1u);  // 6 cells + the colour bar
  EXPECT_EQ(count(svg, "fill=\"#bbbbbb\""), 1u);  // the NaN cell
  EXPECT_NE(svg.find("fill=\"#440154\""), std::string::npos);  // the minimum (0)
  EXPECT_NE(svg.find("fill=\"#fde725\""), std::string::npos);  // the maximum (60)
  EXPECT_NE(svg.find(">layer 3</text>"), std::string::npos);
  EXPECT_NE(svg.find(">e2</text>"), std::string::npos);
  EXPECT_NE(svg.find(">tokens</text>"), std::string::npos);
  h.col_labels.pop_back();
  EXPECT_THROW(heatmap_svg(h), Error);
}

TEST(Svg, WriteSvgIsAtomicAndCreatesFolders) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "moe-gpt-svg-test";
  fs::remove_all(dir);
  write_svg((dir / "sub" / "a.svg").string(), "<svg/>\n");
  std::ifstream in(dir / "sub" / "a.svg");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "<svg/>\n");
  EXPECT_FALSE(fs::exists(dir / "sub" / "a.svg.tmp"));
}

}  // namespace
}  // namespace moe
