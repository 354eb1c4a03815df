"""Throughput of the latent-replay store: batched insert (quantize + pack) and
gather (unpack + dequantize) in GB/s of FP32-equivalent data (latents x 4
bytes), against a plain numpy copy of the same FP32 bytes measured in the same
run. Paper setting: LRs of 8x8x512 (conv5_4/dw), mini-batches of 128.

    python bench/bench_replay.py [--threads N] [--repeats R] [--out bench/results/replay.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pulptrain  # noqa: E402
from pulptrain.replay import LatentReplayStore  # noqa: E402

SHAPE = (8, 8, 512)


def best_time(fn, repeats: int, clock) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def run(threads: int, repeats: int, capacity: int, batch: int) -> dict:
    """One thread: CPU time of the calling thread (the kernels then run on it),
    robust when other jobs share the cores. More threads: wall-clock time."""
    pulptrain.set_num_threads(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    latents = rng.uniform(0.0, 6.0, (batch,) + SHAPE).astype(np.float32)
    fp32_bytes = latents.nbytes
    slots = rng.permutation(capacity)[:batch].astype(np.int64)
    dst = np.empty_like(latents)
    memcpy = best_time(lambda: np.copyto(dst, latents), repeats, clock)
    rows = []
    for bits in (8, 7, 4, "fp16", "fp32"):
        kwargs = {"value_range": (0.0, 6.0)} if isinstance(bits, int) else {}
        store = LatentReplayStore(capacity, SHAPE, bits, **kwargs)
        store.insert(latents, np.zeros(batch, np.int64), slots)
        out = np.empty_like(latents)
        t_insert = best_time(lambda: store.insert(latents, np.zeros(batch, np.int64), slots), repeats, clock)
        t_gather = best_time(lambda: store.gather_into(slots, out), repeats, clock)
        rows.append({
            "bits": store.bits,
            "payload_bytes_per_latent": store.payload_nbytes // capacity,
            "insert_gbps": fp32_bytes / t_insert / 1e9,
            "gather_gbps": fp32_bytes / t_gather / 1e9,
            "insert_vs_memcpy": memcpy / t_insert,
            "gather_vs_memcpy": memcpy / t_gather,
        })
    return {"threads": threads, "clock": "thread CPU time" if threads == 1 else "wall clock",
            "memcpy_gbps": fp32_bytes / memcpy / 1e9, "modes": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="thread counts (default: 1 and all cores)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--capacity", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results", "replay.json"))
    args = parser.parse_args(argv)
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    result = {
        "benchmark": "latent-replay store insert / gather, FP32-equivalent GB/s",
        "shape": list(SHAPE), "batch": args.batch, "capacity": args.capacity, "repeats": args.repeats,
        "timing": "minimum over repeats (thread CPU time for 1 thread, wall clock otherwise); "
                  "memcpy = numpy.copyto of the same FP32 batch in the same run",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
        "command": "python bench/bench_replay.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": [run(t, args.repeats, args.capacity, args.batch) for t in threads],
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    for r in result["runs"]:
        print(f"threads={r['threads']} ({r['clock']})  numpy memcpy {r['memcpy_gbps']:.2f} GB/s")
        for m in r["modes"]:
            print(f"  bits={m['bits']:>2}  insert {m['insert_gbps']:6.2f} GB/s ({m['insert_vs_memcpy']:.2f}x memcpy)"
                  f"  gather {m['gather_gbps']:6.2f} GB/s ({m['gather_vs_memcpy']:.2f}x memcpy)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
