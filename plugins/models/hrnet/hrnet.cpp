// HRNetV2 as its authors' face-landmark code builds it (Wang et al., "Deep High-Resolution
// Representation Learning for Visual Recognition"; HRNet-Facial-Landmark-Detection): a stride-4
// stem, a bottleneck stage, then stages of parallel branches at 1/4, 1/8, 1/16 and 1/32 that
// exchange information by fusion after every module. The head upsamples every branch to 1/4,
// concatenates them, and maps them to one heatmap per landmark. Module names follow the
// PyTorch code exactly (conv1, layer1.0.conv1, transition1.1.0.0, stage2.0.fuse_layers.1.0.0,
// head.0, ...) so that a state dict of the official code, or of the ImageNet classification
// HRNet it starts from, loads with every tensor matched.
#include <exprun/sdk/sdk.hpp>

#include "channels_last_batch_norm.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace exprun::sdk;
namespace nn = torch::nn;
namespace F = torch::nn::functional;

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                bool bias = false) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(bias));
}

// The reference code's BN_MOMENTUM: running statistics move 1% towards each batch's. Every
// batch norm is built with it; the `bn_momentum` parameter then sets the one the model trains
// with (initialise), so that the many constructors need not carry it.
constexpr double kBatchNormMomentum = 0.01;

// nn::BatchNorm2d, with exprun's own kernel for channels-last tensors in training.
using BatchNorm = exprun::hrnet::ChannelsLastBatchNorm2d;

BatchNorm batch_norm(std::int64_t channels) {
  return BatchNorm(nn::BatchNorm2dOptions(channels).momentum(kBatchNormMomentum));
}

std::int64_t stride2_size(std::int64_t n) { return (n - 1) / 2 + 1; }  // 3x3, stride 2, pad 1

// Multiply-adds of every convolution inside `module` when all of them run at `area` output
// pixels; true of everything in HRNet except the stride-2 convolutions counted separately.
double conv_macs_at(const nn::Module& module, double area) {
  double macs = 0;
  for (const auto& m : module.modules(/*include_self=*/true)) {
    if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get())) {
      macs += static_cast<double>(c->weight.numel()) * area;
    }
  }
  return macs;
}

// A list whose children are named by their index, with gaps: PyTorch's ModuleList holds None
// where HRNet needs no layer, and the state dict keeps the other indices.
class IndexedListImpl : public nn::Module {
 public:
  void set(std::size_t index, std::shared_ptr<nn::Module> module) {
    if (items_.size() <= index) items_.resize(index + 1);
    items_[index] = register_module(std::to_string(index), std::move(module));
  }
  template <class T>
  std::shared_ptr<T> at(std::size_t index) const {
    return index < items_.size() ? std::dynamic_pointer_cast<T>(items_[index]) : nullptr;
  }

 private:
  std::vector<std::shared_ptr<nn::Module>> items_;
};
using IndexedList = std::shared_ptr<IndexedListImpl>;

class Block : public nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

// 1x1 conv + BN projecting the residual when a block changes the channel count.
nn::Sequential projection(std::int64_t in, std::int64_t out) {
  return nn::Sequential(conv(in, out, 1, 1), batch_norm(out));
}

class BasicBlock : public Block {
 public:
  static constexpr std::int64_t kExpansion = 1;
  BasicBlock(std::int64_t in, std::int64_t planes)
      : conv1(register_module("conv1", conv(in, planes, 3, 1))),
        bn1(register_module("bn1", batch_norm(planes))),
        conv2(register_module("conv2", conv(planes, planes, 3, 1))),
        bn2(register_module("bn2", batch_norm(planes))) {
    if (in != planes) downsample = register_module("downsample", projection(in, planes));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = bn1->forward_relu(conv1(x));
    return bn2->forward_add_relu(conv2(out), downsample ? downsample->forward(x) : x);
  }
  nn::Conv2d conv1;
  BatchNorm bn1;
  nn::Conv2d conv2;
  BatchNorm bn2;
  nn::Sequential downsample{nullptr};
};

class Bottleneck : public Block {
 public:
  static constexpr std::int64_t kExpansion = 4;
  Bottleneck(std::int64_t in, std::int64_t planes)
      : conv1(register_module("conv1", conv(in, planes, 1, 1))),
        bn1(register_module("bn1", batch_norm(planes))),
        conv2(register_module("conv2", conv(planes, planes, 3, 1))),
        bn2(register_module("bn2", batch_norm(planes))),
        conv3(register_module("conv3", conv(planes, planes * kExpansion, 1, 1))),
        bn3(register_module("bn3", batch_norm(planes * kExpansion))) {
    if (in != planes * kExpansion) {
      downsample = register_module("downsample", projection(in, planes * kExpansion));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    auto out = bn1->forward_relu(conv1(x));
    out = bn2->forward_relu(conv2(out));
    return bn3->forward_add_relu(conv3(out), downsample ? downsample->forward(x) : x);
  }
  nn::Conv2d conv1;
  BatchNorm bn1;
  nn::Conv2d conv2;
  BatchNorm bn2;
  nn::Conv2d conv3;
  BatchNorm bn3;
  nn::Sequential downsample{nullptr};
};

// `count` blocks in a row, named 0..count-1 like nn.Sequential.
template <class B>
IndexedList make_layer(std::int64_t in, std::int64_t planes, std::int64_t count) {
  auto layer = std::make_shared<IndexedListImpl>();
  for (std::int64_t i = 0; i < count; ++i) {
    layer->set(static_cast<std::size_t>(i),
               std::make_shared<B>(i == 0 ? in : planes * B::kExpansion, planes));
  }
  return layer;
}

torch::Tensor run_layer(const IndexedListImpl& layer, std::int64_t count, torch::Tensor x) {
  for (std::int64_t i = 0; i < count; ++i)
    x = layer.at<Block>(static_cast<std::size_t>(i))->forward(x);
  return x;
}

// The reference code's nn.Sequential of nn.Sequential(conv, BN[, ReLU]) steps (fusion from a
// higher resolution, new branches): a list here, as LibTorch's Sequential cannot hold one.
torch::Tensor run_chain(const IndexedListImpl& chain, std::size_t steps, torch::Tensor x) {
  for (std::size_t k = 0; k < steps; ++k) x = chain.at<nn::SequentialImpl>(k)->forward(x);
  return x;
}

// One HighResolutionModule: a stack of basic blocks per branch, then every branch receives the
// sum of all branches brought to its resolution (1x1 conv + upsampling from lower
// resolutions, chains of stride-2 3x3 convs from higher ones).
class HighResolutionModule : public nn::Module {
 public:
  HighResolutionModule(const std::vector<std::int64_t>& channels, std::int64_t blocks)
      : channels_(channels), blocks_(blocks) {
    const std::size_t n = channels.size();
    branches_ = register_module("branches", std::make_shared<IndexedListImpl>());
    for (std::size_t b = 0; b < n; ++b) {
      branches_->set(b, make_layer<BasicBlock>(channels[b], channels[b], blocks));
    }
    if (n == 1) return;
    fuse_ = register_module("fuse_layers", std::make_shared<IndexedListImpl>());
    for (std::size_t i = 0; i < n; ++i) {
      auto row = std::make_shared<IndexedListImpl>();
      for (std::size_t j = 0; j < n; ++j) {
        if (j > i) {
          row->set(
              j,
              nn::Sequential(conv(channels[j], channels[i], 1, 1), batch_norm(channels[i])).ptr());
        } else if (j < i) {
          auto chain = std::make_shared<IndexedListImpl>();
          for (std::size_t k = 0; k < i - j; ++k) {
            const bool last = k == i - j - 1;
            nn::Sequential step(conv(channels[j], last ? channels[i] : channels[j], 3, 2),
                                batch_norm(last ? channels[i] : channels[j]));
            if (!last) step->push_back(nn::ReLU());
            chain->set(k, step.ptr());
          }
          row->set(j, chain);
        }
      }
      fuse_->set(i, row);
    }
  }

  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> x) {
    const std::size_t n = channels_.size();
    for (std::size_t b = 0; b < n; ++b)
      x[b] = run_layer(*branches_->at<IndexedListImpl>(b), blocks_, x[b]);
    if (n == 1) return x;
    std::vector<torch::Tensor> out;
    for (std::size_t i = 0; i < n; ++i) {
      auto row = fuse_->at<IndexedListImpl>(i);
      // Summed from branch 0 upwards, as the reference code does: floating-point addition is
      // not associative, and another order gives other bits.
      torch::Tensor sum;
      for (std::size_t j = 0; j < n; ++j) {
        torch::Tensor y = x[j];
        if (j > i) {
          y = F::interpolate(row->at<nn::SequentialImpl>(j)->forward(x[j]),
                             F::InterpolateFuncOptions()
                                 .size(std::vector<std::int64_t>{x[i].size(2), x[i].size(3)})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
        } else if (j < i) {
          y = run_chain(*row->at<IndexedListImpl>(j), i - j, y);
        }
        sum = j == 0 ? y : sum + y;
      }
      out.push_back(torch::relu(sum));
    }
    return out;
  }

  // areas[b]: output pixels of branch b.
  double multiply_adds(const std::vector<double>& areas) const {
    const std::size_t n = channels_.size();
    double macs = 0;
    for (std::size_t b = 0; b < n; ++b)
      macs += conv_macs_at(*branches_->at<IndexedListImpl>(b), areas[b]);
    if (n == 1) return macs;
    for (std::size_t i = 0; i < n; ++i) {
      auto row = fuse_->at<IndexedListImpl>(i);
      for (std::size_t j = 0; j < n; ++j) {
        if (j > i) macs += conv_macs_at(*row->at<nn::SequentialImpl>(j), areas[j]);
        if (j < i) {
          auto chain = row->at<IndexedListImpl>(j);
          for (std::size_t k = 0; k < i - j; ++k) {
            macs += conv_macs_at(*chain->at<nn::SequentialImpl>(k), areas[j + k + 1]);
          }
        }
      }
    }
    return macs;
  }

 private:
  std::vector<std::int64_t> channels_;
  std::int64_t blocks_;
  IndexedList branches_;
  IndexedList fuse_;
};

class HRNet : public Model {
 public:
  static constexpr const char* kName = "hrnet";
  static constexpr const char* kSummary =
      "HRNetV2: parallel high-to-low resolution branches, heatmaps at 1/4 resolution";

  static ParamSchema schema() {
    return ParamSchema()
        .add_int("width", 18,
                 "channels of the highest-resolution branch: 18, 32, 48 (paper); "
                 "smaller (e.g. 8) for CPU runs")
        .min(1)
        .add_int_list("num_modules", std::vector<std::int64_t>{1, 4, 3},
                      "high-resolution modules in stages 2, 3 and 4")
        .length(3)
        .min(0)
        .add_int("num_blocks", 4, "basic blocks per branch in every module")
        .min(1)
        .add_int("stem_blocks", 4, "bottleneck blocks of stage 1")
        .min(1)
        .add_float("bn_momentum", kBatchNormMomentum,
                   "how far batch norm's running statistics, which validation and inference "
                   "use, move towards each training batch's: 0.01 as the reference code; 0.1 "
                   "(PyTorch's default) for runs of a few hundred steps; 0 freezes them")
        .min(0.0)
        .max(1.0)
        .add_int("head_channels", 0,
                 "channels of the head's 1x1 conv; 0 = all branches (15 x width)")
        .min(0)
        .add_string("pretrained", "",
                    "PyTorch state dict (.pth) to start from, matched by parameter name, e.g. "
                    "the official ImageNet HRNet weights; \"\" = none")
        .add_bool("pretrained_strict", true,
                  "`pretrained` must hold exactly the model's names and shapes, less "
                  "pretrained_ignore (false: load what matches, report the rest)")
        .add_string_list("pretrained_ignore", std::vector<std::string>{},
                         "name prefixes neither loaded from `pretrained` nor required of it, "
                         "e.g. [\"head\", \"classifier\"]");
  }

  HRNet(const Params& p, const ModelContext& context)
      : width_(p.get_int("width")),
        num_landmarks_(context.num_landmarks),
        in_channels_(context.in_channels),
        stem_blocks_(p.get_int("stem_blocks")),
        num_modules_(p.get_int_list("num_modules")) {
    const std::int64_t blocks = p.get_int("num_blocks");
    conv1 = register_module("conv1", conv(in_channels_, 64, 3, 2));
    bn1 = register_module("bn1", batch_norm(64));
    conv2 = register_module("conv2", conv(64, 64, 3, 2));
    bn2 = register_module("bn2", batch_norm(64));
    layer1 = register_module("layer1", make_layer<Bottleneck>(64, 64, stem_blocks_));
    // The stem's convolutions as one module for checkpointing, left unregistered so that
    // parameter names stay those of the reference code (conv1, bn1, ...).
    stem_ = std::make_shared<nn::Module>();
    stem_->register_module("conv1", conv1.ptr());
    stem_->register_module("bn1", bn1.ptr());
    stem_->register_module("conv2", conv2.ptr());
    stem_->register_module("bn2", bn2.ptr());

    std::vector<std::int64_t> previous{64 * Bottleneck::kExpansion};
    for (int stage = 0; stage < 3; ++stage) {
      std::vector<std::int64_t> channels;
      for (int b = 0; b < stage + 2; ++b) channels.push_back(width_ << b);
      transitions_.push_back(register_module("transition" + std::to_string(stage + 1),
                                             make_transition(previous, channels)));
      auto modules = std::make_shared<IndexedListImpl>();
      for (std::int64_t m = 0; m < num_modules_[static_cast<std::size_t>(stage)]; ++m) {
        modules->set(static_cast<std::size_t>(m),
                     std::make_shared<HighResolutionModule>(channels, blocks));
      }
      stages_.push_back(register_module("stage" + std::to_string(stage + 2), modules));
      previous = channels;
    }
    std::int64_t concatenated = 0;
    for (auto c : previous) concatenated += c;
    const std::int64_t head =
        p.get_int("head_channels") > 0 ? p.get_int("head_channels") : concatenated;
    head_ = register_module(
        "head", nn::Sequential(conv(concatenated, head, 1, 1, true), batch_norm(head), nn::ReLU(),
                               conv(head, num_landmarks_, 1, 1, true)));
    initialise(p.get_float("bn_momentum"));
    const auto& pretrained = p.get_string("pretrained");
    if (!pretrained.empty()) {
      const auto report = load_state_dict(*this, pretrained,
                                          StateDictOptions{p.get_bool("pretrained_strict"),
                                                           p.get_string_list("pretrained_ignore")});
      std::cout << "models/hrnet: " << report.text() << std::flush;
    }
  }

  // Weights saved by exprun (checkpoints: resume, init, eval, predict). Those of exprun 0.1.0
  // before the official module tree held a new branch's transition as one Sequential, so its
  // conv is `transition1.1.0.weight` there; LibTorch's own "No such serialized tensor" says
  // neither why nor what to do. They are refused, not renamed: that model also trained with BN
  // momentum 0.1, and resuming it under 0.01 would silently continue another training.
  void load(torch::serialize::InputArchive& archive) override {
    refuse_old_layout(archive);
    nn::Module::load(archive);
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    const bool training = is_training();
    torch::Tensor x = stem(images, training && is_checkpointed("stem"));
    std::vector<torch::Tensor> branches{x};
    for (std::size_t stage = 0; stage < 3; ++stage) {
      branches = transition(*transitions_[stage], branches, stage + 2);
      const bool recompute = training && is_checkpointed("stage" + std::to_string(stage + 2));
      for (std::int64_t m = 0; m < num_modules_[stage]; ++m) {
        auto module = stages_[stage]->at<HighResolutionModule>(static_cast<std::size_t>(m));
        // One segment per module: backward then holds one module's activations at a time.
        branches = recompute ? checkpoint_segment(
                                   *module,
                                   [module](const std::vector<torch::Tensor>& in) {
                                     return module->forward(in);
                                   },
                                   branches)
                             : module->forward(branches);
      }
    }
    if (training && is_checkpointed("head")) {
      return checkpoint_segment(
                 *head_.ptr(),
                 [this](const std::vector<torch::Tensor>& in) {
                   return std::vector<torch::Tensor>{head(in)};
                 },
                 branches)
          .front();
    }
    return head(branches);
  }

  std::vector<std::string> checkpointable_parts() const override {
    return {"stem", "stage2", "stage3", "stage4", "head"};
  }

  std::int64_t output_stride() const override { return 4; }

  double multiply_adds(std::int64_t height, std::int64_t width) const override {
    auto h = stride2_size(height), w = stride2_size(width);
    double macs = conv_macs_at(*conv1, static_cast<double>(h * w));
    h = stride2_size(h);
    w = stride2_size(w);
    macs += conv_macs_at(*conv2, static_cast<double>(h * w));
    std::vector<double> areas{static_cast<double>(h * w)};
    for (int b = 1; b < 4; ++b) {
      h = stride2_size(h);
      w = stride2_size(w);
      areas.push_back(static_cast<double>(h * w));
    }
    macs += conv_macs_at(*layer1, areas[0]);
    for (std::size_t stage = 0; stage < 3; ++stage) {
      for (std::size_t b = 0; b < stage + 2; ++b) {
        if (auto t = transitions_[stage]->at<nn::Module>(b)) macs += conv_macs_at(*t, areas[b]);
      }
      for (std::int64_t m = 0; m < num_modules_[stage]; ++m) {
        macs += stages_[stage]
                    ->at<HighResolutionModule>(static_cast<std::size_t>(m))
                    ->multiply_adds(areas);
      }
    }
    return macs + conv_macs_at(*head_, areas[0]);
  }

 private:
  // The two stride-2 convolutions, then stage 1's bottlenecks. Checkpointed as one segment for
  // the convolutions and one per bottleneck: at 1/2 and 1/4 resolution these hold most of the
  // network's activations, and backward then holds one segment's at a time.
  torch::Tensor stem(const torch::Tensor& images, bool recompute) {
    auto convolutions = [this](const torch::Tensor& in) {
      auto x = bn1->forward_relu(conv1(in));
      return bn2->forward_relu(conv2(x));
    };
    auto x = recompute ? checkpoint_segment(*stem_, convolutions, images) : convolutions(images);
    for (std::int64_t i = 0; i < stem_blocks_; ++i) {
      auto block = layer1->at<Block>(static_cast<std::size_t>(i));
      auto run = [block](const torch::Tensor& in) { return block->forward(in); };
      x = recompute ? checkpoint_segment(*block, run, x) : run(x);
    }
    return x;
  }

  // Lower branches upsampled to the highest resolution, concatenated, mapped to heatmaps.
  torch::Tensor head(const std::vector<torch::Tensor>& branches) {
    std::vector<torch::Tensor> maps{branches[0]};
    const std::vector<std::int64_t> size{branches[0].size(2), branches[0].size(3)};
    for (std::size_t b = 1; b < branches.size(); ++b) {
      maps.push_back(F::interpolate(
          branches[b],
          F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false)));
    }
    return head_->forward(torch::cat(maps, 1));
  }

  // An existing branch is only touched when its channel count changes (conv + BN + ReLU,
  // `transitionN.b.0`). A new, lower-resolution branch comes from the lowest existing one
  // through a chain of 3x3 stride-2 steps, one per branch it lies below it
  // (`transitionN.b.0.0` for the first step's conv): one step in HRNet, where every stage
  // adds one branch.
  static IndexedList make_transition(const std::vector<std::int64_t>& previous,
                                     const std::vector<std::int64_t>& channels) {
    auto list = std::make_shared<IndexedListImpl>();
    for (std::size_t b = 0; b < channels.size(); ++b) {
      if (b < previous.size()) {
        if (previous[b] != channels[b]) {
          list->set(b, nn::Sequential(conv(previous[b], channels[b], 3, 1), batch_norm(channels[b]),
                                      nn::ReLU())
                           .ptr());
        }
        continue;
      }
      auto chain = std::make_shared<IndexedListImpl>();
      const std::size_t steps = b + 1 - previous.size();
      for (std::size_t k = 0; k < steps; ++k) {
        const std::int64_t out = k + 1 == steps ? channels[b] : previous.back();
        chain->set(
            k, nn::Sequential(conv(previous.back(), out, 3, 2), batch_norm(out), nn::ReLU()).ptr());
      }
      list->set(b, chain);
    }
    return list;
  }

  static std::vector<torch::Tensor> transition(const IndexedListImpl& list,
                                               const std::vector<torch::Tensor>& in,
                                               std::size_t count) {
    std::vector<torch::Tensor> out;
    for (std::size_t b = 0; b < count; ++b) {
      if (b < in.size()) {
        auto layer = list.at<nn::SequentialImpl>(b);
        out.push_back(layer ? layer->forward(in[b]) : in[b]);
      } else {
        out.push_back(run_chain(*list.at<IndexedListImpl>(b), b + 1 - in.size(), in.back()));
      }
    }
    return out;
  }

  // As the reference code: convolutions N(0, 0.001), batch norm weight 1 and bias 0.
  void initialise(double batch_norm_momentum) {
    torch::NoGradGuard no_grad;
    for (const auto& m : modules(/*include_self=*/false)) {
      if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get())) {
        c->weight.normal_(0.0, 0.001);
        if (c->bias.defined()) c->bias.zero_();
      } else if (auto* bn = dynamic_cast<exprun::hrnet::ChannelsLastBatchNorm2dImpl*>(m.get())) {
        bn->weight.fill_(1.0);
        bn->bias.zero_();
        bn->options.momentum(batch_norm_momentum);
      }
    }
  }

  std::int64_t width_, num_landmarks_, in_channels_, stem_blocks_;
  std::vector<std::int64_t> num_modules_;
  // The new branch of stage s + 2 comes from transition(s + 1).(s + 1); the old layout has a
  // tensor right under its `.0`, where this one has the chain's first step.
  static void refuse_old_layout(torch::serialize::InputArchive& archive) {
    for (int stage = 1; stage <= 3; ++stage) {
      const std::string transition = "transition" + std::to_string(stage);
      const std::string branch = std::to_string(stage);
      torch::serialize::InputArchive list, chain, first;
      torch::Tensor weight;
      if (!archive.try_read(transition, list) || !list.try_read(branch, chain) ||
          !chain.try_read("0", first) || !first.try_read("weight", weight))
        continue;
      const std::string old_name = transition + "." + branch + ".0.weight";
      throw StateDictError(
          "models/hrnet: it holds '" + old_name +
          "', the HRNet layout of exprun 0.1.0 before the model followed the official HRNet "
          "module tree (now '" +
          transition + "." + branch +
          ".0.0.weight'; that model also trained with BN momentum 0.1, now 0.01); such "
          "weights "
          "cannot be loaded, resumed, evaluated or used as `init`: retrain the stage with this "
          "exprun");
    }
  }

  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  BatchNorm bn1{nullptr}, bn2{nullptr};
  IndexedList layer1;
  std::shared_ptr<nn::Module> stem_;
  std::vector<IndexedList> transitions_;
  std::vector<IndexedList> stages_;
  nn::Sequential head_{nullptr};
};

}  // namespace

EXPRUN_PLUGIN(HRNet)
