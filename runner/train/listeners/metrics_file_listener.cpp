#include "train/listeners/stage_listeners.hpp"
#include "util/atomic_file.hpp"

namespace exprun {
namespace {

class MetricsFileListener : public StageListener {
 public:
  explicit MetricsFileListener(std::filesystem::path file) : file_(std::move(file)) {}

  void on_stage_start(const StageProgress& progress) override {
    if (!progress.resumed.empty()) write(progress);
  }
  void on_epoch_end(const EpochEndEvent&, const StageProgress& progress) override {
    write(progress);
  }

 private:
  void write(const StageProgress& progress) const {
    std::string lines;
    for (const auto& record : progress.history) lines += to_json(record).dump() + "\n";
    write_file_atomically(file_, lines);
  }

  std::filesystem::path file_;
};

}  // namespace

std::unique_ptr<StageListener> metrics_file_listener(const StageListenerContext& context) {
  return std::make_unique<MetricsFileListener>(context.stage_dir / "metrics.jsonl");
}

}  // namespace exprun
