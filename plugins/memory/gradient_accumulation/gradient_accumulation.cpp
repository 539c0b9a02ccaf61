// Gradient accumulation: one optimiser step of effective_batch images runs as several
// forward/backward passes of micro_batch images. The trainer weights each pass's batch-mean
// loss by its share of the batch, so the summed gradient equals the full batch's.
#include <exprun/sdk/sdk.hpp>

namespace {

using namespace exprun::sdk;

class GradientAccumulation : public MemoryStrategy {
 public:
  static constexpr const char* kName = "gradient_accumulation";
  static constexpr const char* kSummary =
      "split each optimiser step into micro-batches of memory.micro_batch images";

  static ParamSchema schema() { return ParamSchema(); }

  GradientAccumulation(const Params&, const MemoryContext& context)
      : micro_batch_(context.micro_batch) {
    if (micro_batch_ < 1) throw ParamError("memory.micro_batch must be at least 1");
  }

  // Full micro-batches first, then what is left: the last batch of an epoch is often short.
  std::vector<std::int64_t> partition(std::int64_t batch_size) const override {
    std::vector<std::int64_t> sizes;
    for (std::int64_t left = batch_size; left > 0; left -= micro_batch_) {
      sizes.push_back(std::min(left, micro_batch_));
    }
    return sizes;
  }

 private:
  std::int64_t micro_batch_;
};

}  // namespace

EXPRUN_PLUGIN(GradientAccumulation)
