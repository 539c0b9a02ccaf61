// Gradient accumulation is the trainer's own: every step runs as passes of memory.micro_batch
// images. This strategy is kept, doing nothing, so that experiment files written when it did
// the splitting (memory.strategies = ["gradient_accumulation"]) still run, unchanged.
#include <exprun/sdk/sdk.hpp>

namespace {

using namespace exprun::sdk;

class GradientAccumulation : public MemoryStrategy {
 public:
  static constexpr const char* kName = "gradient_accumulation";
  static constexpr const char* kSummary =
      "accepted for older files and does nothing: the trainer always splits a step into "
      "micro-batches of memory.micro_batch images";

  static ParamSchema schema() { return ParamSchema(); }

  GradientAccumulation(const Params&, const MemoryContext& context) {
    if (context.micro_batch < 1) throw ParamError("memory.micro_batch must be at least 1");
  }
};

}  // namespace

EXPRUN_PLUGIN(GradientAccumulation)
