"""The frozen stage of MobileNetV1 at 128x128 (up to the LR layer, default
conv5_4/dw): INT8 pulptrain against FP32, accuracy and speed, in one run.

Accuracy, on >= 40 real images (scikit-image photos, scikit-learn's sample
images, random crops and mirror images of them; calibration on a different
draw of crops):
  - cosine similarity between the INT8 and FP32 LR activations, per image;
  - top-1 agreement of the INT8-fronted network (INT8 frozen stage + FP32
    layers above + the ImageNet classifier) with the FP32 network.
Speed: images/s of the frozen stage, INT8 pulptrain (the instruction-set path
this CPU takes, and the portable C path) vs FP32 PyTorch (NCHW and
channels_last, the faster counts) and FP32 pulptrain, same threads, same
batch, minimum wall time over --reps interleaved rounds; and, as a measure a
shared machine disturbs less, the one-thread process CPU time of INT8
pulptrain and FP32 PyTorch. Compare ratios, not absolute numbers.

    python bench/bench_frozen.py [--threads 2] [--images 48] [--batch 64] [--reps 5]
                                 [--lr-layer conv5_4/dw] [--json bench/results/frozen.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # the in-place build

import pulptrain  # noqa: E402
from pulptrain import _quant  # noqa: E402
from pulptrain.models import LAYERS, layer_index, load_weights, mobilenet_v1  # noqa: E402
from pulptrain.models.photos import photo_pool  # noqa: E402
from pulptrain.quant import kernel_isa, quantize_frozen_stage  # noqa: E402

SIZE = 128


def best_times(variants: dict, reps: int) -> dict:
    """Minimum wall time of each variant; the variants take turns in every
    round, so a shared machine's load falls on all of them alike."""
    best = {}
    for name, (fn, setup) in variants.items():
        setup()
        fn()                                   # warm up
    for _ in range(reps):
        for name, (fn, setup) in variants.items():
            setup()
            t0 = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    return best


class TorchFrozen(torch.nn.Module):
    """The same frozen stage in PyTorch FP32 (BN folded, TF SAME padding)."""

    def __init__(self, weights, lr_layer: str):
        super().__init__()
        self.specs = LAYERS[:layer_index(lr_layer) + 1]
        self.params = []
        for spec in self.specs:
            w = torch.tensor(weights[f"{spec.tf_name}/w"])
            if spec.kind == "conv":
                w = w.permute(0, 3, 1, 2)
            elif spec.kind == "depthwise":
                w = w.permute(2, 0, 1)[:, None]
            else:
                w = w[:, :, None, None]
            self.params.append((w.contiguous(), torch.tensor(weights[f"{spec.tf_name}/b"])))

    def forward(self, x):
        for spec, (w, b) in zip(self.specs, self.params):
            if spec.kind == "pointwise":
                x = F.conv2d(x, w, b)
            else:
                # TF SAME: stride 2 pads 0 top/left and 1 bottom/right at even sizes
                x = F.pad(x, (0, 1, 0, 1)) if spec.stride == 2 else F.pad(x, (1, 1, 1, 1))
                x = F.conv2d(x, w, b, spec.stride, groups=1 if spec.kind == "conv" else w.shape[0])
            x = F.hardtanh(x, 0.0, 6.0)
        return x


def best_cpu_times(variants: dict, reps: int) -> dict:
    """Minimum process CPU time of each variant on one thread: what one core
    spends, unaffected by other programs taking turns on the machine."""
    best = {}
    for _ in range(reps):
        for name, fn in variants.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best.get(name, float("inf")), time.process_time() - t0)
    return best


def cosine(a, b):
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lr-layer", default="conv5_4/dw")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "frozen.json"))
    args = ap.parse_args()
    if args.images < 40:
        ap.error("--images must be >= 40")

    pulptrain.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    weights = load_weights()
    frozen, head = mobilenet_v1(args.lr_layer, SIZE, weights=weights)
    images = photo_pool(SIZE, args.images, seed=0)
    calibration = photo_pool(SIZE, args.calibration, seed=1)
    int8 = quantize_frozen_stage(frozen, calibration)

    # ---- accuracy
    fp32_latents = frozen(images)
    int8_latents = int8(images)
    cos = cosine(int8_latents, fp32_latents)
    top1_fp32 = head(fp32_latents).argmax(1)
    top1_int8 = head(int8_latents).argmax(1)
    agreement = float((top1_fp32 == top1_int8).mean())

    # ---- speed
    batch = np.concatenate([images] * (-(-args.batch // len(images))))[:args.batch]
    torch_model = TorchFrozen(weights, args.lr_layer).eval()
    x_nchw = torch.tensor(batch, dtype=torch.float32).permute(0, 3, 1, 2).contiguous() / 127.5 - 1.0
    x_cl = x_nchw.contiguous(memory_format=torch.channels_last)
    def isa(name):
        return lambda: _quant.select_isa(name)

    def torch_run(x):
        def run():
            with torch.inference_mode():
                torch_model(x)
        return run

    times = best_times({
        "pulptrain_int8": (lambda: int8.forward_codes(batch), isa("auto")),
        "torch_fp32_nchw": (torch_run(x_nchw), isa("auto")),
        "torch_fp32_channels_last": (torch_run(x_cl), isa("auto")),
        "pulptrain_fp32": (lambda: frozen(batch), isa("auto")),
    }, args.reps)
    times.update(best_times({"pulptrain_int8_generic_c": (lambda: int8.forward_codes(batch[:8]),
                                                          isa("generic"))}, 1))
    times["pulptrain_int8_generic_c"] *= args.batch / 8      # the portable path is slow: time 8 images
    _quant.select_isa("auto")
    ips = {k: args.batch / v for k, v in times.items()}
    torch_best = max(ips["torch_fp32_nchw"], ips["torch_fp32_channels_last"])

    pulptrain.set_num_threads(1)
    torch.set_num_threads(1)
    with torch.inference_mode():
        cpu = best_cpu_times({"pulptrain_int8": lambda: int8.forward_codes(batch),
                              "torch_fp32_nchw": lambda: torch_model(x_nchw),
                              "torch_fp32_channels_last": lambda: torch_model(x_cl)}, args.reps)
    cpu_ips = {k: args.batch / v for k, v in cpu.items()}
    cpu_ratio = cpu_ips["pulptrain_int8"] / max(cpu_ips["torch_fp32_nchw"], cpu_ips["torch_fp32_channels_last"])

    result = {
        "lr_layer": args.lr_layer, "input_size": SIZE, "threads": args.threads, "batch": args.batch,
        "images": args.images, "calibration_images": args.calibration, "int8_isa": kernel_isa(),
        "cpu": platform.processor() or platform.machine(),
        "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
        "top1_agreement": agreement,
        "images_per_s": {k: round(v, 1) for k, v in ips.items()},
        "int8_vs_torch_fp32": round(ips["pulptrain_int8"] / torch_best, 2),
        "int8_vs_pulptrain_fp32": round(ips["pulptrain_int8"] / ips["pulptrain_fp32"], 2),
        "one_thread_cpu_time_images_per_s": {k: round(v, 1) for k, v in cpu_ips.items()},
        "one_thread_cpu_time_int8_vs_torch_fp32": round(cpu_ratio, 2),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "latent_scale": int8.scale, "latent_zero_point": int8.zero_point,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"LR layer {args.lr_layer}, {args.images} real images at {SIZE}x{SIZE}, "
          f"{args.threads} threads, INT8 path {kernel_isa()}")
    print(f"cosine(INT8, FP32) at the LR layer: mean {cos.mean():.4f}, min {cos.min():.4f}")
    print(f"top-1 agreement, INT8-fronted vs FP32 network: {agreement * 100:.1f} %")
    for k, v in ips.items():
        print(f"  {k:28s} {v:8.1f} images/s")
    print(f"INT8 pulptrain / best FP32 PyTorch: {result['int8_vs_torch_fp32']:.2f}x "
          f"(load average {result['load_average_1min']})")
    for k, v in cpu_ips.items():
        print(f"  1 thread, CPU time: {k:28s} {v:8.1f} images/s")
    print(f"1 thread, CPU time, INT8 pulptrain / best FP32 PyTorch: {cpu_ratio:.2f}x")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
