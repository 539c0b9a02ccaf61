#include <cmath>
#include <cstdio>

#include "train/listeners/stage_listeners.hpp"
#include "train/progress.hpp"

namespace exprun {
namespace {

class ConsoleListener : public StageListener {
 public:
  ConsoleListener(std::string stage, std::int64_t epochs)
      : stage_(std::move(stage)), epochs_(epochs), line_(stage_, epochs_) {}

  void on_epoch_start(std::int64_t epoch, std::int64_t total_steps) override {
    line_ = Progress(stage_, epochs_);
    line_.start_epoch(epoch, total_steps);
  }

  void on_step(const StepEvent& e) override {
    line_.step(e.step, e.loss, e.lr, e.images_per_second, e.seconds_left);
  }

  void on_epoch_end(const EpochEndEvent& event, const StageProgress& progress) override {
    const double baseline_mre =
        progress.baseline_metrics ? progress.baseline_metrics->overall.mre : std::nan("");
    char summary[256];
    std::snprintf(summary, sizeof summary,
                  "loss %.5f  val MRE %.3f mm  SDR@2mm %.1f%%  (mean shape %.3f mm)  %.1f img/s%s",
                  event.record.train_loss, event.record.val_mre_mm,
                  event.validation.overall.sdr.at(0), baseline_mre, event.record.images_per_second,
                  event.improved ? "  *best*" : "");
    Progress p(stage_, epochs_);
    p.start_epoch(event.record.epoch - 1, 0);
    p.end_epoch(summary);
  }

 private:
  std::string stage_;
  std::int64_t epochs_;
  Progress line_;
};

}  // namespace

std::unique_ptr<StageListener> console_listener(const StageListenerContext& context) {
  return std::make_unique<ConsoleListener>(context.stage, context.epochs);
}

}  // namespace exprun
