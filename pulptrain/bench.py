"""``pulptrain bench``: the latent-replay workloads, timed, optionally against PyTorch.

Workloads (MobileNetV1 above the LR layer, mini-batch 128 by default):

- ``train_step``: forward, backward and SGD of the whole adaptive stage;
- ``pointwise_fwd``: the first pointwise layer above the LR layer, forward;
- ``depthwise_fwd_bwd``: the first depthwise layer above the LR layer,
  forward + grad-input + grad-weight;
- ``frozen_int8``: the INT8 frozen stage on 128x128 images (images/s), against
  PyTorch running the FP32 frozen stage.

Times are medians over three rounds of ``repeats`` runs after a warm-up,
pulptrain and PyTorch in the same process and thread count, taking turns
round by round (a shared machine's speed drifts). PyTorch runs channels-last. Both run first
as installed and then with glibc told to keep freed memory (``mallopt``: no
trimming, no mmap for large blocks; PyTorch needs it to be at its best, and
``pulptrain run`` sets it for itself); all four times are reported, the ratio
takes each library at its best.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from pulptrain._malloc import keep_freed_memory

__all__ = ["run_bench", "WORKLOADS"]

WORKLOADS = ("train_step", "pointwise_fwd", "depthwise_fwd_bwd", "frozen_int8")


def _interleaved_medians(fns, repeats: int, rounds: int = 3) -> list[float]:
    """Median time of each function over ``rounds`` rounds; in each round every
    function runs a warm-up call and then ``repeats`` timed calls in a row
    (warm caches, as in a training loop), the order of the functions
    alternating between rounds (a shared machine's speed drifts)."""
    times = [[] for _ in fns]
    for r in range(rounds):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            fns[i]()
            for _ in range(repeats):
                t0 = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


# ----------------------------------------------------------------- pulptrain
def _pulptrain_workloads(lr_layer: str, batch: int, num_classes: int, frozen_batch: int):
    from pulptrain import models, nn, ops, quant
    from pulptrain._alloc import aligned
    from pulptrain.models import mobilenet

    rng = np.random.default_rng(0)
    frozen, adaptive = models.mobilenet_v1(lr_layer, 128, num_classes)
    adaptive.need_grad_x = False
    shape = mobilenet.output_shape(lr_layer, 128)
    # inputs are activations, which pulptrain's layers (the frozen stage, the
    # replay store, the layer below) return 64-byte aligned (pulptrain._alloc)
    x = aligned(rng.uniform(0, 6, (batch,) + tuple(shape)).astype(np.float32))
    y = rng.integers(0, num_classes, batch)
    loss = nn.SoftmaxCrossEntropy()
    opt = nn.SGD(adaptive.parameters(), lr=1e-4)

    def train_step():
        opt.zero_grad()
        loss.forward(adaptive.forward(x), y)
        adaptive.backward(loss.backward())
        opt.step()

    pw = next(m for m in adaptive if isinstance(m, nn.PointwiseConv2d))
    pw_in = aligned(rng.uniform(0, 6, (batch, shape[0], shape[1], pw.weight.data.shape[1])).astype(np.float32))
    dw = next(m for m in adaptive if isinstance(m, nn.DepthwiseConv2d))
    dw_in = aligned(rng.uniform(0, 6, (batch, shape[0], shape[1], dw.weight.data.shape[2])).astype(np.float32))
    dw_out = ops.depthwise_conv2d_forward(dw_in, dw.weight.data, dw.bias.data, dw.stride, dw.padding)
    dw_gy = aligned(rng.standard_normal(dw_out.shape).astype(np.float32))
    images = rng.integers(0, 256, (frozen_batch, 128, 128, 3), dtype=np.uint8)
    int8 = quant.quantize_frozen_stage(frozen, images[:16])
    return {
        "train_step": train_step,
        "pointwise_fwd": lambda: ops.pointwise_conv2d_forward(pw_in, pw.weight.data, pw.bias.data),
        "depthwise_fwd_bwd": lambda: (
            ops.depthwise_conv2d_forward(dw_in, dw.weight.data, dw.bias.data, dw.stride, dw.padding),
            ops.depthwise_conv2d_backward(dw_in, dw.weight.data, dw_gy, dw.stride, dw.padding)),
        "frozen_int8": lambda: int8.forward(images),
    }, adaptive, frozen, (x, y, pw_in, dw_in, dw_gy, images), (pw, dw)


def _flops(pw, dw, x_shape, batch: int, lr_layer: str, num_classes: int) -> dict:
    """FLOPs (2 x MACs) of each workload, from the layer table (the training
    step skips the first layer's grad-input, as the trainer does)."""
    from pulptrain import netspec

    _, above = netspec.split(netspec.mobilenet_v1(128, num_classes), lr_layer)
    step = sum(l.macs_forward + l.macs_grad_input + l.macs_grad_weight for l in above
               if l.kind != "pool") - (above[0].macs_grad_input if above else 0)
    h, w = x_shape[1], x_shape[2]
    pw_f = 2.0 * batch * h * w * pw.weight.data.shape[0] * pw.weight.data.shape[1]
    dw_f = 3 * 2.0 * batch * (-(-h // dw.stride[0])) * (-(-w // dw.stride[1])) * dw.weight.data.size
    return {"pointwise_fwd": pw_f, "depthwise_fwd_bwd": dw_f, "train_step": 2.0 * batch * step,
            "frozen_int8": None}


# ------------------------------------------------------------------- pytorch
def _same_pads(hw, k: int, s: int):
    """TF "same" padding of a k x k, stride-s window over hw, as a PyTorch
    user writes it: (the conv's own padding, an F.pad tuple or None). Only
    asymmetric padding (stride 2 on even sizes) needs the explicit F.pad,
    which costs PyTorch a copy of the input and its backward."""
    ph, pw = (max((-(-int(n) // s) - 1) * s + k - int(n), 0) for n in hw)
    if ph % 2 == 0 and pw % 2 == 0:
        return (ph // 2, pw // 2), None
    return (0, 0), (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)


def _torch_adaptive(adaptive, hw):
    """The adaptive stage as a channels-last PyTorch model with the same
    weights, for inputs of spatial size hw."""
    import torch
    import torch.nn.functional as F

    from pulptrain import nn

    mods, hw = [], list(hw)
    for name, m in adaptive.layers.items():
        if isinstance(m, nn.PointwiseConv2d):
            conv = torch.nn.Conv2d(m.weight.data.shape[1], m.weight.data.shape[0], 1)
            conv.weight.data = torch.from_numpy(m.weight.data.copy())[:, :, None, None]
            conv.bias.data = torch.from_numpy(m.bias.data.copy())
            mods.append(conv)
        elif isinstance(m, nn.DepthwiseConv2d):
            c, stride = m.weight.data.shape[2], m.stride[0]
            conv_pad, f_pad = _same_pads(hw, 3, stride)
            conv = torch.nn.Conv2d(c, c, 3, stride=stride, padding=conv_pad, groups=c)
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(m.weight.data.transpose(2, 0, 1)))[:, None]
            conv.bias.data = torch.from_numpy(m.bias.data.copy())
            mods.append(conv if f_pad is None else torch.nn.Sequential(_Lambda(lambda t, p=f_pad: F.pad(t, p)), conv))
            hw = [-(-n // stride) for n in hw]
        elif isinstance(m, nn.ReLU6):
            mods.append(torch.nn.ReLU6())
        elif isinstance(m, nn.GlobalAvgPool):
            mods.append(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()))
        elif isinstance(m, nn.Linear):
            lin = torch.nn.Linear(m.weight.data.shape[1], m.weight.data.shape[0])
            lin.weight.data = torch.from_numpy(m.weight.data.copy())
            lin.bias.data = torch.from_numpy(m.bias.data.copy())
            mods.append(lin)
        else:
            raise TypeError(f"no PyTorch twin for layer {name!r} ({type(m).__name__})")
        activation = getattr(m, "activation", None)      # fused into pulptrain's conv: a layer in PyTorch
        if activation is not None:
            mods.append(torch.nn.ReLU6() if activation == "relu6" else torch.nn.ReLU())
    return torch.nn.Sequential(*mods).to(memory_format=torch.channels_last)


def _torch_workloads(adaptive, frozen, arrays, layers, threads: int):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    x, y, pw_in, dw_in, dw_gy, images = arrays
    pw, dw = layers

    def cl(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).contiguous(
            memory_format=torch.channels_last)

    model = _torch_adaptive(adaptive, x.shape[1:3])
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    xt, yt = cl(x), torch.from_numpy(y.astype(np.int64))

    def train_step():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(xt), yt).backward()
        opt.step()

    pw_t = torch.from_numpy(pw.weight.data.copy())[:, :, None, None]
    pw_b = torch.from_numpy(pw.bias.data.copy())
    pw_x = cl(pw_in)
    c = dw.weight.data.shape[2]
    dw_w = torch.from_numpy(np.ascontiguousarray(dw.weight.data.transpose(2, 0, 1)))[:, None].requires_grad_()
    dw_b = torch.from_numpy(dw.bias.data.copy()).requires_grad_()
    dw_x = cl(dw_in).requires_grad_()
    dw_g = cl(dw_gy)

    dw_conv_pad, dw_f_pad = _same_pads(dw_in.shape[1:3], 3, dw.stride[0])

    def depthwise():
        xin = dw_x if dw_f_pad is None else F.pad(dw_x, dw_f_pad)
        out = F.conv2d(xin, dw_w, dw_b, stride=dw.stride[0], padding=dw_conv_pad, groups=c)
        torch.autograd.grad(out, (dw_x, dw_w, dw_b), dw_g)

    frozen_torch = _torch_frozen(frozen)
    img = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div(127.5).sub(1.0)
    img = img.contiguous(memory_format=torch.channels_last)

    def frozen_fp32():
        with torch.no_grad():
            frozen_torch(img)

    def pointwise():
        with torch.no_grad():
            F.conv2d(pw_x, pw_t, pw_b)

    return {"train_step": train_step, "pointwise_fwd": pointwise, "depthwise_fwd_bwd": depthwise,
            "frozen_int8": frozen_fp32}


class _Lambda:
    def __new__(cls, fn):
        import torch

        class L(torch.nn.Module):
            def forward(self, t):
                return fn(t)
        return L()


def _torch_frozen(frozen):
    """The FP32 frozen stage (BN folded) as a channels-last PyTorch module."""
    import torch
    import torch.nn.functional as F

    layers = []
    for layer in frozen.layers:
        spec = layer.spec
        w = layer.weight
        if spec.kind == "depthwise":
            wt = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 0, 1)))[:, None]
            groups = wt.shape[0]
        elif spec.kind == "pointwise":
            wt = torch.from_numpy(w.copy())[:, :, None, None]
            groups = 1
        else:
            wt = torch.from_numpy(np.ascontiguousarray(w.transpose(0, 3, 1, 2)))
            groups = 1
        layers.append((wt, torch.from_numpy(layer.bias.copy()), spec.stride, groups, wt.shape[-1]))

    def forward(t):
        for wt, b, s, g, k in layers:
            conv_pad, f_pad = _same_pads(t.shape[2:], k, s)
            if f_pad is not None:
                t = F.pad(t, f_pad)
            t = F.relu6(F.conv2d(t, wt, b, stride=s, padding=conv_pad, groups=g))
        return t

    return forward


# --------------------------------------------------------------------- main
def run_bench(lr_layer: str = "conv5_4/dw", batch: int = 128, repeats: int = 5, vs_torch: bool = False,
              workloads=WORKLOADS, frozen_batch: int = 64, num_classes: int = 50, log=print) -> dict:
    import pulptrain

    for name in workloads:
        if name not in WORKLOADS:
            raise ValueError(f"workload must be one of {WORKLOADS}, got {name!r}")
    threads = pulptrain.get_num_threads()
    fns, adaptive, frozen, arrays, layers = _pulptrain_workloads(lr_layer, batch, num_classes, frozen_batch)
    flops = _flops(layers[0], layers[1], arrays[0].shape, batch, lr_layer, num_classes)
    torch_fns = _torch_workloads(adaptive, frozen, arrays, layers, threads) if vs_torch else None
    rows = []
    # Each workload runs pulptrain and PyTorch in alternating rounds (a shared
    # machine's speed drifts: one block each would compare two machines),
    # first with glibc's defaults, then, once mallopt has told glibc to keep
    # freed memory (it cannot be undone), again. The ratio takes each at its best.
    for name in workloads:
        row = {"workload": name, "threads": threads, "batch": frozen_batch if name == "frozen_int8" else batch}
        fn_list = [fns[name]] + ([torch_fns[name]] if torch_fns is not None else [])
        times = _interleaved_medians(fn_list, repeats)
        row["pulptrain_s_default_malloc"] = times[0]
        if torch_fns is not None:
            row["torch_s_default_malloc"] = times[1]
        rows.append(row)
    tuned = keep_freed_memory()
    for row in rows:
        name = row["workload"]
        fn_list = [fns[name]] + ([torch_fns[name]] if torch_fns is not None else [])
        times = _interleaved_medians(fn_list, repeats) if tuned else [None] * len(fn_list)
        row["pulptrain_s_kept_malloc"] = times[0]
        row["pulptrain_s"] = min(t for t in (row["pulptrain_s_default_malloc"], times[0]) if t)
        if flops.get(name):
            row["pulptrain_gflops"] = flops[name] / row["pulptrain_s"] / 1e9
        if name == "frozen_int8":
            row["pulptrain_images_per_s"] = frozen_batch / row["pulptrain_s"]
        log(f"  {name}: pulptrain {1e3 * row['pulptrain_s']:.1f} ms")
        if torch_fns is None:
            continue
        row["torch_s_kept_malloc"] = times[1]
        best = min(t for t in (row["torch_s_default_malloc"], times[1]) if t)
        row["torch_best_s"] = best
        row["ratio_pulptrain_over_torch"] = row["pulptrain_s"] / best
        if name == "frozen_int8":
            row["torch_fp32_images_per_s"] = row["batch"] / best
        log(f"  {name}: torch {1e3 * best:.1f} ms, ratio {row['ratio_pulptrain_over_torch']:.2f}")
    return {"lr_layer": lr_layer, "batch": batch, "repeats": repeats, "threads": threads,
            "python": sys.version.split()[0], "cpu": _cpu_model(), "rows": rows}


def _cpu_model() -> str:
    """The CPU's model name (Linux), so results from different machines are
    not compared unawares; "" where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def plot(result: dict, path) -> None:
    """Bars of each workload's time, pulptrain beside PyTorch when measured,
    labelled with the ratio (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    names = [r["workload"] for r in rows]
    ours = [1e3 * r["pulptrain_s"] for r in rows]
    theirs = [1e3 * r["torch_best_s"] if r.get("torch_best_s") else 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.7 * len(rows)))
    ys = range(len(rows))
    h = 0.38 if any(theirs) else 0.6
    ax.barh([y - h / 2 for y in ys] if any(theirs) else list(ys), ours, h, label="pulptrain", color="#2b6cb0")
    if any(theirs):
        ax.barh([y + h / 2 for y in ys], theirs, h, label="PyTorch (best malloc setting)", color="#c05621")
    for y, r in zip(ys, rows):
        ratio = r.get("ratio_pulptrain_over_torch")
        top = max(ours[y], theirs[y])
        ax.text(top, y, f"  {ours[y]:.1f} ms" + (f", ratio {ratio:.2f}" if ratio else ""), va="center",
                fontsize=8)
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    frozen = any(r["workload"] == "frozen_int8" for r in rows)
    ax.set_xlabel("ms (median" + ("; frozen_int8: pulptrain INT8 vs PyTorch FP32)" if frozen else ")"))
    ax.set_xlim(0, max(ours + theirs) * 1.45)
    threads = result["threads"]
    ax.set_title(f"LR {result['lr_layer']}, batch {result['batch']}, {threads} thread{'s' if threads > 1 else ''}\n"
                 f"{result.get('cpu', '')}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    head = f"{'workload':<20} {'pulptrain ms':>12} {'GFLOP/s':>8} {'torch ms':>9} {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for r in result["rows"]:
        g = r.get("pulptrain_gflops")
        t = r.get("torch_best_s")
        ratio = r.get("ratio_pulptrain_over_torch")
        lines.append(f"{r['workload']:<20} {1e3 * r['pulptrain_s']:>12.1f} {'' if g is None else f'{g:.1f}':>8} "
                     f"{'' if t is None else f'{1e3 * t:.1f}':>9} {'' if ratio is None else f'{ratio:.2f}':>6}")
    lines.append("ratio = pulptrain time / best PyTorch time (lower is better; frozen_int8 compares "
                 "pulptrain INT8 with PyTorch FP32)")
    return "\n".join(lines)
