"""What recycling freed output arrays (pulptrain._alloc) saves, with glibc's
malloc defaults: a depthwise 3x3 forward + backward on MobileNetV1's
8x8x512 layer at batch 128 whose outputs are alive together (as a training
step holds them), timed with the cache on and off in turns, median and best
of --reps. With the cache off every call's 16 MiB outputs come from fresh
mmap'd pages, which the kernel faults in and zeroes. Run from the
repository root after an in-place build:

    python bench/bench_alloc.py [--threads 2] [--reps 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pulptrain  # noqa: E402
from pulptrain import _alloc, ops  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    pulptrain.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = _alloc.aligned(rng.uniform(0, 6, (128, 8, 8, 512)).astype(np.float32))
    w = rng.standard_normal((3, 3, 512)).astype(np.float32)
    b = np.zeros(512, np.float32)
    gy = _alloc.aligned(rng.standard_normal((128, 8, 8, 512)).astype(np.float32))

    def step():
        y = ops.depthwise_conv2d_forward(x, w, b, 1, 1)
        grads = ops.depthwise_conv2d_backward(x, w, gy, 1, 1)
        return y, grads   # both alive until here

    limit = _alloc.cache_limit() or 1 << 30
    times = {"cache on": [], "cache off": []}
    for _ in range(args.reps):
        for name, nbytes in (("cache on", limit), ("cache off", 0)):
            _alloc.set_cache_limit(nbytes)
            step()   # the cache's state for this setting
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    _alloc.set_cache_limit(limit)
    print(f"depthwise 8x8x512 fwd + bwd, batch 128, {args.threads} threads, glibc defaults, {args.reps} reps")
    for name, ts in times.items():
        print(f"  {name:9}: median {1e3 * np.median(ts):6.2f} ms, best {1e3 * min(ts):6.2f} ms")
    print(f"  off / on (medians): {np.median(times['cache off']) / np.median(times['cache on']):.2f}")


if __name__ == "__main__":
    main()
