#include <algorithm>
#include <system_error>

#include "train/listeners/stage_listeners.hpp"

namespace exprun {
namespace {

class CheckpointListener : public StageListener {
 public:
  CheckpointListener(const StageListenerContext& context, StageProgress& progress)
      : dir_(context.stage_dir / "checkpoints"),
        policy_(context.checkpoint),
        write_(context.write_checkpoint),
        progress_(progress) {}

  // epoch_N, then best, then latest: whatever a crash interrupts, latest never claims an epoch
  // whose best or epoch_N file was not yet written. Pruned files go last, once latest no
  // longer lists them.
  void on_epoch_end(const EpochEndEvent& event, const StageProgress&) override {
    const std::int64_t epoch = event.record.epoch;
    auto& kept = progress_.epoch_checkpoints;
    if (policy_.every > 0 && epoch % policy_.every == 0) {
      kept.push_back("epoch_" + std::to_string(epoch));
      write_(kept.back());
    }
    if (event.improved) write_("best");
    write_latest_and_prune();
  }

  // Resumed at the end of an epoch: its files may be half written (killed while writing latest,
  // after best), and after the last epoch no later one writes them again; a stale best.pt or
  // latest.pt would then start the next stage (init = "STAGE:best") from another epoch. The
  // state is exactly that end's, so its files are written again, in the same order.
  void on_stage_start(const StageProgress& progress) override {
    const std::int64_t epoch = progress.epochs_done;
    if (epoch == 0 || progress.unfinished.steps != 0) return;
    auto& kept = progress_.epoch_checkpoints;
    const std::string name = "epoch_" + std::to_string(epoch);
    if (policy_.every > 0 && epoch % policy_.every == 0) {
      if (std::find(kept.begin(), kept.end(), name) == kept.end()) kept.push_back(name);
      write_(name);
    }
    if (progress.best_epoch == epoch) write_("best");
    write_latest_and_prune();
  }

  // Stopped between two steps: latest holds the position, so the epoch continues exactly.
  void on_stage_end(const StageEndEvent& event, const StageProgress&) override {
    if (event.mid_epoch) write_("latest");
  }

 private:
  void write_latest_and_prune() {
    auto& kept = progress_.epoch_checkpoints;
    std::vector<std::string> removed;
    while (policy_.keep_last > 0 && kept.size() > static_cast<std::size_t>(policy_.keep_last)) {
      removed.push_back(kept.front());
      kept.erase(kept.begin());
    }
    write_("latest");
    for (const auto& name : removed) {
      std::error_code ignored;
      std::filesystem::remove(dir_ / (name + ".pt"), ignored);
    }
  }

  std::filesystem::path dir_;
  CheckpointConfig policy_;
  std::function<void(const std::string&)> write_;
  StageProgress& progress_;
};

}  // namespace

std::unique_ptr<StageListener> checkpoint_listener(const StageListenerContext& context,
                                                   StageProgress& progress) {
  return std::make_unique<CheckpointListener>(context, progress);
}

}  // namespace exprun
