"""GEMM-family kernels vs PyTorch (channels_last, same thread count), in one run.

    python bench/bench_gemm.py [--threads 1,2] [--reps 15] [--out bench/results/gemm.json]

Reports, for the adaptive stage of MobileNetV1 above conv5_4/dw at batch 128:
- the machine's FP32 FMA peak, measured here (bench/fma_peak.c, built on the
  fly), per core and for the thread count;
- per GEMM layer (pointwise 512->512 @8x8, 512->1024 @4x4, 1024->1024 @4x4,
  linear 1024->50): forward and backward (grad-input + grad-weight + grad-bias)
  GFLOP/s of pulptrain and torch, their ratio, and pulptrain's fraction of the
  measured peak;
- one training step (forward + backward) of the adaptive stage in both
  frameworks. The depthwise / pooling / ReLU ops come from pulptrain.ops when
  this tree has them; otherwise the step covers the GEMM layers only (same
  layers in both frameworks) and the JSON says so.

Timing on a shared machine: every number is the best of `reps` runs, pulptrain
and torch interleaved, so both see the same load; compare ratios from one run.
The "cpu" rates divide work by the CPU time the process actually got (the rate
of the cores while we ran on them), the "wall" rates by elapsed time. With one
thread both frameworks run on the calling thread, so their CPU-time ratio
("speedup_vs_torch_cpu_time") holds even on a busy machine.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pulptrain  # noqa: E402
from pulptrain import _gemm, ops  # noqa: E402

BATCH = 128


def build_peak_lib() -> ctypes.CDLL:
    out_dir = os.path.join(ROOT, "build", "bench")
    os.makedirs(out_dir, exist_ok=True)
    lib = os.path.join(out_dir, "fma_peak.so")
    src = os.path.join(ROOT, "bench", "fma_peak.c")
    if not os.path.exists(lib) or os.path.getmtime(lib) < os.path.getmtime(src):
        cc = os.environ.get("CC", "gcc")
        subprocess.run([cc, "-std=c99", "-O2", "-fPIC", "-shared", "-pthread", "-o", lib, src], check=True)
    dll = ctypes.CDLL(lib)
    dll.fma_peak_gflops.restype = ctypes.c_double
    dll.fma_peak_gflops.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_double, ctypes.c_int]
    return dll


def measure_peak(threads: int, isa: int = 2) -> dict:
    dll = build_peak_lib()
    wall = max(dll.fma_peak_gflops(isa, threads, 0.05, 0) for _ in range(20))
    cpu = max(dll.fma_peak_gflops(isa, 1, 0.05, 1) for _ in range(20))
    return {"isa": ["sse2", "avx2", "avx512"][isa], "threads": threads, "wall_gflops": wall,
            "cpu_gflops_per_core": cpu, "cpu_gflops": cpu * threads}


def best_time(fn, reps: int, clock=time.perf_counter) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


# ------------------------------------------------------------------ layers
def gemm_layers():
    """(name, kind, x shape, w shape): the adaptive stage's GEMM layers."""
    return [
        ("conv5_4/pw 512->512 @8x8", "pointwise", (BATCH, 8, 8, 512), (512, 512)),
        ("conv5_6/pw 512->1024 @4x4", "pointwise", (BATCH, 4, 4, 512), (1024, 512)),
        ("conv6/pw 1024->1024 @4x4", "pointwise", (BATCH, 4, 4, 1024), (1024, 1024)),
        ("fc 1024->50", "linear", (BATCH, 1024), (50, 1024)),
    ]


def flops_of(x_shape, w_shape) -> float:
    rows = int(np.prod(x_shape[:-1]))
    return 2.0 * rows * w_shape[0] * w_shape[1]


def pt_layer_fns(kind, x, w, b, gy):
    if kind == "pointwise":
        return (lambda: ops.pointwise_conv2d_forward(x, w, b),
                lambda: ops.pointwise_conv2d_backward(x, w, gy))
    return lambda: ops.linear_forward(x, w, b), lambda: ops.linear_backward(x, w, gy)


def torch_layer_fns(torch, kind, x, w, b, gy):
    if kind == "pointwise":
        xt = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC memory = channels_last NCHW view
        wt = torch.from_numpy(w).reshape(w.shape[0], w.shape[1], 1, 1).contiguous(memory_format=torch.channels_last)
        bt = torch.from_numpy(b)
        gyt = torch.from_numpy(gy).permute(0, 3, 1, 2)
        conv_bwd = torch.ops.aten.convolution_backward

        def fwd():
            return torch.nn.functional.conv2d(xt, wt, bt)

        def bwd():
            return conv_bwd(gyt, xt, wt, [w.shape[0]], [1, 1], [0, 0], [1, 1], False, [0, 0], 1,
                            [True, True, True])
        return fwd, bwd
    xt, wt, bt, gyt = (torch.from_numpy(a) for a in (x, w, b, gy))

    def lin_bwd():
        return gyt @ wt, gyt.t() @ xt, gyt.sum(0)
    return lambda: torch.nn.functional.linear(xt, wt, bt), lin_bwd


def bench_layers(torch, threads: int, reps: int, peak: dict, rng) -> list[dict]:
    rows = []
    for name, kind, x_shape, w_shape in gemm_layers():
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = (rng.standard_normal(w_shape) / np.sqrt(w_shape[1])).astype(np.float32)
        b = rng.standard_normal(w_shape[0]).astype(np.float32)
        gy = rng.standard_normal(x_shape[:-1] + (w_shape[0],)).astype(np.float32)
        flop = flops_of(x_shape, w_shape)
        pt_fwd, pt_bwd = pt_layer_fns(kind, x, w, b, gy)
        th_fwd, th_bwd = torch_layer_fns(torch, kind, x, w, b, gy)
        with torch.no_grad():
            for f in (pt_fwd, pt_bwd, th_fwd, th_bwd):
                f()  # warm up (thread pools, caches)
            t = {k: float("inf") for k in ("pt_fwd", "pt_bwd", "th_fwd", "th_bwd", "pt_fwd_cpu", "pt_bwd_cpu")}
            for _ in range(reps):  # interleaved: both frameworks see the same load
                t["pt_fwd"] = min(t["pt_fwd"], best_time(pt_fwd, 1))
                t["th_fwd"] = min(t["th_fwd"], best_time(th_fwd, 1))
                t["pt_bwd"] = min(t["pt_bwd"], best_time(pt_bwd, 1))
                t["th_bwd"] = min(t["th_bwd"], best_time(th_bwd, 1))
        # CPU-time rates of pulptrain alone (torch's idle threads may spin and
        # would be charged to the process otherwise)
        time.sleep(0.3)
        t["pt_fwd_cpu"] = best_time(pt_fwd, reps, time.process_time)
        t["pt_bwd_cpu"] = best_time(pt_bwd, reps, time.process_time)
        if threads == 1:  # both run on the calling thread: its CPU time is exact under any load
            with torch.no_grad():
                for phase, pt_f, th_f in (("fwd", pt_fwd, th_fwd), ("bwd", pt_bwd, th_bwd)):
                    t[f"pt_{phase}_thread_cpu"] = t[f"th_{phase}_thread_cpu"] = float("inf")
                    for _ in range(reps):
                        t[f"pt_{phase}_thread_cpu"] = min(t[f"pt_{phase}_thread_cpu"],
                                                          best_time(pt_f, 1, time.thread_time))
                        t[f"th_{phase}_thread_cpu"] = min(t[f"th_{phase}_thread_cpu"],
                                                          best_time(th_f, 1, time.thread_time))
        row = {"layer": name, "flop_fwd": flop, "flop_bwd": 2 * flop}
        for phase, f in (("fwd", flop), ("bwd", 2 * flop)):
            pt_gf, th_gf = f / t[f"pt_{phase}"] / 1e9, f / t[f"th_{phase}"] / 1e9
            cpu_gf = f / t[f"pt_{phase}_cpu"] / 1e9
            row[phase] = {
                "pulptrain_ms": 1e3 * t[f"pt_{phase}"], "torch_ms": 1e3 * t[f"th_{phase}"],
                "pulptrain_gflops": pt_gf, "torch_gflops": th_gf, "speedup_vs_torch": th_gf and pt_gf / th_gf,
                "pulptrain_cpu_gflops_per_core": cpu_gf / threads,
                "fraction_of_peak_cpu": cpu_gf / threads / peak["cpu_gflops_per_core"],
                "fraction_of_peak_wall": pt_gf / peak["wall_gflops"],
            }
            if threads == 1:
                row[phase]["speedup_vs_torch_cpu_time"] = t[f"th_{phase}_thread_cpu"] / t[f"pt_{phase}_thread_cpu"]
        rows.append(row)
        print(f"{name:28s} fwd pt {row['fwd']['pulptrain_gflops']:6.1f} torch {row['fwd']['torch_gflops']:6.1f} "
              f"GF/s (x{row['fwd']['speedup_vs_torch']:.2f}, {100 * row['fwd']['fraction_of_peak_cpu']:.0f}% peak) | "
              f"bwd pt {row['bwd']['pulptrain_gflops']:6.1f} torch {row['bwd']['torch_gflops']:6.1f} "
              f"(x{row['bwd']['speedup_vs_torch']:.2f}, {100 * row['bwd']['fraction_of_peak_cpu']:.0f}% peak)"
              + ("" if threads > 1 else f" | CPU time x{row['fwd']['speedup_vs_torch_cpu_time']:.2f} fwd, "
                 f"x{row['bwd']['speedup_vs_torch_cpu_time']:.2f} bwd"))
    return rows


# ------------------------------------------------------------ training step
# (kind, Cin, Cout, stride) of the adaptive stage above conv5_4/dw, 8x8 input
STAGE = [("pw", 512, 512, 1), ("dw", 512, 512, 1), ("pw", 512, 512, 1), ("dw", 512, 512, 2),
         ("pw", 512, 1024, 1), ("dw", 1024, 1024, 1), ("pw", 1024, 1024, 1)]
CLASSES = 50


def has_full_stage_ops() -> bool:
    return all(hasattr(ops, f) for f in ("depthwise_conv2d_forward", "depthwise_conv2d_backward",
                                         "global_avg_pool_forward", "global_avg_pool_backward"))


def make_stage(rng):
    params = []
    for kind, cin, cout, _ in STAGE:
        shape = (cout, cin) if kind == "pw" else (3, 3, cin)
        fan_in = cin if kind == "pw" else 9
        params.append(((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32),
                       (0.1 * rng.standard_normal(cout)).astype(np.float32)))
    fc = ((rng.standard_normal((CLASSES, 1024)) / 32).astype(np.float32),
          (0.1 * rng.standard_normal(CLASSES)).astype(np.float32))
    return params, fc


def pulptrain_step(params, fc, x, grad_logits):
    """Forward and backward of the adaptive stage; returns the gradients."""
    inputs, outputs = [], []
    h = x
    for (kind, _, _, stride), (w, b) in zip(STAGE, params):
        inputs.append(h)
        h = (ops.pointwise_conv2d_forward(h, w, b) if kind == "pw"
             else ops.depthwise_conv2d_forward(h, w, b, stride, 1))
        h = ops.relu_forward(h)
        outputs.append(h)
    pooled = ops.global_avg_pool_forward(h)
    ops.linear_forward(pooled, fc[0], fc[1])
    grads = []
    g, gw, gb = ops.linear_backward(pooled, fc[0], grad_logits)
    grads.append((gw, gb))
    g = ops.global_avg_pool_backward(h.shape, g)
    for i in reversed(range(len(STAGE))):
        kind, _, _, stride = STAGE[i]
        w = params[i][0]
        g = ops.relu_backward(outputs[i], g)
        if kind == "pw":
            g, gw, gb = ops.pointwise_conv2d_backward(inputs[i], w, g, need_grad_x=i > 0)
        else:
            g, gw, gb = ops.depthwise_conv2d_backward(inputs[i], w, g, stride, 1, need_grad_x=i > 0)
        grads.append((gw, gb))
    return grads


def torch_stage(torch, params, fc):
    nn = torch.nn
    layers = []
    for (kind, cin, cout, stride), (w, b) in zip(STAGE, params):
        if kind == "pw":
            conv = nn.Conv2d(cin, cout, 1)
            conv.weight.data = torch.from_numpy(w).reshape(cout, cin, 1, 1).clone()
        else:
            conv = nn.Conv2d(cin, cout, 3, stride, 1, groups=cin)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 0, 1))).reshape(cout, 1, 3, 3).clone()
        conv.bias.data = torch.from_numpy(b).clone()
        layers += [conv, nn.ReLU()]
    linear = nn.Linear(1024, CLASSES)
    linear.weight.data = torch.from_numpy(fc[0]).clone()
    linear.bias.data = torch.from_numpy(fc[1]).clone()
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)
    return model.to(memory_format=torch.channels_last)


def bench_step(torch, threads: int, reps: int, rng) -> dict | None:
    if not has_full_stage_ops():
        print("training step: skipped (this tree lacks depthwise / global pool ops)")
        return None
    params, fc = make_stage(rng)
    x = rng.standard_normal((BATCH, 8, 8, 512)).astype(np.float32)
    grad_logits = (rng.standard_normal((BATCH, CLASSES)) / BATCH).astype(np.float32)
    model = torch_stage(torch, params, fc)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    gt = torch.from_numpy(grad_logits)

    def torch_step():
        model.zero_grad(set_to_none=True)
        model(xt).backward(gt)

    def pt_step():
        pulptrain_step(params, fc, x, grad_logits)

    # the two implementations agree (a check that the benchmark runs the same math)
    torch_step()
    grads = pulptrain_step(params, fc, x, grad_logits)
    ref = model[-1].weight.grad.numpy()
    err = float(np.abs(grads[0][0] - ref).max() / max(np.abs(ref).max(), 1e-30))
    t_pt = t_th = c_pt = c_th = float("inf")
    for _ in range(reps):
        t_pt = min(t_pt, best_time(pt_step, 1))
        t_th = min(t_th, best_time(torch_step, 1))
        if threads == 1:
            c_pt = min(c_pt, best_time(pt_step, 1, time.thread_time))
            c_th = min(c_th, best_time(torch_step, 1, time.thread_time))
    row = {"pulptrain_ms": 1e3 * t_pt, "torch_ms": 1e3 * t_th, "speedup_vs_torch": t_th / t_pt,
           "fc_grad_w_max_rel_err_vs_torch": err}
    line = (f"training step (batch {BATCH}): pulptrain {row['pulptrain_ms']:.1f} ms, torch {row['torch_ms']:.1f} ms, "
            f"speedup x{row['speedup_vs_torch']:.2f}")
    if threads == 1:
        row.update(pulptrain_cpu_ms=1e3 * c_pt, torch_cpu_ms=1e3 * c_th, speedup_vs_torch_cpu_time=c_th / c_pt)
        line += f" (CPU time: {row['pulptrain_cpu_ms']:.1f} vs {row['torch_cpu_ms']:.1f} ms, x{c_th / c_pt:.2f})"
    print(line)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default=f"1,{pulptrain._core.max_cores()}",
                    help="comma-separated thread counts (default: 1 and all cores)")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--out", help="write the results as JSON to this file")
    args = ap.parse_args()
    thread_counts = sorted({int(t) for t in args.threads.split(",")})

    peaks = {t: measure_peak(t) for t in thread_counts}  # before torch starts its thread pool
    import torch
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_avg_at_start": os.getloadavg()},
        "batch": BATCH, "reps": args.reps, "gemm_isa": _gemm.get_isa(), "torch": torch.__version__,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "runs": [],
    }
    for threads in thread_counts:
        pulptrain.set_num_threads(threads)
        torch.set_num_threads(threads)
        peak = peaks[threads]
        print(f"== {threads} thread(s); FMA peak (avx512): {peak['cpu_gflops_per_core']:.1f} GF/s per core "
              f"(CPU time), {peak['wall_gflops']:.1f} GF/s on {threads} thread(s) (wall)")
        rng = np.random.default_rng(0)
        result["runs"].append({
            "threads": threads, "peak": peak,
            "layers": bench_layers(torch, threads, args.reps, peak, rng),
            "training_step": bench_step(torch, threads, args.reps, rng),
        })
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
