#include "train/listeners/stage_listeners.hpp"

namespace exprun {
namespace {

// report.json kept current while a long stage runs; the final section is the trainer's return.
class ReportListener : public StageListener {
 public:
  ReportListener(std::function<nlohmann::json()> section,
                 std::function<void(const nlohmann::json&)> on_report)
      : section_(std::move(section)), on_report_(std::move(on_report)) {}

  void on_epoch_end(const EpochEndEvent&, const StageProgress&) override { on_report_(section_()); }

 private:
  std::function<nlohmann::json()> section_;
  std::function<void(const nlohmann::json&)> on_report_;
};

}  // namespace

std::unique_ptr<StageListener> report_listener(const StageListenerContext& context) {
  return std::make_unique<ReportListener>(context.stage_report, context.on_report);
}

}  // namespace exprun
