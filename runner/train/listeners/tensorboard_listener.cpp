#include <optional>

#include "report/event_file_writer.hpp"
#include "report/tensorboard_scalars.hpp"
#include "train/listeners/stage_listeners.hpp"

namespace exprun {
namespace {

class TensorboardListener : public StageListener {
 public:
  TensorboardListener(std::filesystem::path dir, std::vector<std::string> symbols)
      : dir_(std::move(dir)), symbols_(std::move(symbols)) {}

  // In the stage directory, so `tensorboard --logdir results/` names the curves
  // <experiment>/<run-id>/<stage>. A resumed stage starts a new event file beside the old.
  void on_stage_start(const StageProgress&) override { events_.emplace(dir_); }

  void on_epoch_end(const EpochEndEvent& event, const StageProgress&) override {
    write_epoch_scalars(*events_, to_json(event.record), to_json(event.validation, symbols_));
  }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> symbols_;
  std::optional<EventFileWriter> events_;
};

}  // namespace

std::unique_ptr<StageListener> tensorboard_listener(const StageListenerContext& context) {
  return std::make_unique<TensorboardListener>(context.stage_dir, context.symbols);
}

}  // namespace exprun
