#include "dist/process_group.hpp"

// Both LibTorch flavours are built with Gloo, but neither CMake config passes the macro that
// unlocks its header; defined here, after the precompiled <torch/torch.h>, for this file alone.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// NCCL, for CUDA tensors, where LibTorch was built with it (the torch wheel) and its header is
// here (the CUDA toolkit's); Debian's CPU LibTorch has neither.
#if EXPRUN_WITH_CUDA && __has_include(<nccl.h>)
#define EXPRUN_WITH_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define EXPRUN_WITH_NCCL 0
#endif

#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>

#include "dist/quoted.hpp"

namespace exprun::dist {

// What runs collectives: c10d's Backend since LibTorch 2.0, the process group itself in 1.13.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

struct ProcessGroup::Parts {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  // EXPRUN_DIST_BACKEND=nccl: made at the first collective on CUDA tensors, which every rank
  // reaches at the same point (a stage's first broadcast).
  bool use_nccl = false;
  c10::intrusive_ptr<Collectives> nccl;
  int rank = 0;
  int world_size = 1;
  std::chrono::seconds timeout{};

  Collectives& backend_for(const torch::Tensor& tensor) {
#if EXPRUN_WITH_NCCL
    if (use_nccl && tensor.is_cuda()) {
      if (!nccl) {
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
        nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
            c10::make_intrusive<c10d::PrefixStore>("nccl", store), rank, world_size, options);
      }
      return *nccl;
    }
#else
    (void)tensor;
#endif
    return *group;
  }
};

namespace {

std::string failure_text(const std::exception& e) {
  if (const auto* error = dynamic_cast<const c10::Error*>(&e))
    return error->what_without_backtrace();
  return e.what();
}

RankError rank_error(int rank, const std::string& what, std::chrono::seconds timeout,
                     const std::exception& e) {
  return RankError("rank " + std::to_string(rank) + ": " + what +
                   " failed: another rank died or did not get there within " +
                   std::to_string(timeout.count()) +
                   " s (EXPRUN_DIST_TIMEOUT); the others stop too. Cause: " + failure_text(e));
}

// Runs a collective and waits for it, turning every failure into a RankError.
template <typename Start>
void run_collective(int rank, const std::string& what, std::chrono::seconds timeout,
                    Start&& start) {
  try {
    auto work = start();
    work->wait(std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  } catch (const std::exception& e) {
    throw rank_error(rank, what, timeout, e);
  }
}

// Gloo's transport: the interfaces GLOO_SOCKET_IFNAME names (as PyTorch reads it), else the
// address this host's name resolves to (Gloo falls back to loopback when it resolves to none).
std::vector<std::shared_ptr<::gloo::transport::Device>> gloo_devices() {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  const char* names = std::getenv("GLOO_SOCKET_IFNAME");
  if (names != nullptr && *names != '\0') {
    std::string list = names;
    for (std::size_t start = 0; start <= list.size();) {
      const std::size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start)
        devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(list.substr(start, comma - start)));
      start = comma + 1;
    }
  }
  if (devices.empty()) devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  return devices;
}

// One flat tensor per dtype: one collective for many small tensors (per-tensor calls are
// latency bound, 0.15-0.3 ms each).
std::map<c10::ScalarType, std::vector<torch::Tensor*>> by_dtype(std::vector<torch::Tensor>& ts) {
  std::map<c10::ScalarType, std::vector<torch::Tensor*>> groups;
  for (auto& t : ts) groups[t.scalar_type()].push_back(&t);
  return groups;
}

}  // namespace

std::string backend_from_env() {
  const char* text = std::getenv("EXPRUN_DIST_BACKEND");
  const std::string name = text == nullptr || *text == '\0' ? "gloo" : text;
  if (name == "gloo") return name;
  if (name == "nccl") {
    if (!EXPRUN_WITH_NCCL) {
      throw LaunchError(
          "EXPRUN_DIST_BACKEND=\"nccl\": this exprun was built without NCCL (it needs a CUDA "
          "LibTorch, see docs/libtorch.md); use gloo");
    }
    return name;
  }
  throw LaunchError("EXPRUN_DIST_BACKEND=" + dist::quoted_value(name) + ": expected gloo or nccl");
}

std::chrono::seconds collective_timeout_from_env() {
  const char* text = std::getenv("EXPRUN_DIST_TIMEOUT");
  if (text == nullptr || *text == '\0') return std::chrono::seconds(1800);
  char* end = nullptr;
  const long long seconds = std::strtoll(text, &end, 10);
  if (*end != '\0' || seconds < 1 || seconds > 7 * 24 * 3600) {
    throw LaunchError("EXPRUN_DIST_TIMEOUT=" + quoted_value(text) +
                      ": expected whole seconds from 1 to 604800");
  }
  return std::chrono::seconds(seconds);
}

ProcessGroup::ProcessGroup(std::unique_ptr<Parts> parts, const Launch& launch,
                           std::chrono::seconds timeout)
    : parts_(std::move(parts)),
      rank_(launch.rank),
      world_size_(launch.world_size),
      local_rank_(launch.local_rank),
      ranks_on_machine_(launch.local_world_size.value_or(1)),
      timeout_(timeout),
      launcher_(launcher_name(launch.launcher)) {}

ProcessGroup::~ProcessGroup() {
  try {
    const auto to_ms = [](auto d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d);
    };
    if (rank_ == 0) {
      const auto until =
          std::chrono::steady_clock::now() + std::min(timeout_, std::chrono::seconds(120));
      while (parts_->store->add("left", 0) < world_size_ - 1 &&
             std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      parts_->store->set("closed", std::vector<std::uint8_t>{1});
    } else {
      parts_->store->add("left", 1);
      parts_->store->wait({"closed"}, to_ms(timeout_));
    }
  } catch (const std::exception&) {
    // Another rank (rank 0's store with it) is gone: nothing is left to wait for.
  }
}

std::shared_ptr<ProcessGroup> ProcessGroup::connect(const Launch& launch,
                                                    std::chrono::seconds timeout,
                                                    const std::string& backend) {
  auto parts = std::make_unique<Parts>();
  parts->use_nccl = backend == "nccl";
  parts->rank = launch.rank;
  parts->world_size = launch.world_size;
  parts->timeout = timeout;
  const std::string where = launch.master_addr + ":" + std::to_string(launch.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(launch.master_port);
    // torchrun's agent serves the store already; otherwise rank 0 hosts it.
    options.isServer = !launch.join_agent_store && launch.rank == 0;
    options.numWorkers = launch.world_size;
    options.waitWorkers = false;
    options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options);
    // Own keys apart from the agent's, and from an earlier attempt's under torchrun.
    const std::string prefix =
        launch.join_agent_store ? launch.store_prefix + "/exprun" : std::string("exprun");
    parts->store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
    auto gloo = c10d::ProcessGroupGloo::Options::create(
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    gloo->devices = gloo_devices();
    parts->group = c10::make_intrusive<c10d::ProcessGroupGloo>(parts->store, launch.rank,
                                                               launch.world_size, gloo);
  } catch (const std::exception& e) {
    throw RankError("rank " + std::to_string(launch.rank) + " of " +
                    std::to_string(launch.world_size) + ": could not join the other ranks at " +
                    where + " within " + std::to_string(timeout.count()) +
                    " s (EXPRUN_DIST_TIMEOUT): " + failure_text(e));
  }
  auto group = std::shared_ptr<ProcessGroup>(new ProcessGroup(std::move(parts), launch, timeout));
  group->backend_ = backend;
  return group;
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, const std::string& what) {
  for (auto& [dtype, members] : by_dtype(tensors)) {
    std::vector<torch::Tensor> flat_parts;
    for (auto* t : members) flat_parts.push_back(t->detach().reshape({-1}));
    std::vector<torch::Tensor> flat{torch::cat(flat_parts)};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    run_collective(rank_, what, timeout_,
                   [&] { return parts_->backend_for(flat[0]).broadcast(flat, options); });
    if (rank_ == 0) continue;  // its tensors are the source
    torch::NoGradGuard no_grad;
    std::int64_t offset = 0;
    for (auto* t : members) {
      t->copy_(flat[0].narrow(0, offset, t->numel()).view(t->sizes()));
      offset += t->numel();
    }
  }
}

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors, const std::string& what) {
  for (auto& t : tensors) {
    std::vector<torch::Tensor> one{t};
    run_collective(rank_, what, timeout_, [&] { return parts_->backend_for(t).allreduce(one); });
  }
}

void ProcessGroup::all_reduce_max(torch::Tensor& tensor, const std::string& what) {
  std::vector<torch::Tensor> one{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  run_collective(rank_, what, timeout_,
                 [&] { return parts_->backend_for(tensor).allreduce(one, options); });
}

std::string ProcessGroup::share_from_rank0(const std::string& key, const std::string& value) {
  try {
    if (rank_ == 0) {
      parts_->store->set(key, std::vector<std::uint8_t>(value.begin(), value.end()));
      return value;
    }
    const std::vector<std::uint8_t> bytes = parts_->store->get(key);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw rank_error(rank_, "waiting for rank 0's " + key, timeout_, e);
  }
}

}  // namespace exprun::dist
