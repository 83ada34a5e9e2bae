// test_svg.cpp — the SVG writer (src/io/svg.h): tick placement and labels, and that charts and
// heatmaps contain what they were given (points, legend entries, labels, escaped text, grey
// non-finite cells).
#include <gtest/gtest.h>

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
