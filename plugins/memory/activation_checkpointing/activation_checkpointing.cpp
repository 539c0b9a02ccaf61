// Activation checkpointing: the chosen parts of the model keep only their inputs during the
// forward pass and recompute their activations in backward. Trades one more forward pass of
// those parts for the memory of their activations; which parts exist is up to the model
// (Model::checkpointable_parts), and the model does the recomputing (sdk::checkpoint_segment).
#include <exprun/sdk/sdk.hpp>

#include <algorithm>
#include <set>

namespace {

using namespace exprun::sdk;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + ("\"" + n + "\"");
  return out;
}

class ActivationCheckpointing : public MemoryStrategy {
 public:
  static constexpr const char* kName = "activation_checkpointing";
  static constexpr const char* kSummary =
      "recompute chosen model parts in backward instead of keeping their activations";

  static ParamSchema schema() {
    return ParamSchema().add_string_list(
        "parts", std::vector<std::string>{"all"},
        "model parts to recompute, e.g. [\"stage3\", \"stage4\"] for hrnet (stem, stage2, "
        "stage3, stage4, head); [\"all\"] = every part the model offers");
  }

  ActivationCheckpointing(const Params& params, const MemoryContext&)
      : parts_(params.get_string_list("parts")) {
    if (parts_.empty()) throw ParamError("parts: expected at least one part, or [\"all\"]");
  }

  void prepare(Model& model) override {
    const auto offered = model.checkpointable_parts();
    if (offered.empty()) {
      throw ParamError(
          "the model offers no parts to checkpoint (its checkpointable_parts() is "
          "empty); remove \"activation_checkpointing\" from memory.strategies");
    }
    std::set<std::string> chosen;
    for (const auto& part : parts_) {
      if (part == "all") {
        chosen.insert(offered.begin(), offered.end());
      } else if (std::find(offered.begin(), offered.end(), part) != offered.end()) {
        chosen.insert(part);
      } else {
        throw ParamError("parts: unknown part \"" + part + "\"; this model offers " +
                         joined(offered) + " (or \"all\")");
      }
    }
    model.set_checkpointed_parts(std::move(chosen));
  }

 private:
  std::vector<std::string> parts_;
};

}  // namespace

EXPRUN_PLUGIN(ActivationCheckpointing)
