#include "train/checkpoint.hpp"

#include "train/archive_declarations.hpp"
#include "train/optimizer_state.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>

#include "util/atomic_file.hpp"
#include "util/crc32c.hpp"
#include "util/fault_injection.hpp"
#include "util/file_kind.hpp"
#include "util/json_file.hpp"

namespace exprun {
namespace fs = std::filesystem;
namespace {

constexpr char kCheckpointMagic[8] = {'E', 'X', 'P', 'R', 'U', 'N', 'C', 'K'};
constexpr std::uint32_t kContainerVersion = 1;
constexpr std::size_t kHeaderSize = 8 + 4 + 8 + 4;

template <typename T>
void put_le(std::string& out, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

template <typename T>
T get_le(const char* in) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    value |= static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

// A sound checkpoint of another model (another width, another number of blocks): not damaged,
// so not reported as unreadable.
class OtherModel : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One line, however many LibTorch's message has.
[[noreturn]] void damaged(const fs::path& path, const std::string& why) {
  std::string line = why;
  std::replace(line.begin(), line.end(), '\n', ' ');
  throw std::runtime_error("checkpoint " + path.string() + " is " + line);
}

// The payload, after checking magic, length and checksum.
std::string read_payload(const fs::path& path) {
  // The kind of file first: a folder reads as empty, a FIFO or a device never ends.
  if (const std::string kind = irregular_file_kind(path); !kind.empty()) {
    damaged(path, kind == "a folder" ? "a folder, not a checkpoint file"
                                     : "not a regular file (" + kind + "), not a checkpoint file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("checkpoint " + path.string() + " cannot be opened");
  // The header before the payload: its length is checked against the file's before anything of
  // that size is allocated, so that any large file given by mistake is refused at once.
  std::string header(kHeaderSize, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  header.resize(static_cast<std::size_t>(in.gcount()));
  // Only as much of the magic as the file holds is compared: a file cut inside the header is
  // truncated, not foreign.
  const std::size_t magic_present = std::min(header.size(), sizeof kCheckpointMagic);
  if (std::memcmp(header.data(), kCheckpointMagic, magic_present) != 0)
    damaged(path, "not an exprun checkpoint (it does not start with EXPRUNCK)");
  if (header.size() < kHeaderSize) {
    damaged(path, "truncated (" + std::to_string(header.size()) + " bytes), shorter than its " +
                      std::to_string(kHeaderSize) + "-byte header");
  }
  const auto version = get_le<std::uint32_t>(header.data() + 8);
  if (version != kContainerVersion) {
    damaged(path, "of container version " + std::to_string(version) + "; this exprun reads " +
                      std::to_string(kContainerVersion));
  }
  const auto length = get_le<std::uint64_t>(header.data() + 12);
  const auto expected_crc = get_le<std::uint32_t>(header.data() + 20);
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw std::runtime_error("checkpoint " + path.string() + ": " + ec.message());
  const std::uint64_t present = size - kHeaderSize;
  if (present != length) {
    damaged(path, present < length
                      ? "truncated: " + std::to_string(present) + " of " + std::to_string(length) +
                            " payload bytes"
                      : "longer than its header says (" + std::to_string(present) +
                            " payload bytes, expected " + std::to_string(length) + ")");
  }
  std::string payload(length, '\0');
  in.read(payload.data(), static_cast<std::streamsize>(payload.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != length)
    damaged(path, "truncated while it was read (it changed underneath)");
  if (crc32c(payload.data(), payload.size()) != expected_crc) {
    damaged(path, "damaged: its CRC-32C does not match its contents");
  }
  return payload;
}

c10::IValue read_value(torch::serialize::InputArchive& archive, const char* key) {
  c10::IValue v;
  archive.read(key, v);
  return v;
}

CheckpointInfo read_info(torch::serialize::InputArchive& archive) {
  CheckpointInfo info;
  const auto version = read_value(archive, "exprun.format").toInt();
  if (version != CheckpointInfo::kFormatVersion) {
    throw std::runtime_error("format " + std::to_string(version) + " is not " +
                             std::to_string(CheckpointInfo::kFormatVersion));
  }
  auto str = [&](const char* key) { return read_value(archive, key).toStringRef(); };
  auto num = [&](const char* key) { return read_value(archive, key).toInt(); };
  info.experiment = str("exprun.experiment");
  info.stage = str("exprun.stage");
  info.epoch = num("exprun.epoch");
  info.step_in_epoch = num("exprun.step_in_epoch");
  info.global_step = num("exprun.global_step");
  info.monitor = str("exprun.monitor");
  info.best_metric = read_value(archive, "exprun.best_metric").toDouble();
  info.best_epoch = num("exprun.best_epoch");
  info.effective_batch = num("exprun.effective_batch");
  info.micro_batch = num("exprun.micro_batch");
  info.config = parse_json_text(str("exprun.config"), "exprun.config");
  for (const auto& symbol : read_value(archive, "exprun.landmark_symbols").toListRef())
    info.landmark_symbols.push_back(symbol.toStringRef());
  for (const auto& title : read_value(archive, "exprun.landmark_titles").toListRef())
    info.landmark_titles.push_back(title.toStringRef());
  info.trainer_state = parse_json_text(str("exprun.trainer_state"), "exprun.trainer_state");
  c10::IValue libtorch;
  if (archive.try_read("exprun.libtorch_version", libtorch)) {
    if (!libtorch.isString()) throw std::runtime_error("exprun.libtorch_version is not a string");
    info.libtorch_version = libtorch.toStringRef();
  }
  c10::IValue world_size;
  if (archive.try_read("exprun.world_size", world_size)) {
    if (!world_size.isInt() || world_size.toInt() < 1)
      throw std::runtime_error("exprun.world_size is not a positive integer");
    info.world_size = world_size.toInt();
  }
  c10::IValue seed;
  if (archive.try_read("exprun.seed", seed)) {
    if (!seed.isInt()) throw std::runtime_error("exprun.seed is not an integer");
    // Stored as the int64 with the same bits: IValue has no unsigned integer.
    info.seed = static_cast<std::uint64_t>(seed.toInt());
  }
  return info;
}

// device: where the tensors go. Without it they return to the device they were saved from,
// and loading into a model elsewhere moves its parameters there (a rank on cuda:1 reading rank
// 0's file would train on cuda:0).
template <typename F>
auto with_archive(const fs::path& path, F&& f, c10::optional<torch::Device> device = {}) {
  const std::string payload = read_payload(path);
  try {
    check_archive_declarations(payload);
    torch::serialize::InputArchive archive;
    archive.load_from(payload.data(), payload.size(), device);
    return f(archive);
  } catch (const OtherModel& e) {
    throw std::runtime_error("checkpoint " + path.string() +
                             " does not fit this model: " + e.what());
  } catch (const c10::Error& e) {
    damaged(path, std::string("unreadable: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    damaged(path, std::string("unreadable: ") + e.what());
  }
}

void write_bytes(const fs::path& path, const std::string& bytes, const std::string& fault_name) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  // Half the file, then the fault point: a kill here leaves exactly the partial temporary file
  // a crash during a real write would.
  const std::size_t half = bytes.size() / 2;
  out.write(bytes.data(), static_cast<std::streamsize>(half));
  out.flush();
  if (!fault_name.empty()) fault_point(fault_name);
  out.write(bytes.data() + half, static_cast<std::streamsize>(bytes.size() - half));
  out.close();
  // The stream keeps no reason; the failed write(2) or close(2) left it in errno.
  if (!out) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
}

// The tensor paths an archive written by Module::save holds ("stem.conv1.weight"): a submodule
// is a nested archive, a parameter or buffer a tensor.
void stored_tensor_paths(torch::serialize::InputArchive& archive, const std::string& prefix,
                         std::vector<std::string>& out) {
  for (const auto& key : archive.keys()) {
    torch::serialize::InputArchive child;
    if (archive.try_read(key, child)) {
      stored_tensor_paths(child, prefix + key + ".", out);
      continue;
    }
    c10::IValue value;
    if (archive.try_read(key, value) && value.isTensor()) out.push_back(prefix + key);
  }
}

std::string listed(const std::vector<std::string>& items) {
  const std::size_t shown = std::min<std::size_t>(items.size(), 3);
  std::string text;
  for (std::size_t i = 0; i < shown; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > shown) text += " and " + std::to_string(items.size() - shown) + " more";
  return text;
}

// Module::load takes each stored tensor's shape as its own, so a checkpoint of another width
// would silently turn the model into that width, and stored tensors the model lacks (one more
// block) would be dropped without a word. Both are refused, naming the tensors.
void load_model_exactly(torch::nn::Module& model, torch::serialize::InputArchive& archive) {
  std::map<std::string, std::vector<std::int64_t>> expected;
  for (const auto& p : model.named_parameters()) expected[p.key()] = p.value().sizes().vec();
  for (const auto& b : model.named_buffers()) expected[b.key()] = b.value().sizes().vec();
  // The model's own load first: a plugin that knows an old layout of its weights says so more
  // precisely than a list of names can. LibTorch's "No such serialized tensor" is replaced by
  // the list below.
  std::exception_ptr load_error;
  try {
    model.load(archive);
  } catch (const c10::Error&) {
    load_error = std::current_exception();
  }
  std::vector<std::string> stored;
  stored_tensor_paths(archive, "", stored);
  std::vector<std::string> missing;
  for (const auto& [path, sizes] : expected)
    if (std::find(stored.begin(), stored.end(), path) == stored.end()) missing.push_back(path);
  if (!missing.empty()) {
    throw OtherModel("it lacks weights the model has (" + listed(missing) +
                     "); it was trained with another model configuration");
  }
  if (load_error) std::rethrow_exception(load_error);
  std::vector<std::string> extra;
  for (const auto& path : stored)
    if (expected.count(path) == 0) extra.push_back(path);
  std::sort(extra.begin(), extra.end());
  if (!extra.empty()) {
    throw OtherModel("it holds weights the model lacks (" + listed(extra) +
                     "); it was trained with another model configuration");
  }
  std::vector<std::string> reshaped;
  for (const auto& p : model.named_parameters())
    if (p.value().sizes().vec() != expected[p.key()]) reshaped.push_back(p.key());
  for (const auto& b : model.named_buffers())
    if (b.value().sizes().vec() != expected[b.key()]) reshaped.push_back(b.key());
  if (!reshaped.empty()) {
    const auto& first = reshaped.front();
    auto shape = [](const std::vector<std::int64_t>& sizes) {
      std::string text = "[";
      for (std::size_t i = 0; i < sizes.size(); ++i)
        text += (i ? ", " : "") + std::to_string(sizes[i]);
      return text + "]";
    };
    std::vector<std::int64_t> found;
    for (const auto& p : model.named_parameters())
      if (p.key() == first) found = p.value().sizes().vec();
    for (const auto& b : model.named_buffers())
      if (b.key() == first) found = b.value().sizes().vec();
    throw OtherModel("its weights have other shapes than the model's (" + listed(reshaped) + "; " +
                     first + " is " + shape(found) + " in it, " + shape(expected[first]) +
                     " in the model); it was trained with another model configuration");
  }
}

}  // namespace

bool is_checkpoint_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof kCheckpointMagic] = {};
  return in.read(magic, sizeof magic) &&
         std::memcmp(magic, kCheckpointMagic, sizeof kCheckpointMagic) == 0;
}

void save_checkpoint(const fs::path& path, const TrainingState& state, const CheckpointInfo& info,
                     const std::string& fault_name) {
  torch::serialize::OutputArchive archive;
  archive.write("exprun.format", c10::IValue(CheckpointInfo::kFormatVersion));
  archive.write("exprun.experiment", c10::IValue(info.experiment));
  archive.write("exprun.stage", c10::IValue(info.stage));
  archive.write("exprun.epoch", c10::IValue(info.epoch));
  archive.write("exprun.step_in_epoch", c10::IValue(info.step_in_epoch));
  archive.write("exprun.global_step", c10::IValue(info.global_step));
  archive.write("exprun.monitor", c10::IValue(info.monitor));
  archive.write("exprun.best_metric", c10::IValue(info.best_metric));
  archive.write("exprun.best_epoch", c10::IValue(info.best_epoch));
  archive.write("exprun.effective_batch", c10::IValue(info.effective_batch));
  archive.write("exprun.micro_batch", c10::IValue(info.micro_batch));
  archive.write("exprun.config", c10::IValue(info.config.dump()));
  archive.write("exprun.landmark_symbols",
                c10::IValue(c10::List<std::string>(info.landmark_symbols)));
  archive.write("exprun.landmark_titles",
                c10::IValue(c10::List<std::string>(info.landmark_titles)));
  archive.write("exprun.trainer_state", c10::IValue(info.trainer_state.dump()));
  archive.write("exprun.libtorch_version", c10::IValue(std::string(TORCH_VERSION)));
  archive.write("exprun.world_size", c10::IValue(info.world_size));
  if (info.seed) archive.write("exprun.seed", c10::IValue(static_cast<std::int64_t>(*info.seed)));
  torch::serialize::OutputArchive model_archive;
  state.model.save(model_archive);
  archive.write("model", model_archive);
  torch::serialize::OutputArchive optimizer_archive;
  state.optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("memory.count", c10::IValue(static_cast<std::int64_t>(state.strategies.size())));
  for (std::size_t i = 0; i < state.strategies.size(); ++i) {
    torch::serialize::OutputArchive strategy_archive;
    state.strategies[i]->save(strategy_archive);
    archive.write("memory." + std::to_string(i), strategy_archive);
  }
  // Random generators: augmentation draws are seeded per sample, but plugins (dropout, say)
  // draw from these.
  {
    auto cpu = at::globalContext().defaultGenerator(torch::kCPU);
    std::lock_guard<std::mutex> lock(cpu.mutex());
    archive.write("rng.cpu", cpu.get_state(), /*is_buffer=*/true);
  }
  if (state.device.is_cuda()) {
    auto gpu = at::globalContext().defaultGenerator(state.device);
    std::lock_guard<std::mutex> lock(gpu.mutex());
    archive.write("rng.device", gpu.get_state(), /*is_buffer=*/true);
  }

  std::ostringstream payload_stream;
  archive.save_to(payload_stream);
  const std::string payload = payload_stream.str();
  std::string file(kCheckpointMagic, sizeof kCheckpointMagic);
  put_le<std::uint32_t>(file, kContainerVersion);
  put_le<std::uint64_t>(file, payload.size());
  put_le<std::uint32_t>(file, crc32c(payload.data(), payload.size()));
  file += payload;
  replace_atomically(path, [&](const fs::path& temp) { write_bytes(temp, file, fault_name); });
}

CheckpointInfo read_checkpoint_info(const fs::path& path) {
  return with_archive(path, [](torch::serialize::InputArchive& a) { return read_info(a); });
}

CheckpointInfo load_model_weights(const fs::path& path, sdk::Model& model) {
  c10::optional<torch::Device> device;  // LibTorch 1.13's load_from takes c10's optional
  for (const auto& p : model.parameters()) {
    device = p.device();
    break;
  }
  return with_archive(
      path,
      [&](torch::serialize::InputArchive& a) {
        CheckpointInfo info = read_info(a);
        torch::serialize::InputArchive model_archive;
        a.read("model", model_archive);
        load_model_exactly(model, model_archive);
        return info;
      },
      device);
}

CheckpointInfo load_training_state(const fs::path& path, const TrainingState& state) {
  return with_archive(
      path,
      [&](torch::serialize::InputArchive& a) {
        CheckpointInfo info = read_info(a);
        const auto count = read_value(a, "memory.count").toInt();
        if (count != static_cast<std::int64_t>(state.strategies.size())) {
          throw std::runtime_error("it holds the state of " + std::to_string(count) +
                                   " memory strategies, the stage has " +
                                   std::to_string(state.strategies.size()));
        }
        torch::serialize::InputArchive model_archive;
        a.read("model", model_archive);
        load_model_exactly(state.model, model_archive);
        torch::serialize::InputArchive optimizer_archive;
        a.read("optimizer", optimizer_archive);
        load_optimizer_state(state.optimizer, optimizer_archive);
        for (std::size_t i = 0; i < state.strategies.size(); ++i) {
          torch::serialize::InputArchive strategy_archive;
          a.read("memory." + std::to_string(i), strategy_archive);
          state.strategies[i]->load(strategy_archive);
        }
        torch::Tensor cpu_state;
        a.read("rng.cpu", cpu_state, /*is_buffer=*/true);
        {
          auto cpu = at::globalContext().defaultGenerator(torch::kCPU);
          std::lock_guard<std::mutex> lock(cpu.mutex());
          cpu.set_state(cpu_state);
        }
        if (state.device.is_cuda()) {
          torch::Tensor device_state;
          if (a.try_read("rng.device", device_state, /*is_buffer=*/true)) {
            auto gpu = at::globalContext().defaultGenerator(state.device);
            std::lock_guard<std::mutex> lock(gpu.mutex());
            gpu.set_state(device_state);
          }
        }
        return info;
      },
      state.device);
}

}  // namespace exprun
