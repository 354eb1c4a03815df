#!/usr/bin/env python3
"""Print a riscv-bench JSON file (bench/riscv_bench.c) as a table."""
import json
import sys


def main(path: str) -> None:
    with open(path) as f:
        doc = json.load(f)
    print(f"{path}: {doc['profile']}, {doc['harts']} harts, counter {doc['counter']}")
    print(f"{'kernel':10} {'step':12} {'shape':26} {'cores':>5} {'instructions':>13} {'per instr/core':>15} "
          f"{'busiest/mean':>12}")
    for r in doc["results"]:
        if "error" in r:
            print(f"{r['kernel']:10} {r['step']:12} {'':26} {r['cores']:5} error: {r['error']}")
            continue
        rate = r.get("mac_per_instr_per_core", r.get("elem_per_instr_per_core"))
        unit = "MAC" if "mac_per_instr_per_core" in r else "elem"
        print(f"{r['kernel']:10} {r['step']:12} {r['shape']:26} {r['cores']:5} {r['instructions']:13d} "
              f"{rate:10.4f} {unit:4} {r['busiest_over_mean']:12.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
