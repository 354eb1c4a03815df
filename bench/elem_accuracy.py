"""Largest error of the non-GEMM kernels (depthwise, pooling, channel affine,
softmax cross-entropy, SGD) against PyTorch float64 on the test shapes of
tests/test_ops_elem.py, per op and output.

    python bench/elem_accuracy.py [--json FILE]

max_abs = max |got - expected|; max_rel = max_abs / max |expected| (the
scale-aware error of tests/helpers.max_rel_err)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from helpers import max_rel_err, nchw_to_nhwc, nhwc_to_nchw  # noqa: E402
from test_ops_elem import DEPTHWISE_CASES, POOL_CASES, torch_depthwise  # noqa: E402
from pulptrain import ops  # noqa: E402
from pulptrain._validate import conv_padding  # noqa: E402


def measure(rng):
    worst = {}

    def note(key, got, expected):
        got = np.asarray(got, np.float64)
        expected = np.asarray(expected, np.float64).reshape(got.shape)
        entry = worst.setdefault(key, {"max_abs": 0.0, "max_rel": 0.0})
        entry["max_abs"] = max(entry["max_abs"], float(np.abs(got - expected).max()))
        entry["max_rel"] = max(entry["max_rel"], max_rel_err(got, expected))

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    for n, h, w_, c, kh, kw, stride, padding, with_bias in DEPTHWISE_CASES:
        x, w, b = randn(n, h, w_, c), randn(kh, kw, c), randn(c) if with_bias else None
        y = ops.depthwise_conv2d_forward(x, w, b, stride, padding)
        gy = randn(*y.shape)
        s = stride if isinstance(stride, tuple) else (stride, stride)
        expected = torch_depthwise(x, w, b, s, conv_padding(padding, (h, w_), (kh, kw), s), gy)
        got = (y, *ops.depthwise_conv2d_backward(x, w, gy, stride, padding))
        for name, a, e in zip(("y", "grad_x", "grad_w", "grad_b"), got, expected):
            note(f"depthwise.{name}", a, e)

    for n, h, w, c, kernel, stride in POOL_CASES:
        x = randn(n, h, w, c)
        xt = torch.tensor(nhwc_to_nchw(x), dtype=torch.float64, requires_grad=True)
        yt = F.avg_pool2d(xt, kernel, stride)
        y = ops.avg_pool2d_forward(x, kernel, stride)
        gy = randn(*y.shape)
        yt.backward(torch.tensor(nhwc_to_nchw(gy), dtype=torch.float64))
        note("avg_pool2d.y", y, nchw_to_nhwc(yt.detach().numpy()))
        note("avg_pool2d.grad_x", ops.avg_pool2d_backward(x, gy, kernel, stride), nchw_to_nhwc(xt.grad.numpy()))
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        yt = xt.mean(dim=(1, 2))
        gy = randn(n, c)
        yt.backward(torch.tensor(gy, dtype=torch.float64))
        note("global_avg_pool.y", ops.global_avg_pool_forward(x), yt.detach().numpy())
        note("global_avg_pool.grad_x", ops.global_avg_pool_backward(x, gy), xt.grad.numpy())

    for shape in [(2, 8, 8, 64), (3, 5, 7, 19), (128, 4, 4, 256), (16, 10)]:
        x, gy, scale, shift = randn(*shape), randn(*shape), randn(shape[-1]), randn(shape[-1])
        ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, scale, shift)]
        (ts[0] * ts[1] + ts[2]).backward(torch.tensor(gy, dtype=torch.float64))
        note("channel_affine.y", ops.channel_affine_forward(x, scale, shift),
             (x.astype(np.float64) * scale + shift))
        for name, a, t in zip(("grad_x", "grad_scale", "grad_shift"),
                              ops.channel_affine_backward(x, scale, gy), ts):
            note(f"channel_affine.{name}", a, t.grad.numpy())

    for n, k, scale in [(1, 1, 1.0), (7, 3, 1.0), (128, 10, 3.0), (128, 50, 10.0), (5, 1000, 1.0), (4, 6, 1e4)]:
        logits, labels = randn(n, k, scale=scale), rng.integers(0, k, size=n)
        lt = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
        loss = F.cross_entropy(lt, torch.tensor(labels))
        loss.backward()
        note("softmax_cross_entropy.loss", [ops.softmax_cross_entropy_forward(logits, labels)], [loss.item()])
        note("softmax_cross_entropy.grad_logits", ops.softmax_cross_entropy_backward(logits, labels),
             lt.grad.numpy())

    w0 = randn(1000, 64)
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=5e-4)
    param, velocity = w0.copy(), np.zeros_like(w0)
    for _ in range(10):
        g = randn(*w0.shape)
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ops.sgd_step(param, g, velocity, 0.05, 0.9, 5e-4)
    note("sgd_step.param (10 steps)", param, p.detach().numpy())
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    worst = measure(np.random.default_rng(0))
    print(f"{'op.output':<36} {'max_abs':>10} {'max_rel':>10}")
    for key, e in worst.items():
        print(f"{key:<36} {e['max_abs']:>10.2e} {e['max_rel']:>10.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(worst, f, indent=2)


if __name__ == "__main__":
    main()
