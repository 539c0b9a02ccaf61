#include "report/learning_curves.hpp"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "util/atomic_file.hpp"

namespace exprun {
namespace {

const cv::Scalar kWhite(255, 255, 255), kBlack(0, 0, 0), kGrey(170, 170, 170), kBlue(180, 90, 30),
    kRed(40, 40, 200), kGreen(60, 150, 60);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

std::string number(double v) {
  char out[32];
  std::snprintf(out, sizeof out, std::abs(v) >= 100 || v == 0 ? "%.0f" : "%.3g", v);
  return out;
}

// One panel: axes with min/max labels, the curve, and optionally a dashed reference line and
// a marked point.
void draw_panel(cv::Mat& image, const cv::Rect& area, const std::string& label,
                const std::vector<CurvePoint>& points, const cv::Scalar& colour,
                std::optional<double> reference, std::optional<double> marked_epoch) {
  const cv::Rect plot(area.x + 60, area.y + 30, area.width - 80, area.height - 70);
  cv::putText(image, label, {area.x + 60, area.y + 20}, kFont, 0.5, kBlack, 1, cv::LINE_AA);
  cv::rectangle(image, plot, kGrey, 1);

  std::vector<double> xs, ys;
  for (const auto& p : points) {
    if (!p.value || !std::isfinite(*p.value)) continue;
    xs.push_back(p.epoch);
    ys.push_back(*p.value);
  }
  if (ys.empty()) {
    cv::putText(image, "no values yet", {plot.x + 10, plot.y + plot.height / 2}, kFont, 0.5, kGrey,
                1, cv::LINE_AA);
    return;
  }
  double y_min = *std::min_element(ys.begin(), ys.end());
  double y_max = *std::max_element(ys.begin(), ys.end());
  if (reference && std::isfinite(*reference)) {
    y_min = std::min(y_min, *reference);
    y_max = std::max(y_max, *reference);
  }
  y_min = std::min(0.0, y_min);  // losses and errors read best from zero
  if (y_max - y_min < 1e-12) y_max = y_min + 1;
  const double x_min = 1, x_max = std::max(2.0, *std::max_element(xs.begin(), xs.end()));
  auto to_pixel = [&](double x, double y) {
    return cv::Point(
        plot.x + static_cast<int>(std::lround((x - x_min) / (x_max - x_min) * plot.width)),
        plot.y + plot.height -
            static_cast<int>(std::lround((y - y_min) / (y_max - y_min) * plot.height)));
  };

  cv::putText(image, number(y_max), {area.x + 4, plot.y + 5}, kFont, 0.4, kBlack, 1, cv::LINE_AA);
  cv::putText(image, number(y_min), {area.x + 4, plot.y + plot.height}, kFont, 0.4, kBlack, 1,
              cv::LINE_AA);
  cv::putText(image, "1", {plot.x - 3, plot.y + plot.height + 15}, kFont, 0.4, kBlack, 1,
              cv::LINE_AA);
  cv::putText(image, number(x_max), {plot.x + plot.width - 10, plot.y + plot.height + 15}, kFont,
              0.4, kBlack, 1, cv::LINE_AA);
  cv::putText(image, "epoch", {plot.x + plot.width / 2 - 20, plot.y + plot.height + 30}, kFont,
              0.45, kBlack, 1, cv::LINE_AA);

  if (reference && std::isfinite(*reference)) {
    for (double x = x_min; x < x_max; x += (x_max - x_min) / 40) {
      cv::line(image, to_pixel(x, *reference),
               to_pixel(std::min(x_max, x + (x_max - x_min) / 80), *reference), kGreen, 1,
               cv::LINE_AA);
    }
    cv::putText(image, "mean shape " + number(*reference),
                to_pixel(x_min, *reference) + cv::Point(4, -4), kFont, 0.4, kGreen, 1, cv::LINE_AA);
  }
  for (std::size_t i = 1; i < xs.size(); ++i) {
    cv::line(image, to_pixel(xs[i - 1], ys[i - 1]), to_pixel(xs[i], ys[i]), colour, 2, cv::LINE_AA);
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    cv::circle(image, to_pixel(xs[i], ys[i]), 3, colour, cv::FILLED, cv::LINE_AA);
    if (marked_epoch && xs[i] == *marked_epoch) {
      cv::circle(image, to_pixel(xs[i], ys[i]), 7, kBlack, 1, cv::LINE_AA);
      // Left of the point when it is near the right edge, so the label stays inside.
      const cv::Point at = to_pixel(xs[i], ys[i]);
      const bool near_right = at.x > plot.x + plot.width - 90;
      cv::putText(image, "best " + number(ys[i]), at + cv::Point(near_right ? -85 : 8, -10), kFont,
                  0.4, kBlack, 1, cv::LINE_AA);
    }
  }
}

}  // namespace

LearningCurves learning_curves_from_history(const std::string& title, const nlohmann::json& history,
                                            const nlohmann::json& baseline_mre,
                                            std::int64_t best_epoch) {
  LearningCurves curves;
  curves.title = title;
  auto value = [](const nlohmann::json& v) {
    return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt;
  };
  for (const auto& line : history) {
    const double epoch = line.at("epoch").get<double>();
    curves.train_loss.push_back({epoch, value(line.at("train_loss"))});
    curves.val_mre_mm.push_back({epoch, value(line.at("val_mre_mm"))});
  }
  curves.baseline_mre_mm = value(baseline_mre);
  if (best_epoch > 0) curves.best_epoch = static_cast<double>(best_epoch);
  return curves;
}

std::string render_learning_curves_png(const LearningCurves& curves) {
  cv::Mat image(380, 800, CV_8UC3, kWhite);
  cv::putText(image, curves.title, {10, 22}, kFont, 0.6, kBlack, 1, cv::LINE_AA);
  draw_panel(image, {0, 40, 400, 340}, "training loss", curves.train_loss, kBlue, std::nullopt,
             std::nullopt);
  draw_panel(image, {400, 40, 400, 340}, "validation MRE (mm)", curves.val_mre_mm, kRed,
             curves.baseline_mre_mm, curves.best_epoch);
  std::vector<unsigned char> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error("cannot encode the curves PNG");
  return std::string(png.begin(), png.end());
}

void write_learning_curves_png(const std::filesystem::path& path, const LearningCurves& curves) {
  write_file_atomically(path, render_learning_curves_png(curves));
}

}  // namespace exprun
