#include "report/learning_curves.hpp"
#include "train/listeners/stage_listeners.hpp"

namespace exprun {
namespace {

class CurvesListener : public StageListener {
 public:
  CurvesListener(std::filesystem::path file, std::string title)
      : file_(std::move(file)), title_(std::move(title)) {}

  void on_epoch_end(const EpochEndEvent&, const StageProgress& progress) override {
    nlohmann::json history = nlohmann::json::array();
    for (const auto& record : progress.history) history.push_back(to_json(record));
    const nlohmann::json baseline_mre =
        progress.baseline_metrics
            ? to_json(progress.baseline_metrics->overall).at(metrics_json::kMre)
            : nlohmann::json(nullptr);
    write_learning_curves_png(
        file_, learning_curves_from_history(title_, history, baseline_mre, progress.best_epoch));
  }

 private:
  std::filesystem::path file_;
  std::string title_;
};

}  // namespace

std::unique_ptr<StageListener> curves_listener(const StageListenerContext& context) {
  return std::make_unique<CurvesListener>(context.stage_dir / "curves.png",
                                          context.experiment + " / " + context.stage);
}

}  // namespace exprun
