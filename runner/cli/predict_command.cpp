#include <cstdio>
#include <iostream>

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "predict/checkpoint_model.hpp"
#include "predict/image_file.hpp"
#include "predict/prediction_output.hpp"
#include "run/experiment_run.hpp"
#include "train/stage_builder.hpp"
#include "util/atomic_file.hpp"
#include "util/fp32_precision.hpp"
#include "util/json_file.hpp"

namespace exprun::cli {

int predict_command(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string checkpoint, out_dir, decode, device_name = "auto";
  std::vector<std::string> images;
  std::int64_t threads = 0;
  po::options_description options(
      "exprun predict --checkpoint C IMAGE... --out DIR [options]\n\nFinds the landmarks on "
      "each image with a trained checkpoint; no experiment file is needed (the checkpoint "
      "carries its model, input size and landmark names). Writes DIR/<image stem>.json in the "
      "Aariz annotation format (original pixels) and DIR/<image stem>_overlay.png with every "
      "landmark marked and labelled.\n\nOptions");
  add_common_options(options, common);
  options.add_options()("checkpoint", po::value(&checkpoint), "checkpoint (best.pt or latest.pt)")(
      "image", po::value(&images)->composing(), "image file(s): png, jpg, bmp, tiff; 8/16-bit")(
      "out", po::value(&out_dir), "output directory (created if missing)")(
      "decode", po::value(&decode),
      "argmax | dark (default: the eval.decode the checkpoint's stage was trained with)")(
      "device", po::value(&device_name), "auto | cpu | cuda | cuda:N (default: auto)")(
      "threads", po::value(&threads), "CPU threads, 0 to 1024 (default 0: all cores)");
  po::positional_options_description positional;
  positional.add("image", -1);
  return guarded([&] {
    if (parse_or_show_help(args, options, positional, common)) return int{kOk};
    if (checkpoint.empty()) throw po::error("predict needs --checkpoint FILE");
    if (images.empty()) throw po::error("predict needs at least one image");
    if (out_dir.empty()) throw po::error("predict needs --out DIR");
    if (!decode.empty() && decode != "argmax" && decode != "dark") {
      throw po::error("--decode: expected argmax or dark, found '" + decode + "'");
    }
    check_thread_option(threads);
    torch::Device device = torch::kCPU;
    try {
      device = resolve_device(device_name);
    } catch (const std::exception& e) {
      throw po::error(std::string("--device: ") + e.what());
    }
    apply_thread_count(threads);
    use_full_fp32_on_cuda();
    Registry registry;
    load_registry(registry, common);
    const CheckpointModel model = load_checkpoint_model(checkpoint, registry, device);
    const DecodeMethod method = decode.empty() ? model.decode : parse_decode_method(decode);
    std::filesystem::create_directories(out_dir);
    std::printf("%s: %s stage %s, epoch %lld, %zu landmarks, decode %s, %s\n", checkpoint.c_str(),
                model.info.experiment.c_str(), model.info.stage.c_str(),
                static_cast<long long>(model.info.epoch), model.landmarks.size(),
                to_string(method).c_str(), device.str().c_str());
    for (const auto& image_path : images) {
      const torch::Tensor image = read_image_file(image_path);
      const torch::Tensor points = model.predict(image, method);
      const std::string stem = std::filesystem::path(image_path).stem().string();
      const auto json_path = std::filesystem::path(out_dir) / (stem + ".json");
      const auto png_path = std::filesystem::path(out_dir) / (stem + "_overlay.png");
      write_file_atomically(json_path,
                            json_file_text(aariz_annotation(stem, model.landmarks, points)));
      cv::Mat overlay = drawable_image(image);
      draw_landmarks(overlay, model.landmarks, points);
      write_png_atomically(png_path, overlay);
      std::printf("  %s (%lldx%lld) -> %s, %s\n", image_path.c_str(),
                  static_cast<long long>(image.size(1)), static_cast<long long>(image.size(0)),
                  json_path.string().c_str(), png_path.string().c_str());
      std::fflush(stdout);
    }
    return int{kOk};
  });
}

}  // namespace exprun::cli
