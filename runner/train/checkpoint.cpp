#include "train/checkpoint.hpp"

#include "util/atomic_file.hpp"

namespace exprun {
namespace {

CheckpointInfo read_info(torch::serialize::InputArchive& archive) {
  auto read = [&](const char* key) {
    c10::IValue v;
    archive.read(key, v);
    return v;
  };
  CheckpointInfo info;
  const auto version = read("exprun.format").toInt();
  if (version != CheckpointInfo::kFormatVersion) {
    throw std::runtime_error("checkpoint format " + std::to_string(version) + " is not " +
                             std::to_string(CheckpointInfo::kFormatVersion));
  }
  info.experiment = read("exprun.experiment").toStringRef();
  info.stage = read("exprun.stage").toStringRef();
  info.epoch = read("exprun.epoch").toInt();
  info.best_metric = read("exprun.best_metric").toDouble();
  info.best_epoch = read("exprun.best_epoch").toInt();
  info.effective_batch = read("exprun.effective_batch").toInt();
  info.micro_batch = read("exprun.micro_batch").toInt();
  info.config_json = read("exprun.config").toStringRef();
  return info;
}

template <typename F>
auto with_archive(const std::filesystem::path& path, F&& f) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    return f(archive);
  } catch (const c10::Error& e) {
    throw std::runtime_error("checkpoint " + path.string() +
                             " is unreadable or damaged: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw std::runtime_error("checkpoint " + path.string() +
                             " is unreadable or damaged: " + e.what());
  }
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, sdk::Model& model,
                     const torch::optim::Optimizer& optimizer,
                     const std::vector<std::shared_ptr<sdk::MemoryStrategy>>& strategies,
                     const CheckpointInfo& info) {
  torch::serialize::OutputArchive archive;
  archive.write("exprun.format", c10::IValue(CheckpointInfo::kFormatVersion));
  archive.write("exprun.experiment", c10::IValue(info.experiment));
  archive.write("exprun.stage", c10::IValue(info.stage));
  archive.write("exprun.epoch", c10::IValue(info.epoch));
  archive.write("exprun.best_metric", c10::IValue(info.best_metric));
  archive.write("exprun.best_epoch", c10::IValue(info.best_epoch));
  archive.write("exprun.effective_batch", c10::IValue(info.effective_batch));
  archive.write("exprun.micro_batch", c10::IValue(info.micro_batch));
  archive.write("exprun.config", c10::IValue(info.config_json));
  torch::serialize::OutputArchive model_archive;
  model.save(model_archive);
  archive.write("model", model_archive);
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  for (std::size_t i = 0; i < strategies.size(); ++i) {
    torch::serialize::OutputArchive strategy_archive;
    strategies[i]->save(strategy_archive);
    archive.write("memory." + std::to_string(i), strategy_archive);
  }
  replace_atomically(path,
                     [&](const std::filesystem::path& temp) { archive.save_to(temp.string()); });
}

CheckpointInfo read_checkpoint_info(const std::filesystem::path& path) {
  return with_archive(path, [](torch::serialize::InputArchive& a) { return read_info(a); });
}

CheckpointInfo load_model_weights(const std::filesystem::path& path, sdk::Model& model) {
  return with_archive(path, [&](torch::serialize::InputArchive& a) {
    CheckpointInfo info = read_info(a);
    torch::serialize::InputArchive model_archive;
    a.read("model", model_archive);
    model.load(model_archive);
    return info;
  });
}

}  // namespace exprun
