#include "train/listeners/stage_listeners.hpp"

namespace exprun {

StageListeners make_stage_listeners(const StageListenerContext& context, StageProgress& progress) {
  StageListeners out;
  if (context.writes_files) {
    out.push_back(metrics_file_listener(context));
    out.push_back(tensorboard_listener(context));
    out.push_back(curves_listener(context));
    out.push_back(checkpoint_listener(context, progress));
  }
  out.push_back(console_listener(context));
  if (context.writes_files && context.on_report) out.push_back(report_listener(context));
  return out;
}

}  // namespace exprun
