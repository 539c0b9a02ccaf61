#!/usr/bin/env python3
"""Training throughput of exprun's HRNet + adaptive wing + Adam, written in plain PyTorch.

The model, loss and step follow exprun's own (plugins/models/hrnet/hrnet.cpp,
plugins/losses/adaptive_wing/adaptive_wing.cpp, runner/train/train_step.cpp), so the images/s
printed here and by `exprun bench` time the same arithmetic. Runs on PyTorch 1.13 (Debian's
python3-torch) and 2.x: nothing newer than 1.13 is used.

    /usr/bin/python3 benchmarks/python/train_reference.py --width 18 --size 256 --batch 4
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

# The official HRNet code's, which exprun keeps: no effect on speed, but the same model.
BN_MOMENTUM = 0.01


def conv(cin, cout, kernel, stride=1, bias=False):
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=bias)


def bn(channels):
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes):
        super().__init__()
        self.conv1, self.bn1 = conv(cin, planes, 3), bn(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3), bn(planes)
        self.downsample = (nn.Sequential(conv(cin, planes, 1), bn(planes))
                           if cin != planes else None)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes):
        super().__init__()
        out = planes * self.expansion
        self.conv1, self.bn1 = conv(cin, planes, 1), bn(planes)
        self.conv2, self.bn2 = conv(planes, planes, 3), bn(planes)
        self.conv3, self.bn3 = conv(planes, out, 1), bn(out)
        self.downsample = nn.Sequential(conv(cin, out, 1), bn(out)) if cin != out else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def make_layer(block, cin, planes, count):
    return nn.Sequential(*(block(cin if i == 0 else planes * block.expansion, planes)
                           for i in range(count)))


def upsample(x, like):
    # To the other branch's exact size, not by a factor of 2^k: sizes that are not multiples of
    # 32 then still line up, and it is the kernel exprun runs.
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class HighResolutionModule(nn.Module):
    def __init__(self, channels, blocks):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, blocks) for c in channels)
        # fuse_layers[i][j] brings branch j to branch i; None on the diagonal, as in the PyTorch
        # code whose parameter names exprun keeps.
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse(channels, i, j) for j in range(n))
            for i in range(n if n > 1 else 0))

    @staticmethod
    def _fuse(channels, i, j):
        if j > i:
            return nn.Sequential(conv(channels[j], channels[i], 1), bn(channels[i]))
        if j == i:
            return None
        # One stride-2 step per halving; only the last changes the channel count, and it has no
        # ReLU because the sum gets one.
        outs = [channels[j]] * (i - j - 1) + [channels[i]]
        return nn.Sequential(*(nn.Sequential(conv(channels[j], out, 3, 2), bn(out),
                                             *([nn.ReLU()] if k < i - j - 1 else []))
                               for k, out in enumerate(outs)))

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if len(xs) == 1:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            total = None
            for j, x in enumerate(xs):  # from branch 0 up, the order exprun sums in
                y = upsample(row[j](x), xs[i]) if j > i else row[j](x) if j < i else x
                total = y if total is None else total + y
            out.append(F.relu(total))
        return out


def make_transition(previous, channels):
    layers = []
    for b, c in enumerate(channels):
        if b < len(previous):
            changed = previous[b] != c
            layers.append(nn.Sequential(conv(previous[b], c, 3), bn(c), nn.ReLU()) if changed
                          else None)
            continue
        steps = b + 1 - len(previous)  # 1 in HRNet: each stage adds one branch
        outs = [previous[-1]] * (steps - 1) + [c]
        layers.append(nn.Sequential(*(nn.Sequential(conv(previous[-1], out, 3, 2), bn(out),
                                                     nn.ReLU()) for out in outs)))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNetV2 as exprun's models/hrnet builds it; the keyword defaults are its schema's."""

    output_stride = 4

    def __init__(self, width, landmarks, in_channels=1, num_modules=(1, 4, 3), num_blocks=4,
                 stem_blocks=4, head_channels=0):
        super().__init__()
        self.conv1, self.bn1 = conv(in_channels, 64, 3, 2), bn(64)
        self.conv2, self.bn2 = conv(64, 64, 3, 2), bn(64)
        self.layer1 = make_layer(Bottleneck, 64, 64, stem_blocks)
        previous = [64 * Bottleneck.expansion]
        for stage in range(3):
            channels = [width << b for b in range(stage + 2)]
            setattr(self, f"transition{stage + 1}", make_transition(previous, channels))
            setattr(self, f"stage{stage + 2}", nn.ModuleList(
                HighResolutionModule(channels, num_blocks) for _ in range(num_modules[stage])))
            previous = channels
        concatenated = sum(previous)
        head = head_channels or concatenated
        self.head = nn.Sequential(conv(concatenated, head, 1, bias=True), bn(head), nn.ReLU(),
                                  conv(head, landmarks, 1, bias=True))
        # exprun's (and the reference code's) initialisation: tiny convolutions keep the first
        # heatmaps near zero, which is also what the fp16 loss scale first sees.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, images):
        x = F.relu(self.bn1(self.conv1(images)))
        x = F.relu(self.bn2(self.conv2(x)))
        branches = [self.layer1(x)]
        for stage in range(3):
            new = []
            for b, layer in enumerate(getattr(self, f"transition{stage + 1}")):
                if b >= len(branches):
                    new.append(layer(branches[-1]))
                else:
                    new.append(branches[b] if layer is None else layer(branches[b]))
            branches = new
            for module in getattr(self, f"stage{stage + 2}"):
                branches = module(branches)
        maps = [branches[0]] + [upsample(b, branches[0]) for b in branches[1:]]
        return self.head(torch.cat(maps, 1))


def adaptive_wing(pred, target, weights, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
                  use_loss_map=False, map_weight=10.0, map_threshold=0.2):
    """exprun's losses/adaptive_wing with fused = false, op for op (its defaults): the same
    arithmetic as exprun's default fused loop, as a PyTorch user would write it."""
    pred, y = pred.float(), target.float()  # as exprun: pow/log in half precision lose small errors
    delta = (y - pred).abs()
    exponent = alpha - y
    ratio = theta / epsilon
    ratio_pow = torch.pow(torch.full_like(y, ratio), exponent)
    a = (omega * (1.0 / (1.0 + ratio_pow)) * exponent
         * torch.pow(torch.full_like(y, ratio), exponent - 1.0) / epsilon)
    c = theta * a - omega * torch.log1p(ratio_pow)
    near = omega * torch.log1p(torch.pow(delta / epsilon, exponent))
    pixel = torch.where(delta < theta, near, a * delta - c)
    if use_loss_map:
        n, k, h, w = y.shape
        foreground = y.gt(map_threshold).float().view(n * k, 1, h, w)
        dilated = F.max_pool2d(foreground, 3, stride=1, padding=1).view(n, k, h, w)
        pixel = pixel * (1.0 + map_weight * dilated)
    per_map = pixel.mean((2, 3))
    return (per_map * weights.float().view(1, -1)).sum(1).div(weights.sum()).mean()


def gaussian_targets(n, k, h, w, sigma, generator):
    # exprun's encode_heatmaps: exp(-d^2 / 2 sigma^2) around each landmark, peak 1, no cut-off.
    points = torch.rand(n, k, 2, generator=generator, dtype=torch.float64)
    points = points * torch.tensor([w - 1, h - 1], dtype=torch.float64)
    dx = torch.arange(w, dtype=torch.float64).view(1, 1, 1, w) - points[..., 0].view(n, k, 1, 1)
    dy = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1) - points[..., 1].view(n, k, 1, 1)
    return torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)).float()


def count_multiply_adds(model):
    """Hooks adding conv weights x output pixels, per pass: what `exprun plan` prints per image."""
    total = [0]

    def hook(module, _inputs, output):
        total[0] += module.weight.numel() * output.shape[-2] * output.shape[-1]

    return total, [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, nn.Conv2d)]


def train_step(model, optimizer, scaler, images, targets, weights, args, device, autocast):
    # PyTorch's default zero_grad is LibTorch's of the same release (1.13 zeroes the
    # gradients, 2.x drops them), which is what exprun calls.
    optimizer.zero_grad()
    batch, loss_sum = images.shape[0], 0.0
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    for start in range(0, batch, args.micro_batch):
        m = min(args.micro_batch, batch - start)
        # exprun's step copies each pass's batch from host memory to the device too.
        x = images[start:start + m].to(device).contiguous(memory_format=layout)
        y = targets[start:start + m].to(device)
        with autocast():
            loss = adaptive_wing(model(x).float(), y, weights, use_loss_map=args.loss_map)
        # Each pass weighted by its share of the batch: accumulated gradients equal the batch's.
        weighted = loss * (m / batch)
        (scaler.scale(weighted) if scaler else weighted).backward()
        loss_sum += loss.item() * m  # exprun reads every pass's loss, a host sync included
    if scaler:
        scaler.step(optimizer)  # skipped, as in exprun, when a gradient is inf/NaN
        scaler.update()
    else:
        optimizer.step()
    return loss_sum / batch


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def input_size(text):
    """"256" or "128x160" (width x height, as exprun's data.image_size) -> (width, height)."""
    parts = text.lower().split("x")
    try:
        sides = tuple(int(part) for part in parts)
    except ValueError:
        sides = ()
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise argparse.ArgumentTypeError(f"expected N or WxH (positive integers), found {text!r}")
    return sides * 2 if len(sides) == 1 else sides


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = p.add_argument
    add("--width", type=int, default=18, help="HRNet width: 18 (W18), 32 (W32), ...")
    add("--size", type=input_size, default=(256, 256),
        help="input size, N (N x N) or WxH as data.image_size, each divisible by 4")
    add("--batch", type=int, default=4, help="images per optimiser step")
    add("--micro-batch", type=int, default=0,
        help="images per forward/backward pass (gradient accumulation); 0 = --batch")
    add("--landmarks", type=int, default=29, help="heatmaps (Aariz: 29, ISBI 2015: 19)")
    add("--channels", type=int, default=1, choices=(1, 3), help="input channels (data.channels)")
    # The rest of models/hrnet's schema, e.g. to build the quickstart's small model.
    add("--num-modules", type=int, nargs=3, default=[1, 4, 3])
    add("--num-blocks", type=int, default=4)
    add("--stem-blocks", type=int, default=4)
    add("--head-channels", type=int, default=0, help="0 = 15 x width")
    add("--loss-map", action="store_true", help="adaptive wing's use_loss_map (the Aariz files)")
    add("--sigma", type=float, default=2.0, help="target Gaussian, heatmap pixels")
    add("--lr", type=float, default=3e-4)
    add("--adam-foreach", choices=("default", "on", "off"), default="default",
        help="LibTorch's Adam loops over tensors, like 'off'; PyTorch 2.x picks 'on' on CUDA")
    add("--steps", type=int, default=10, help="timed steps")
    add("--warmup", type=int, default=2, help="untimed steps first (at least 1)")
    add("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    add("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    add("--threads", type=int, default=0,
        help="torch.set_num_threads; 0 = every hardware thread, as exprun's threads = 0")
    add("--channels-last", action="store_true", help="NHWC weights and inputs")
    add("--cudnn-benchmark", action="store_true", help="exprun's cudnn_benchmark (off by default)")
    add("--seed", type=int, default=0)
    add("--json", metavar="PATH", help="also write the result here")
    args = p.parse_args()
    args.micro_batch = args.micro_batch or args.batch
    if args.precision == "fp16" and args.device != "cuda":
        p.error("fp16 needs --device cuda (CPU autocast is bf16 only, as in exprun)")
    if any(side % HRNet.output_stride for side in args.size):
        p.error(f"--size: each side must be divisible by the output stride {HRNet.output_stride}")
    if min(args.warmup, args.steps, args.micro_batch) < 1 or args.micro_batch > args.batch:
        p.error("need --warmup >= 1, --steps >= 1 and 1 <= --micro-batch <= --batch")
    return args


def main():
    args = parse_args()
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    torch.manual_seed(args.seed)
    model = HRNet(args.width, args.landmarks, args.channels, args.num_modules, args.num_blocks,
                  args.stem_blocks, args.head_channels).to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    parameters = sum(p.numel() for p in model.parameters())
    foreach = {"default": None, "on": True, "off": False}[args.adam_foreach]
    # exprun's Adam is LibTorch's with its defaults: betas 0.9/0.999, eps 1e-8, no weight decay.
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=0.0, foreach=foreach)
    scaler, autocast = None, contextlib.nullcontext  # fp32: exprun enters no autocast scope
    if args.precision != "fp32":
        dtype = torch.float16 if args.precision == "fp16" else torch.bfloat16
        autocast = lambda: torch.autocast(device_type=device.type, dtype=dtype)  # noqa: E731
    if args.precision == "fp16":
        # GradScaler's defaults are exprun's mixed_precision ones (65536, x2, x0.5, 2000 steps);
        # 2.x moved it to torch.amp and deprecates the old spelling.
        scaler = (torch.amp.GradScaler("cuda") if hasattr(torch.amp, "GradScaler")
                  else torch.cuda.amp.GradScaler())

    # Made once, on the host where exprun's loader hands batches over: the step is timed, not
    # the data.
    g = torch.Generator().manual_seed(args.seed)
    width_px, height_px = args.size
    heat_w, heat_h = width_px // HRNet.output_stride, height_px // HRNet.output_stride
    images = torch.rand(args.batch, args.channels, height_px, width_px, generator=g)
    targets = gaussian_targets(args.batch, args.landmarks, heat_h, heat_w, args.sigma, g)
    weights = torch.ones(args.landmarks, device=device)  # no loss.weights: every landmark 1
    step = lambda: train_step(model, optimizer, scaler, images, targets, weights,  # noqa: E731
                              args, device, autocast)
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)

    if cuda:  # as exprun bench: the peak counts from just before the first step
        torch.cuda.empty_cache()
        sync()
        torch.cuda.reset_peak_memory_stats(device)
    macs, hooks = count_multiply_adds(model)
    step()
    for h in hooks:
        h.remove()
    multiply_adds = macs[0] // -(-args.batch // args.micro_batch)  # per pass = per image
    for _ in range(args.warmup - 1):
        step()
    sync()
    times, losses = [], []
    for _ in range(args.steps):
        start = time.perf_counter()
        losses.append(step())
        sync()
        times.append(time.perf_counter() - start)

    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    result = {
        "images_per_s": args.batch * args.steps / sum(times),  # as exprun bench: from the total
        "step_s_median": statistics.median(times), "step_s_mean": statistics.mean(times),
        "step_s": times, "peak_memory_bytes": peak, "parameters": parameters,
        "multiply_adds_per_image": multiply_adds, "heatmap_shape": [args.landmarks, heat_h, heat_w],
        "loss_first_timed": losses[0], "loss_last_timed": losses[-1],
        "loss_scale": scaler.get_scale() if scaler else None,
        "torch_version": torch.__version__, "device_name": device_name(device),
        "threads": torch.get_num_threads(), "settings": vars(args),
    }
    print(f"HRNet-W{args.width} {width_px}x{height_px}, {args.landmarks} landmarks: "
          f"{parameters} parameters, {multiply_adds / 1e9:.3f} G multiply-adds per image")
    print(f"{args.device} ({result['device_name']}), {args.precision}, torch {torch.__version__}, "
          f"{result['threads']} threads, batch {args.batch} (micro-batch {args.micro_batch})")
    print(f"{args.steps} timed steps after {args.warmup} warm-up: "
          f"median {result['step_s_median']:.4f} s/step, {result['images_per_s']:.2f} images/s, "
          f"peak {'n/a (cpu)' if peak is None else f'{peak / 2**20:.1f} MiB'}, "
          f"loss {losses[0]:.5f} -> {losses[-1]:.5f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
