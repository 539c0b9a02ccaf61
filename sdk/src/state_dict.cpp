// Matching a state dict's tensors to a module by name, and the report of what happened.
#include "exprun/sdk/state_dict.hpp"

#include <algorithm>
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

// Groups of more than this many names that share their first component read as one entry.
constexpr std::size_t kGroupAbove = 8;
// How many names of each kind a strict-mode error lists.
constexpr std::size_t kErrorNames = 5;

// "stage2.* (312), head.0.weight, head.0.bias": names in a large group sharing their first
// component read as one entry, so that a whole missing head or classifier is one item, while
// a few names that stand out (a misnamed layer) are listed as they are.
std::string grouped(const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string> order;
  for (const auto& name : names) {
    const auto first = name.substr(0, name.find('.'));
    if (groups[first].empty()) order.push_back(first);
    groups[first].push_back(name);
  }
  std::string out;
  auto add = [&out](const std::string& item) { out += (out.empty() ? "" : ", ") + item; };
  for (const auto& first : order) {
    const auto& members = groups[first];
    if (members.size() > kGroupAbove) {
      add(first + ".* (" + std::to_string(members.size()) + ")");
    } else {
      for (const auto& m : members) add(m);
    }
  }
  return out;
}

// "3 missing (in the model, not in the file): a, b, c": the first few names and a count.
std::string first_few(const std::vector<std::string>& names, const std::string& what) {
  std::string out = std::to_string(names.size()) + " " + what + ": ";
  for (std::size_t i = 0; i < names.size() && i < kErrorNames; ++i)
    out += (i ? ", " : "") + names[i];
  if (names.size() > kErrorNames)
    out += ", ... (" + std::to_string(names.size() - kErrorNames) + " more)";
  return out;
}

// The distinct first components of `names`, as a TOML list: what pretrained_ignore would need.
std::string first_components(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> firsts;
  for (const auto* names : {&a, &b}) {
    for (const auto& name : *names) {
      const auto first = name.substr(0, name.find('.'));
      if (std::find(firsts.begin(), firsts.end(), first) == firsts.end()) firsts.push_back(first);
    }
  }
  std::string out = "[";
  for (std::size_t i = 0; i < firsts.size(); ++i) out += (i ? ", \"" : "\"") + firsts[i] + "\"";
  return out + "]";
}

// The prefixes of `ignore` as whole components, trailing dots dropped ("head." = "head").
std::vector<std::string> ignore_prefixes(const std::vector<std::string>& ignore,
                                         const std::string& path) {
  std::vector<std::string> out;
  for (auto prefix : ignore) {
    while (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
    if (prefix.empty())
      throw StateDictError(path +
                           ": pretrained_ignore holds an empty prefix, which would ignore "
                           "every tensor; name the parts to ignore, e.g. \"classifier\"");
    out.push_back(prefix);
  }
  return out;
}

// The index in `prefixes` of the first one that `name` lies under, or prefixes.size().
std::size_t ignored_by(const std::string& name, const std::vector<std::string>& prefixes) {
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const auto& p = prefixes[i];
    if (name.compare(0, p.size(), p) == 0 && (name.size() == p.size() || name[p.size()] == '.'))
      return i;
  }
  return prefixes.size();
}

// A batch counter the file may lack without harm: PyTorch < 0.4.1 saved none, and a BN with a
// momentum does not read it.
bool absent_batch_counter(const std::string& name,
                          const std::map<std::string, torch::Tensor>& by_name) {
  const std::string suffix = "num_batches_tracked";
  if (name.size() < suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  return by_name.count(name.substr(0, name.size() - suffix.size()) + "running_mean") != 0;
}

}  // namespace

std::string StateDictReport::text() const {
  std::ostringstream out;
  out << "pretrained weights from " << file << ": " << matched.size() + channel_summed.size()
      << " tensors matched, " << missing.size() << " missing (left as initialised), "
      << left_over.size() << " left over (ignored)";
  if (!skipped.empty()) out << ", " << skipped.size() << " skipped (shape mismatch)";
  if (!ignored.empty()) out << ", " << ignored.size() << " under pretrained_ignore";
  out << "\n";
  if (!channel_summed.empty()) {
    out << "  summed over the 3 input channels into 1: " << grouped(channel_summed) << "\n";
  }
  if (!missing.empty()) out << "  missing: " << grouped(missing) << "\n";
  if (!left_over.empty()) out << "  left over: " << grouped(left_over) << "\n";
  for (const auto& s : skipped) out << "  skipped: " << s << "\n";
  if (!ignored.empty()) out << "  under pretrained_ignore: " << grouped(ignored) << "\n";
  for (const auto& prefix : unused_ignore) {
    out << "  warning: pretrained_ignore prefix \"" << prefix
        << "\" matches no name in the file or the model\n";
  }
  return out.str();
}

StateDictReport load_state_dict(torch::nn::Module& module, const std::string& path,
                                const StateDictOptions& options) {
  const auto prefixes = ignore_prefixes(options.ignore, path);
  const auto stored = read_state_dict(path);
  StateDictReport report;
  report.file = path;

  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(/*recurse=*/true))
    targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(/*recurse=*/true))
    targets.emplace_back(b.key(), b.value());

  const std::map<std::string, torch::Tensor> by_name(stored.begin(), stored.end());
  std::vector<bool> prefix_used(prefixes.size(), false);
  std::set<std::string> ignored;
  // Whether `name` is under an ignore prefix; recorded once, wherever it appears.
  auto ignore = [&](const std::string& name) {
    const auto i = ignored_by(name, prefixes);
    if (i == prefixes.size()) return false;
    prefix_used[i] = true;
    if (ignored.insert(name).second) report.ignored.push_back(name);
    return true;
  };

  // Classified first, copied after: a strict-mode error leaves the module untouched.
  std::vector<std::pair<torch::Tensor*, const torch::Tensor*>> copies, sums;
  std::vector<std::string> required_missing;
  std::set<std::string> used;
  for (auto& [name, target] : targets) {
    if (ignore(name)) continue;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      if (!absent_batch_counter(name, by_name)) required_missing.push_back(name);
      continue;
    }
    used.insert(name);
    const auto& source = it->second;
    if (source.sizes() == target.sizes()) {
      copies.emplace_back(&target, &source);
      report.matched.push_back(name);
    } else if (summable_to_one_channel(source, target)) {
      sums.emplace_back(&target, &source);
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
    if (!used.count(name) && !ignore(name)) report.left_over.push_back(name);
  for (std::size_t i = 0; i < prefixes.size(); ++i)
    if (!prefix_used[i]) report.unused_ignore.push_back(prefixes[i]);

  if (report.matched.empty() && report.channel_summed.empty()) {
    std::string example = stored.front().first;
    throw StateDictError(path + ": no tensor name matches the model (the file has e.g. '" +
                         example + "', the model e.g. '" +
                         (targets.empty() ? std::string("nothing") : targets.front().first) +
                         "'): is it the weights of another architecture?");
  }
  if (options.strict && (!required_missing.empty() || !report.left_over.empty())) {
    std::string message = path + ": the file does not match the model (pretrained_strict = true):";
    if (!required_missing.empty())
      message += " " + first_few(required_missing, "missing (in the model, not in the file)") + ";";
    if (!report.left_over.empty())
      message +=
          " " + first_few(report.left_over, "left over (in the file, not in the model)") + ";";
    message +=
        " if parts are meant to differ, list their prefixes in pretrained_ignore (these names lie "
        "under " +
        first_components(required_missing, report.left_over) +
        "), or set pretrained_strict = false to load what matches";
    throw StateDictError(message);
  }
  if (options.strict && !report.unused_ignore.empty()) {
    throw StateDictError(
        path + ": pretrained_ignore prefix \"" + report.unused_ignore.front() +
        "\" matches no name in the file or the model (a typo?); the file has e.g. '" +
        stored.front().first + "'");
  }

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target->copy_(source->to(target->dtype()));
  for (auto& [target, source] : sums)
    target->copy_(source->to(torch::kDouble).sum(1, /*keepdim=*/true).to(target->dtype()));
  return report;
}

}  // namespace exprun::sdk
