"""Tiling the adaptive stage of MobileNetV1 (above conv5_4/dw) into an L1
scratchpad: bytes moved L2 <-> L1 per training step, and native time tiled vs
untiled; MobileNetV1's conv1 (im2col) is reported beside the stage.

Part 1 (planner, exact byte counts): every layer's forward, grad-input and
grad-weight at batch --batch in an L1 of --l1 bytes (VEGA: 128 KiB), against
the simple lower bound (every operand of the step moved once) and, for GEMMs,
the communication bound of any schedule with that much fast memory
(2 M N K / sqrt(S) - 2 S words; Hong & Kung 1981, Smith et al. 2019).
Part 2 (timing, skip with --no-time): each step run untiled (the kernels on
the full arrays) and tiled with the last-level-per-core cache as the "L1"
budget (--time-l1, default the CPU's L2 size), taking turns, minimum of --reps;
the ratio is what to compare on a shared machine. Tiled runs twice: with the
memcpy DMA (copies on the calling core) and with the DMA thread (copies on a
helper thread, overlapping the compute as a cluster DMA engine's do). Run from the repository
root after an in-place build:

    python bench/bench_tile.py [--batch 128] [--l1 131072] [--reps 3] [--no-time]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the in-place build

import pulptrain
from pulptrain import _elem, _gemm, tile
from pulptrain._alloc import aligned
from pulptrain.bench import _cpu_model
from pulptrain.tile import Layer


def adaptive_stage(batch: int) -> list[Layer]:
    """The layers above conv5_4/dw at 128x128 input (8x8x512 feature maps), as
    pulptrain.models.adaptive builds them: BatchNorm folded into each
    convolution's bias, ReLU6 fused into its forward, TF "same" padding, and
    each grad-input after the first masked by the ReLU6 that made its input
    (as pulptrain.nn.Sequential chains them; the mask moves x once more)."""
    relu6 = dict(activation="relu6", input_activation="relu6")
    dw = dict(k=3, padding="same", **relu6)
    return [
        Layer.pointwise(batch, 8, 8, 512, 512, activation="relu6", name="conv5_4/sep"),
        Layer("depthwise", batch, 8, 8, 512, 512, stride=1, name="conv5_5/dw", **dw),
        Layer("pointwise", batch, 8, 8, 512, 512, name="conv5_5/sep", **relu6),
        Layer("depthwise", batch, 8, 8, 512, 512, stride=2, name="conv5_6/dw", **dw),
        Layer("pointwise", batch, 4, 4, 512, 1024, name="conv5_6/sep", **relu6),
        Layer("depthwise", batch, 4, 4, 1024, 1024, stride=1, name="conv6/dw", **dw),
        Layer("pointwise", batch, 4, 4, 1024, 1024, name="conv6/sep", **relu6),
        dataclasses.replace(Layer.global_avg_pool(batch, 4, 4, 1024, name="pool6"), input_activation="relu6"),
        Layer.linear(batch, 1024, 50, name="fc7"),
    ]


def conv_layers(batch: int) -> list[Layer]:
    """MobileNetV1's one dense (im2col) conv, reported beside the stage: it
    is in the frozen stage for every LR layer, so it is trained only when the
    whole network is (e.g. fine-tuned before deployment)."""
    return [Layer.conv2d(batch, 128, 128, 3, 32, 3, 2, "same", bias=False, name="conv1")]


def layer_totals(plans) -> dict:
    moved = sum(p.bytes_moved for p in plans)
    bound = sum(p.lower_bound_bytes for p in plans)
    io = sum(p.io_lower_bound_bytes for p in plans)
    return {"layer": plans[0].layer.name, "kind": plans[0].layer.kind, "bytes_moved": moved,
            "lower_bound_bytes": bound, "io_lower_bound_bytes": io, "ratio_to_bound": moved / bound,
            "ratio_to_io_bound": moved / io, "macs": sum(p.macs for p in plans)}


def traffic(batch: int, l1: int) -> tuple[list[dict], list[dict]]:
    rows, totals = [], []
    for layer in adaptive_stage(batch):
        plans = tile.training_step(layer, l1)
        rows += [p.to_dict() for p in plans]
        totals.append(layer_totals(plans))
    return rows, totals


def mib(b: float) -> str:
    return f"{b / 2**20:9.2f}"


def print_traffic(rows, totals, l1):
    print(f"\nBytes moved L2<->L1 per training step, L1 budget {l1} B "
          f"(MiB; bound = every operand once; io = communication bound)")
    print(f"{'layer':13s} {'step':11s} {'tile':34s} {'tiles':>7s} {'moved':>9s} {'bound':>9s} "
          f"{'x bound':>7s} {'x io':>6s} {'MAC/B':>6s}")
    for r in rows:
        t = r["tile"]
        if "m" in t:
            desc = f"m{t['m']} n{t['n']} k{t['k']} {t.get('order', '')}"
        else:
            desc = f"img{t['images']} rows{t['rows']} ch{t['channels']}"
        io = r["bytes_moved"] / r["io_lower_bound_bytes"]
        ai = f"{r['arithmetic_intensity']:6.2f}"
        print(f"{r['layer']:13s} {r['step']:11s} {desc:34s} {r['num_tiles']:7d} {mib(r['bytes_moved'])} "
              f"{mib(r['lower_bound_bytes'])} {r['ratio_to_bound']:7.2f} {io:6.2f} {ai}")
    print(f"\nPer layer, forward + grad-input + grad-weight:")
    print(f"{'layer':13s} {'moved MiB':>10s} {'bound MiB':>10s} {'x bound':>8s} {'x io':>6s}")
    for t in totals:
        print(f"{t['layer']:13s} {mib(t['bytes_moved']):>10s} {mib(t['lower_bound_bytes']):>10s} "
              f"{t['ratio_to_bound']:8.2f} {t['ratio_to_io_bound']:6.2f}")
    moved = sum(t["bytes_moved"] for t in totals)
    bound = sum(t["lower_bound_bytes"] for t in totals)
    print(f"{'total':13s} {mib(moved):>10s} {mib(bound):>10s} {moved / bound:8.2f}")


# ------------------------------------------------------------------ timing
def untiled(layer: Layer, step: str, arrays, threads: int):
    """The untiled kernel on the full arrays (the reference path; the
    forward with the layer's activation fused, as the tiled one has it)."""
    act = tile.ACTIVATIONS[layer.activation]
    s = layer.shapes()
    out = np.empty(s["y"] if step == "forward" else s["x"] if step == "grad_input" else s["w"], np.float32)
    gb = np.empty(s.get("b", 0), np.float32)
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    o = out.reshape(-1)
    if layer.kind == "linear":
        dims = (layer.n, layer.cin, layer.cout)
        if step == "forward":
            _gemm.linear_fwd(*dims, flat[0], flat[1], flat[2], o, threads)
        elif step == "grad_input":
            _gemm.linear_bwd_input(*dims, flat[0], flat[1], o, threads)
        else:
            _gemm.linear_bwd_weight(*dims, flat[0], flat[1], o, gb, threads)
    elif layer.kind in ("pointwise", "conv2d"):   # a pointwise layer has k = stride = 1, no padding
        shape = (layer.n, layer.h, layer.w, layer.cin, layer.cout, layer.k, layer.k, layer.stride, layer.stride,
                 *layer.pads)
        if step == "forward":
            _gemm.conv_fwd(layer.kind, shape, flat[0], flat[1], flat[2], o, threads, False, act)
        elif step == "grad_input":
            _gemm.conv_bwd_input(layer.kind, shape, flat[0], flat[1], o, threads)
        else:
            _gemm.conv_bwd_weight(layer.kind, shape, flat[0], flat[1], o, gb, threads)
    elif layer.kind == "global_avg_pool":
        shape = (layer.n, layer.h, layer.w, layer.cin)
        if step == "forward":
            _elem.global_avgpool_fwd(flat[0], o, shape, threads, False)
        else:
            _elem.global_avgpool_bwd(flat[0], o, shape, threads, False)
    else:
        geo = ((layer.n, layer.h, layer.w, layer.cin), (layer.k, layer.k), (layer.stride, layer.stride),
               layer.pads, threads)
        if step == "forward":
            _elem.depthwise_fwd(flat[0], flat[1], flat[2], o, *geo, False, act)
        elif step == "grad_input":
            _elem.depthwise_bwd_input(flat[0], flat[1], o, *geo)
        else:
            _elem.depthwise_bwd_weight(flat[0], flat[1], o, gb if layer.bias else None, *geo)
    return out


def l2_cache_bytes() -> int:
    try:
        with open("/sys/devices/system/cpu/cpu0/cache/index2/size") as f:
            text = f.read().strip()
        return int(text[:-1]) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 2 << 20


def timing(layers: list[Layer], l1: int, reps: int) -> list[dict]:
    """Each step untiled, tiled with the memcpy DMA (copies on the calling
    core, no overlap) and tiled with the DMA thread (copies overlap the
    compute, on a core of their own), taking turns; minimum of reps. Inputs
    are 64-byte aligned, as pulptrain's layers return them. The grad-inputs
    run without the ReLU6 mask (the untiled depthwise grad-input alone has
    none to compare with)."""
    rng = np.random.default_rng(0)
    threads = pulptrain.get_num_threads()
    results = []
    for layer in (dataclasses.replace(layer, input_activation=None) for layer in layers):
        s = layer.shapes()
        x, gy = (aligned(rng.uniform(-1, 1, s[k]).astype(np.float32)) for k in ("x", "y"))
        if "w" not in s:     # a pool: no weights
            inputs = {"forward": (x,), "grad_input": (gy,)}
        else:
            w = aligned(rng.uniform(-1, 1, s["w"]).astype(np.float32))
            b = rng.uniform(-1, 1, s["b"]).astype(np.float32) if layer.bias else None
            inputs = {"forward": (x, w, b), "grad_input": (w, gy), "grad_weight": (x, gy)}
        for step in layer.steps:
            tiled = tile.TiledStep(layer, step, l1)
            runs = [("memcpy", lambda: untiled(layer, step, inputs[step], threads)),
                    ("memcpy", lambda: tiled(*inputs[step])), ("thread", lambda: tiled(*inputs[step]))]
            best = [float("inf")] * len(runs)
            for rep in range(reps + 1):                  # the first round warms up
                for i, (dma, fn) in enumerate(runs):
                    tile.set_dma(dma)
                    t0 = time.perf_counter()
                    fn()
                    if rep:
                        best[i] = min(best[i], time.perf_counter() - t0)
            tile.set_dma("memcpy")
            results.append({"layer": layer.name, "step": step, "untiled_s": best[0], "tiled_s": best[1],
                            "tiled_dma_thread_s": best[2], "tiled_over_untiled": best[1] / best[0],
                            "tiled_dma_thread_over_untiled": best[2] / best[0],
                            "tiles": tiled.plan.num_tiles, "tile": tiled.plan.tile})
            print(f"{layer.name:13s} {step:11s} untiled {best[0] * 1e3:7.2f} ms  tiled {best[1] * 1e3:7.2f} ms "
                  f"({best[1] / best[0]:4.2f})  DMA thread {best[2] * 1e3:7.2f} ms ({best[2] / best[0]:4.2f})  "
                  f"{tiled.plan.num_tiles} tiles", flush=True)
    return results


def plot(report: dict, path: str) -> None:
    """Bytes moved per layer against the two bounds and, when timed, tiled /
    untiled time per step (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = "timing" in report
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(13 if timed else 7, 4.8), squeeze=False)
    ax = axes[0][0]
    layers = report["layers"] + report.get("conv2d", {}).get("layers", [])
    ys = np.arange(len(layers))
    for i, (key, label, colour) in enumerate((("bytes_moved", "moved", "#2b6cb0"),
                                               ("io_lower_bound_bytes", "communication bound", "#a0aec0"),
                                               ("lower_bound_bytes", "every operand once", "#4a5568"))):
        ax.barh(ys + (i - 1) * 0.27, [t[key] / 2**20 for t in layers], 0.27, label=label, color=colour)
    for y, t in zip(ys, layers):
        ax.text(t["bytes_moved"] / 2**20, y - 0.27, f" {t['ratio_to_bound']:.2f}x", va="center", fontsize=7)
    ax.set_yticks(ys, [t["layer"] for t in layers])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("MiB per training step (fwd + grad-in + grad-w)")
    ax.set_title(f"L2 <-> L1 bytes, batch {report['batch']}, L1 {report['l1_budget'] // 1024} KiB", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    if timed:
        ax = axes[0][1]
        res = report["timing"]["results"] + report.get("conv2d", {}).get("timing", [])
        ys = np.arange(len(res))
        ax.barh(ys - 0.2, [r["tiled_over_untiled"] for r in res], 0.4, label="memcpy DMA", color="#2b6cb0")
        ax.barh(ys + 0.2, [r["tiled_dma_thread_over_untiled"] for r in res], 0.4, label="DMA thread",
                color="#38a169")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(ys, [f"{r['layer']} {r['step']}" for r in res], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("tiled / untiled time (min of reps; < 1: tiled faster)")
        t = report["timing"]
        ax.set_title(f"native, tiled into {t['l1_budget'] // 1024} KiB, {t['threads']} thread(s); geo-mean "
                     f"{t['geomean_tiled_over_untiled']:.2f} / {t['geomean_tiled_dma_thread_over_untiled']:.2f}",
                     fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle(report.get("cpu", ""), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--l1", type=int, default=tile.VEGA_L1_BYTES, help="L1 budget in bytes for part 1")
    ap.add_argument("--time-l1", type=int, default=None, help="budget for the timing (default: L2 size)")
    ap.add_argument("--time-batch", type=int, default=None, help="batch for the timing (default: --batch)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--out", default=None,
                    help="JSON path (a PNG beside it); default bench/results/tile.json, or "
                         "tile_traffic.json with --no-time, so the recorded timing is kept")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(os.path.dirname(__file__), "results",
                                "tile_traffic.json" if args.no_time else "tile.json")
    if args.threads:
        pulptrain.set_num_threads(args.threads)
    rows, totals = traffic(args.batch, args.l1)
    print_traffic(rows, totals, args.l1)
    report = {"batch": args.batch, "l1_budget": args.l1, "cpu": _cpu_model(), "steps": rows, "layers": totals}
    conv = [tile.training_step(layer, args.l1) for layer in conv_layers(args.batch)]
    report["conv2d"] = {"steps": [p.to_dict() for plans in conv for p in plans],
                        "layers": [layer_totals(plans) for plans in conv]}
    print("\nOutside the stage (conv1: trained only when the whole network is):")
    for plans in conv:
        for p in plans:
            print(f"{p.layer.name:13s} {p.step:11s} {str(p.tile):60s} {p.num_tiles:7d} {mib(p.bytes_moved)} "
                  f"{mib(p.lower_bound_bytes)} {p.ratio_to_bound:7.2f}")
    if not args.no_time:
        time_l1 = args.time_l1 or l2_cache_bytes()
        time_batch = args.time_batch or args.batch
        print(f"\nNative time, untiled vs tiled into {time_l1} B (batch {time_batch}, "
              f"{pulptrain.get_num_threads()} threads, min of {args.reps}):")
        report["timing"] = {"l1_budget": time_l1, "batch": time_batch, "threads": pulptrain.get_num_threads(),
                            "reps": args.reps, "results": timing(adaptive_stage(time_batch), time_l1, args.reps)}
        for key, label in (("tiled_over_untiled", "memcpy DMA"), ("tiled_dma_thread_over_untiled", "DMA thread")):
            ratios = [r[key] for r in report["timing"]["results"]]
            geo = float(np.exp(np.mean(np.log(ratios))))
            report["timing"]["geomean_" + key] = geo
            print(f"geometric mean tiled / untiled, {label}: {geo:.3f}")
        print("Outside the stage:")
        report["conv2d"]["timing"] = timing(conv_layers(time_batch), time_l1, args.reps)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, default=str)
    png = os.path.splitext(args.out)[0] + ".png"
    plot(report, png)
    print(f"\nwrote {args.out} and {png}")


if __name__ == "__main__":
    main()
