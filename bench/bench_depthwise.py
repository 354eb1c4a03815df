"""Depthwise 3x3 convolution, forward + backward (grad-input, grad-weight,
grad-bias), pulptrain vs PyTorch channels_last, float32, in the same run.

The shapes are MobileNetV1's adaptive-stage depthwise layers at batch 128.
Reported: the minimum wall time over --reps repetitions (the two libraries
take turns in each) and GFLOP/s (fwd + bwd counted as 3 x 2*N*OH*OW*C*KH*KW);
the ratio is what to compare (the machine may be shared). Both sides allocate
their outputs on every call. Run from the repository root after an in-place build:

    python bench/bench_depthwise.py [--threads 2] [--reps 5] [--batch 128] [--clock wall|cpu]
                                    [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pulptrain  # noqa: E402
from pulptrain import ops  # noqa: E402

# (name, H=W, C, stride): MobileNetV1 conv5_x/conv6 depthwise layers on 128x128 inputs
LAYERS = [("conv5_4/dw", 8, 512, 1), ("conv5_6/dw", 8, 512, 2), ("conv6/dw", 4, 1024, 1)]


def best_times(fns, reps: int, clock=time.perf_counter) -> list[float]:
    """Minimum time of each function; the functions take turns in every
    repetition so a change in machine load hits them alike."""
    for fn in fns:
        fn()  # warm up (thread pool, caches, allocator)
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            best[i] = min(best[i], clock() - t0)
    return best


def bench_layer(n, hw, c, stride, reps, rng, clock):
    x = rng.standard_normal((n, hw, hw, c)).astype(np.float32)
    w = (rng.standard_normal((3, 3, c)) * 0.3).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    y = ops.depthwise_conv2d_forward(x, w, b, stride, 1)
    gy = rng.standard_normal(y.shape).astype(np.float32)

    def ours():
        ops.depthwise_conv2d_forward(x, w, b, stride, 1)
        ops.depthwise_conv2d_backward(x, w, gy, stride, 1)

    xt = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)  # NHWC memory = channels_last
    wt = torch.from_numpy(np.ascontiguousarray(np.transpose(w, (2, 0, 1))[:, None])).requires_grad_(True)
    wt = wt.detach().to(memory_format=torch.channels_last).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    gyt = torch.from_numpy(gy).permute(0, 3, 1, 2)
    assert xt.is_contiguous(memory_format=torch.channels_last)

    def theirs():
        xt.grad = wt.grad = bt.grad = None
        yt = F.conv2d(xt, wt, bt, stride=stride, padding=1, groups=c)
        yt.backward(gyt)

    t_ours, t_torch = best_times([ours, theirs], reps, clock)
    oh = y.shape[1]
    flops = 3 * 2 * n * oh * oh * c * 9
    return {"ours_s": t_ours, "torch_s": t_torch, "ours_gflops": flops / t_ours / 1e9,
            "torch_gflops": flops / t_torch / 1e9, "speedup": t_torch / t_ours}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--clock", choices=("wall", "cpu"), default=None,
                    help="wall time, or the calling thread's CPU time (immune to preemption on a busy "
                         "machine; only meaningful with --threads 1); default: cpu for 1 thread, else wall")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    clock_name = args.clock or ("cpu" if args.threads == 1 else "wall")
    if clock_name == "cpu" and args.threads != 1:
        ap.error("--clock cpu measures one thread: use it with --threads 1")
    clock = time.thread_time if clock_name == "cpu" else time.perf_counter
    pulptrain.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results = {}
    print(f"depthwise 3x3 fwd+bwd, batch {args.batch}, {args.threads} threads, {clock_name} time, "
          f"torch {torch.__version__}")
    print(f"{'layer':<12} {'in':>12} {'stride':>6} {'pulptrain GF/s':>15} {'torch GF/s':>11} {'speedup':>8}")
    for name, hw, c, stride in LAYERS:
        r = bench_layer(args.batch, hw, c, stride, args.reps, rng, clock)
        results[name] = dict(r, hw=hw, c=c, stride=stride)
        print(f"{name:<12} {f'{hw}x{hw}x{c}':>12} {stride:>6} {r['ours_gflops']:>15.1f} "
              f"{r['torch_gflops']:>11.1f} {r['speedup']:>7.2f}x")
    total_ours = sum(r["ours_s"] for r in results.values())
    total_torch = sum(r["torch_s"] for r in results.values())
    print(f"all three layers: {total_torch / total_ours:.2f}x faster than torch")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": args.batch, "clock": clock_name, "torch": torch.__version__,
                       "layers": results, "speedup_total": total_torch / total_ours}, f, indent=2)


if __name__ == "__main__":
    main()
