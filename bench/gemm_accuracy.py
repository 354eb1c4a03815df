"""Largest error of the GEMM-family kernels against PyTorch float64 on the
test shapes, per op and output, for every ISA variant this CPU runs.

    python bench/gemm_accuracy.py [--json FILE]

max_abs = max |got - expected|; max_rel = max_abs / max |expected| (the
scale-aware error of tests/helpers.max_rel_err)."""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from gemm_cases import (CONV_CASES, LINEAR_CASES, POINTWISE_CASES, conv_data,  # noqa: E402
                        conv_torch, linear_torch)
from helpers import max_rel_err  # noqa: E402
from pulptrain import _gemm, ops  # noqa: E402

NAMES = ("y", "grad_x", "grad_w", "grad_b")


def measure(rng):
    worst = {}

    def note(op, got, expected):
        for name, a, e in zip(NAMES, got, expected):
            a = np.asarray(a, np.float64).reshape(e.shape)
            entry = worst.setdefault(f"{op}.{name}", {"max_abs": 0.0, "max_rel": 0.0})
            entry["max_abs"] = max(entry["max_abs"], float(np.abs(a - e).max()))
            entry["max_rel"] = max(entry["max_rel"], max_rel_err(a, e))

    for case in CONV_CASES:
        x, w, b, gy = conv_data(rng, case)
        s, p = case[7], case[8]
        note("conv2d", (ops.conv2d_forward(x, w, b, s, p),) + ops.conv2d_backward(x, w, gy, s, p),
             conv_torch(x, w, b, gy, s, p))
    for n, h, wd, cin, cout in POINTWISE_CASES:
        x, w4, b, gy = conv_data(rng, (n, h, wd, cin, cout, 1, 1, 1, 0))
        w = np.ascontiguousarray(w4.reshape(cout, cin))
        note("pointwise_conv2d", (ops.pointwise_conv2d_forward(x, w, b),) + ops.pointwise_conv2d_backward(x, w, gy),
             conv_torch(x, w4, b, gy, 1, 0))
    for n, fin, fout in LINEAR_CASES:
        x = rng.standard_normal((n, fin)).astype(np.float32)
        w = rng.standard_normal((fout, fin)).astype(np.float32)
        b = rng.standard_normal(fout).astype(np.float32)
        gy = rng.standard_normal((n, fout)).astype(np.float32)
        note("linear", (ops.linear_forward(x, w, b),) + ops.linear_backward(x, w, gy), linear_torch(x, w, b, gy))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--seed", type=int, default=2021)
    args = ap.parse_args()
    results = {}
    saved = _gemm.get_isa()
    for isa in _gemm.supported_isas():
        _gemm.set_isa(isa)
        results[isa] = measure(np.random.default_rng(args.seed))
        print(f"[{isa}]")
        for key, v in results[isa].items():
            print(f"  {key:26s} max_abs {v['max_abs']:.3e}  max_rel {v['max_rel']:.3e}")
    _gemm.set_isa(saved)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "inputs": "standard normal", "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
