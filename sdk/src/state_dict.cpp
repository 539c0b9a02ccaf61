// Matching a state dict's tensors to a module by name, and the report of what happened.
#include "exprun/sdk/state_dict.hpp"

#include <map>
#include <set>
#include <sstream>

namespace exprun::sdk {
namespace {

std::string shape_text(const torch::Tensor& t) { return c10::str(t.sizes()); }

// A 3-channel convolution weight for a model that takes 1 channel: O x 3 x kh x kw -> O x 1 x ...
bool summable_to_one_channel(const torch::Tensor& stored, const torch::Tensor& wanted) {
  return stored.dim() == 4 && wanted.dim() == 4 && stored.size(1) == 3 && wanted.size(1) == 1 &&
         stored.size(0) == wanted.size(0) && stored.size(2) == wanted.size(2) &&
         stored.size(3) == wanted.size(3);
}

// "stage2.* (312), head.* (10), conv1.weight": names grouped by their first component.
std::string grouped(const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string> order;
  for (const auto& name : names) {
    const auto first = name.substr(0, name.find('.'));
    if (groups[first].empty()) order.push_back(first);
    groups[first].push_back(name);
  }
  std::string out;
  for (const auto& first : order) {
    const auto& members = groups[first];
    if (!out.empty()) out += ", ";
    out += members.size() == 1 ? members.front()
                               : first + ".* (" + std::to_string(members.size()) + ")";
  }
  return out;
}

}  // namespace

std::string StateDictReport::text() const {
  std::ostringstream out;
  out << "pretrained weights from " << file << ": " << matched.size() + channel_summed.size()
      << " tensors matched, " << missing.size() << " missing (left as initialised), "
      << left_over.size() << " left over (ignored)";
  if (!skipped.empty()) out << ", " << skipped.size() << " skipped (shape mismatch)";
  out << "\n";
  if (!channel_summed.empty()) {
    out << "  summed over the 3 input channels into 1: " << grouped(channel_summed) << "\n";
  }
  if (!missing.empty()) out << "  missing: " << grouped(missing) << "\n";
  if (!left_over.empty()) out << "  left over: " << grouped(left_over) << "\n";
  for (const auto& s : skipped) out << "  skipped: " << s << "\n";
  return out.str();
}

StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                const StateDictOptions& options) {
  const auto stored = read_state_dict(path);
  StateDictReport report;
  report.file = path;

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(/*recurse=*/true))
    targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true))
    targets.emplace_back(b.key(), b.value());

  std::map<std::string, torch::Tensor> by_name(stored.begin(), stored.end());
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      continue;
    }
    used.insert(name);
    const auto& source = it->second;
    if (source.sizes() == target.sizes()) {
      target.copy_(source.to(target.dtype()));
      report.matched.push_back(name);
    } else if (summable_to_one_channel(source, target)) {
      target.copy_(source.to(torch::kDouble).sum(1, /*keepdim=*/true).to(target.dtype()));
      report.channel_summed.push_back(name);
    } else if (options.strict) {
      throw StateDictError(path + ": " + name + ": the file holds a tensor of shape " +
                           shape_text(source) + ", the model expects " + shape_text(target) +
                           " (set pretrained_strict = false to skip such tensors)");
    } else {
      report.skipped.push_back(name + ": file " + shape_text(source) + ", model " +
                               shape_text(target));
    }
  }
  for (const auto& [name, tensor] : stored)
    if (!used.count(name)) report.left_over.push_back(name);
  if (report.matched.empty() && report.channel_summed.empty()) {
    std::string example = stored.front().first;
    throw StateDictError(path + ": no tensor name matches the model (the file has e.g. '" +
                         example + "', the model e.g. '" +
                         (targets.empty() ? std::string("nothing") : targets.front().first) +
                         "'): is it the weights of another architecture?");
  }
  return report;
}

}  // namespace exprun::sdk
