// The classic U-Net (Ronneberger et al., MICCAI 2015) as the second baseline: an encoder of
// double 3x3 convolutions and 2x2 max pooling that doubles the width at every level, and a
// decoder that upsamples, concatenates the encoder's map of the same level (skip connection)
// and applies a double convolution again. As in most PyTorch code since, the convolutions are
// padded (the paper's were not, and cropped the skips), so that an input divisible by
// 2^depth gives maps of exactly input / 2^level.
//
// Heatmaps at a stride s = 2^k are read k levels before the end of the decoder: the encoder is
// the full classic one, and the decoder's last k levels, which would run at the largest
// resolutions, are left out. The default s = 4 gives heatmaps at input / 4 like HRNet, so both
// baselines train on targets of the same size and comparable memory.
//
// Module names follow milesial/Pytorch-UNet (inc.double_conv.0.weight, down1.maxpool_conv.1.
// double_conv.0.weight, up1.up.weight, up1.conv.double_conv.0.weight, outc.conv.weight), the
// most used PyTorch U-Net, so that its state dicts load by name; with bilinear upsampling the
// bottleneck and each decoder level have half the channels, as there.
#include <exprun/sdk/sdk.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace exprun::sdk;
namespace nn = torch::nn;
namespace F = torch::nn::functional;

// conv 3x3 [+ BN] + ReLU, twice. Without batch norm the convolutions carry a bias instead.
class DoubleConvImpl : public nn::Module {
 public:
  DoubleConvImpl(std::int64_t in, std::int64_t mid, std::int64_t out, bool batch_norm) {
    double_conv = register_module("double_conv", nn::Sequential());
    for (auto [from, to] : {std::pair{in, mid}, std::pair{mid, out}}) {
      double_conv->push_back(
          nn::Conv2d(nn::Conv2dOptions(from, to, 3).padding(1).bias(!batch_norm)));
      if (batch_norm) double_conv->push_back(nn::BatchNorm2d(to));
      double_conv->push_back(nn::ReLU());
    }
  }
  torch::Tensor forward(const torch::Tensor& x) { return double_conv->forward(x); }
  nn::Sequential double_conv{nullptr};
};
TORCH_MODULE(DoubleConv);

// 2x2 max pooling, then a double convolution: one encoder level down.
class DownImpl : public nn::Module {
 public:
  DownImpl(std::int64_t in, std::int64_t out, bool batch_norm) {
    maxpool_conv =
        register_module("maxpool_conv", nn::Sequential(nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                                                       DoubleConv(in, out, out, batch_norm)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return maxpool_conv->forward(x); }
  nn::Sequential maxpool_conv{nullptr};
};
TORCH_MODULE(Down);

// One decoder level up: `in` channels after concatenating the upsampled map with the skip.
class UpImpl : public nn::Module {
 public:
  UpImpl(std::int64_t in, std::int64_t out, bool bilinear, bool batch_norm) : bilinear_(bilinear) {
    if (bilinear) {
      conv = register_module("conv", DoubleConv(in, in / 2, out, batch_norm));
    } else {
      up = register_module(
          "up", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in, in / 2, 2).stride(2)));
      conv = register_module("conv", DoubleConv(in, out, out, batch_norm));
    }
  }
  torch::Tensor forward(const torch::Tensor& below, const torch::Tensor& skip) {
    auto x = bilinear_ ? F::interpolate(below, F::InterpolateFuncOptions()
                                                   .scale_factor(std::vector<double>{2.0, 2.0})
                                                   .mode(torch::kBilinear)
                                                   .align_corners(true))
                       : up->forward(below);
    return conv->forward(torch::cat({skip, x}, 1));
  }
  // Multiply-adds with `area` output pixels (the skip's resolution).
  double multiply_adds(double area) const {
    double macs = 0;
    if (!bilinear_) macs += static_cast<double>(up->weight.numel()) * area / 4;  // per input px
    for (const auto& m : conv->modules(/*include_self=*/false))
      if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get()))
        macs += static_cast<double>(c->weight.numel()) * area;
    return macs;
  }
  bool bilinear_;
  nn::ConvTranspose2d up{nullptr};
  DoubleConv conv{nullptr};
};
TORCH_MODULE(Up);

double conv_macs_at(const nn::Module& module, double area) {
  double macs = 0;
  for (const auto& m : module.modules(/*include_self=*/true))
    if (auto* c = dynamic_cast<nn::Conv2dImpl*>(m.get()))
      macs += static_cast<double>(c->weight.numel()) * area;
  return macs;
}

class UNet : public Model {
 public:
  static constexpr const char* kName = "unet";
  static constexpr const char* kSummary =
      "classic U-Net encoder-decoder with skip connections, heatmaps at input / output_stride";

  static ParamSchema schema() {
    return ParamSchema()
        .add_int("width", 64,
                 "channels of the first level, doubled at every level down (paper: 64)")
        .min(1)
        .add_int("depth", 4,
                 "down-sampling levels (paper: 4); the input must be divisible by 2^depth")
        .min(1)
        .max(8)
        .add_bool("batch_norm", true,
                  "batch norm after every 3x3 conv (the paper had none; convs then carry a bias)")
        .add_bool("bilinear", false,
                  "upsample bilinearly (and halve the decoder's channels) instead of by 2x2 "
                  "transposed convolutions (paper)")
        .add_int("output_stride", 4,
                 "heatmaps at input / output_stride: 1, 2, 4, ... up to 2^depth; the decoder "
                 "stops log2(output_stride) levels early")
        .min(1)
        .add_string("pretrained", "",
                    "PyTorch state dict (.pth) to start from, matched by parameter name; "
                    "\"\" = none")
        .add_bool("pretrained_strict", true,
                  "`pretrained` must hold exactly the model's names and shapes, less "
                  "pretrained_ignore (false: load what matches, report the rest)")
        .add_string_list("pretrained_ignore", std::vector<std::string>{},
                         "name prefixes neither loaded from `pretrained` nor required of it, "
                         "e.g. [\"head\", \"classifier\"]");
  }

  UNet(const Params& p, const ModelContext& context)
      : depth_(p.get_int("depth")), stride_(p.get_int("output_stride")) {
    const std::int64_t width = p.get_int("width");
    const bool batch_norm = p.get_bool("batch_norm"), bilinear = p.get_bool("bilinear");
    skipped_levels_ = 0;
    while ((std::int64_t{1} << skipped_levels_) < stride_) ++skipped_levels_;
    if ((std::int64_t{1} << skipped_levels_) != stride_ || skipped_levels_ > depth_) {
      throw std::invalid_argument("output_stride " + std::to_string(stride_) +
                                  " must be a power of two no larger than 2^depth = " +
                                  std::to_string(std::int64_t{1} << depth_));
    }
    const std::int64_t factor = bilinear ? 2 : 1;
    auto channels = [&](std::int64_t level) { return width << level; };
    inc = register_module("inc", DoubleConv(context.in_channels, width, width, batch_norm));
    for (std::int64_t l = 1; l <= depth_; ++l) {
      const std::int64_t out = l == depth_ ? channels(l) / factor : channels(l);
      downs_.push_back(
          register_module("down" + std::to_string(l), Down(channels(l - 1), out, batch_norm)));
    }
    std::int64_t last = channels(depth_) / factor;  // channels reaching the head
    for (std::int64_t i = 1; i <= depth_ - skipped_levels_; ++i) {
      const std::int64_t out = i == depth_ ? channels(0) : channels(depth_ - i) / factor;
      ups_.push_back(register_module("up" + std::to_string(i),
                                     Up(channels(depth_ - i + 1), out, bilinear, batch_norm)));
      last = out;
    }
    outc = register_module("outc", std::make_shared<nn::Module>());
    head_ = outc->register_module("conv",
                                  nn::Conv2d(nn::Conv2dOptions(last, context.num_landmarks, 1)));

    const auto& pretrained = p.get_string("pretrained");
    if (!pretrained.empty()) {
      const auto report = load_state_dict(*this, pretrained,
                                          StateDictOptions{p.get_bool("pretrained_strict"),
                                                           p.get_string_list("pretrained_ignore")});
      std::cout << "models/unet: " << report.text() << std::flush;
    }
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    const std::int64_t multiple = std::int64_t{1} << depth_;
    TORCH_CHECK(images.size(2) % multiple == 0 && images.size(3) % multiple == 0,
                "unet with depth ", depth_,
                " needs an input whose height and width are "
                "divisible by 2^depth = ",
                multiple, "; got ", images.size(3), "x", images.size(2),
                " (change data.image_size or the model's depth)");
    const bool training = is_training();
    // f is copied into the segment: backward calls it again after this function has returned.
    auto run = [&](const std::string& part, nn::Module& module, auto f,
                   const std::vector<torch::Tensor>& in) -> torch::Tensor {
      if (training && is_checkpointed(part)) {
        return checkpoint_segment(
                   module,
                   [f](const std::vector<torch::Tensor>& x) {
                     return std::vector<torch::Tensor>{f(x)};
                   },
                   in)
            .front();
      }
      return f(in);
    };
    std::vector<torch::Tensor> levels;
    levels.push_back(run("inc", *inc,
                         [this](const std::vector<torch::Tensor>& x) { return inc->forward(x[0]); },
                         {images}));
    for (std::size_t l = 0; l < downs_.size(); ++l) {
      auto down = downs_[l].ptr();
      levels.push_back(
          run("down" + std::to_string(l + 1), *down,
              [down](const std::vector<torch::Tensor>& x) { return down->forward(x[0]); },
              {levels.back()}));
    }
    torch::Tensor x = levels.back();
    for (std::size_t i = 0; i < ups_.size(); ++i) {
      auto up = ups_[i].ptr();
      const auto& skip = levels[levels.size() - 2 - i];
      x = run("up" + std::to_string(i + 1), *up,
              [up](const std::vector<torch::Tensor>& in) { return up->forward(in[0], in[1]); },
              {x, skip});
    }
    return head_->forward(x);
  }

  std::vector<std::string> checkpointable_parts() const override {
    std::vector<std::string> parts{"inc"};
    for (std::size_t l = 1; l <= downs_.size(); ++l) parts.push_back("down" + std::to_string(l));
    for (std::size_t i = 1; i <= ups_.size(); ++i) parts.push_back("up" + std::to_string(i));
    return parts;
  }

  std::int64_t output_stride() const override { return stride_; }

  // Every convolution's weights times its output pixels; a transposed convolution's weights
  // times its input pixels. Pooling, upsampling, batch norm and biases are not multiply-adds.
  double multiply_adds(std::int64_t height, std::int64_t width) const override {
    auto area = [&](std::int64_t level) {
      return static_cast<double>((height >> level) * (width >> level));
    };
    double macs = conv_macs_at(*inc, area(0));
    for (std::size_t l = 0; l < downs_.size(); ++l)
      macs += conv_macs_at(*downs_[l], area(static_cast<std::int64_t>(l) + 1));
    for (std::size_t i = 0; i < ups_.size(); ++i)
      macs += ups_[i]->multiply_adds(area(depth_ - static_cast<std::int64_t>(i) - 1));
    return macs + conv_macs_at(*head_, area(skipped_levels_));
  }

 private:
  std::int64_t depth_, stride_, skipped_levels_;
  DoubleConv inc{nullptr};
  std::vector<Down> downs_;
  std::vector<Up> ups_;
  std::shared_ptr<nn::Module> outc;
  nn::Conv2d head_{nullptr};
};

}  // namespace

EXPRUN_PLUGIN(UNet)
