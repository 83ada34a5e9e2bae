// loss_plot.h — loss.svg, the picture of a training run that train writes beside its log.jsonl
// (notes/design.md "Hardening" "Plots from train"; what nanoGPT users look at first).
//
// Two panels side by side, each with the training loss (the mean over each logged window) and
// the validation loss (at the evaluation steps):
//   left   against tokens seen;
//   right  against training compute, the paper's FLOP count (SPEC §5 F_tok x tokens), the axis the
//          paper compares dense and MoE models on.
// Drawn with io/svg.h's line chart; the two charts are placed in one SVG document by nesting.
// The data is read back from log.jsonl, so a resumed run's plot shows the whole curve.
#pragma once
#include <string>
#include <vector>

#include "train/run_log.h"

namespace moe {

// The SVG document for `points` (file order; a point's NaN values are left out of the lines).
std::string loss_plot_svg(const std::vector<LogPoint>& points, const std::string& title);

// Reads `log_path` and writes the picture to `svg_path` atomically (checked writes). Returns
// false, writing nothing, when the log has no point to draw yet.
bool write_loss_plot(const std::string& log_path, const std::string& svg_path,
                     const std::string& title);

}  // namespace moe
