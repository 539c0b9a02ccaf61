// A PNG of a stage's learning curves (training loss, validation MRE with the mean-shape
// baseline, against epoch) for people who do not run TensorBoard. Drawn with OpenCV, which the
// runner already uses for images, rather than adding a plotting library.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace exprun {

struct CurvePoint {
  double epoch = 0;
  std::optional<double> value;  // not drawn when unknown (a NaN metric)
};

struct LearningCurves {
  std::string title;  // e.g. "quickstart / train"
  std::vector<CurvePoint> train_loss;
  std::vector<CurvePoint> val_mre_mm;
  std::optional<double> baseline_mre_mm;  // drawn as a dashed line
  std::optional<double> best_epoch;       // marked on the MRE curve
};

// From a stage's history (the metrics.jsonl lines) and its mean-shape baseline MRE (null when
// not known); best_epoch 0 marks nothing.
LearningCurves learning_curves_from_history(const std::string& title, const nlohmann::json& history,
                                            const nlohmann::json& baseline_mre,
                                            std::int64_t best_epoch);

// Encodes the plot as PNG bytes (800 x 380).
std::string render_learning_curves_png(const LearningCurves& curves);
// Renders and writes it atomically.
void write_learning_curves_png(const std::filesystem::path& path, const LearningCurves& curves);

}  // namespace exprun
