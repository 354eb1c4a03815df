"""``pulptrain sweep``: a grid of latent-replay runs sharing their frozen-stage latents.

Runs that share scenario, LR layer and frozen stage reuse one stream and one
set of latents (the frozen stage never trains, so its output is the same for
every LR precision, LR count and seed). Writes ``sweep.csv`` (one row per
run), ``sweep.md`` (mean and spread over seeds, delta against FP32 LRs, LR
memory: the shape of the paper's tables), ``sweep.png`` (accuracy against LR
memory) and ``sweep.json``.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict

import numpy as np

from pulptrain import experiment, runner

__all__ = ["run_sweep", "summarize"]


def run_sweep(configs, out_dir: str | None = None, progress: bool = True, log=print,
              resume: bool = False) -> dict:
    """Run every configuration; with ``resume`` (and ``out_dir``) keep the rows
    an earlier sweep wrote into ``out_dir`` and skip the runs they cover, so a
    long sweep can be stopped, continued and extended."""
    for cfg in configs:                       # every option checked before any long work
        experiment.check_config(cfg)
    rows = _previous_rows(out_dir, configs[0]) if resume and out_dir else []
    done = {_row_key(r) for r in rows}
    todo = [cfg for cfg in configs if _row_key(_describe(cfg)) not in done]
    if rows and progress:
        log(f"resuming: {len(rows)} runs already in {out_dir}, {len(todo)} to go")
    groups = defaultdict(list)
    for cfg in todo:
        groups[experiment.shared_key(cfg)].append(cfg)
    for key, group in groups.items():
        shared = experiment.prepare_shared(group[0], progress, log, cache_latents=True)
        for cfg in group:
            setup = experiment.prepare(cfg, progress=False, shared=shared)
            if progress:
                log(f"run: lr_layer={cfg.lr_layer} {cfg.trainer.mode} bits={cfg.bits} "
                    f"lr_count={cfg.lr_count} seed={cfg.seed}")
            rep = runner.run(cfg, progress=progress, setup=setup, log=log)
            rows.append({**_describe(cfg), "final_accuracy": rep["final_accuracy"],
                         "lr_store_bytes": rep["lr_store_bytes"],
                         "lr_store_payload_bytes": rep["lr_store_payload_bytes"],
                         "train_seconds": rep["train_seconds"],
                         "curve": [p["accuracy"] for p in rep["accuracy_curve"]]})
            if out_dir:                        # keep partial results of a long sweep
                _write(rows, configs, out_dir)
    result = summarize(rows)
    result["rows"] = rows
    result["config"] = {k: v for k, v in configs[0].to_dict().items() if k not in ("bits", "lr_count", "seed")}
    if out_dir:
        _write(rows, configs, out_dir)
    return result


def _describe(cfg) -> dict:
    replay = cfg.trainer.replay
    return {"lr_layer": cfg.lr_layer, "mode": cfg.trainer.mode, "replay": replay,
            "bits": str(cfg.bits) if replay else "-", "lr_count": cfg.lr_count if replay else 0,
            "seed": cfg.seed}


def _row_key(row: dict) -> tuple:
    return (row["lr_layer"], row.get("mode", "replay" if row["replay"] else "no replay"),
            row["bits"] if row["replay"] else "-", row["lr_count"], row["seed"])


# Options that must match for rows of an earlier sweep to be reused.
_SWEPT = ("bits", "lr_count", "seed", "lr_layer")


def _previous_rows(out_dir: str, config) -> list[dict]:
    path = os.path.join(out_dir, "sweep.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        previous = json.load(f)

    def fixed(d):
        d = {k: v for k, v in d.items() if k not in _SWEPT}
        d["trainer"] = {k: v for k, v in d["trainer"].items() if k not in ("replay", "cumulative", "seed")}
        return d

    if fixed(previous["config"]) != fixed(json.loads(json.dumps(config.to_dict()))):
        raise ValueError(f"out_dir {out_dir!r} holds a sweep with other options (scenario, stream or "
                         f"training schedule); use another folder or the same options")
    return previous["rows"]


def summarize(rows: list[dict]) -> dict:
    """Mean / std / n over seeds per (layer, mode, bits, count), and the delta
    against FP32 LRs over the same seeds (mean / std of the paired differences)."""
    cells = defaultdict(list)
    for r in rows:
        key = _row_key(r)
        cells[key[:4]].append(r)
    summary = []
    for (layer, mode, bits, count), rs in cells.items():
        accs = np.array([r["final_accuracy"] for r in rs]) * 100
        summary.append({"lr_layer": layer, "mode": mode, "replay": mode == "replay", "bits": bits,
                        "lr_count": count,
                        "accuracy_mean": float(accs.mean()),
                        "accuracy_std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                        "seeds": len(accs), "seed_list": sorted(r["seed"] for r in rs),
                        "lr_store_bytes": rs[0]["lr_store_bytes"]})
    # delta against FP32 LRs paired by seed (same stream, init and memory
    # draws), so a cell run on fewer seeds is compared with the same seeds
    fp32 = {(r["lr_layer"], r["lr_count"], r["seed"]): 100 * r["final_accuracy"] for r in rows
            if r["replay"] and r["bits"] == "fp32"}
    for s, rs in zip(summary, cells.values()):
        refs = [fp32.get((r["lr_layer"], r["lr_count"], r["seed"])) for r in rs]
        if not s["replay"] or any(v is None for v in refs):
            s["delta_vs_fp32"] = s["delta_std"] = None
            continue
        deltas = np.array([100 * r["final_accuracy"] - v for r, v in zip(rs, refs)])
        s["delta_vs_fp32"] = float(deltas.mean())
        s["delta_std"] = float(deltas.std(ddof=1)) if len(deltas) > 1 else 0.0
    modes = {"cumulative": 0, "replay": 1, "no replay": 2}
    summary.sort(key=lambda s: (s["lr_layer"], modes[s["mode"]], s["lr_count"], _bits_order(s["bits"])))
    return {"summary": summary, "table_md": _markdown(summary)}


def _bits_order(bits: str) -> int:
    named = {"fp32": -32, "fp16": -16, "-": 0}
    return named[bits] if bits in named else -int(bits)


def _markdown(summary: list[dict]) -> str:
    lines = ["| LR layer | replay | LR bits | LRs | accuracy (%) | delta vs FP32 LRs, same seeds (points) | "
             "LR memory (MiB) |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        acc = f"{s['accuracy_mean']:.2f}" + (f" ± {s['accuracy_std']:.2f} (n={s['seeds']})" if s["seeds"] > 1 else "")
        delta = "" if s["delta_vs_fp32"] is None else f"{s['delta_vs_fp32']:+.2f}" + (
            f" ± {s['delta_std']:.2f}" if s["seeds"] > 1 else "")
        replay = {"replay": "yes", "no replay": "no (lower bound)",
                  "cumulative": "no, joint training (upper bound)"}[s["mode"]]
        lines.append(f"| {s['lr_layer']} | {replay} | "
                     f"{s['bits'] if s['replay'] else '-'} | {s['lr_count'] if s['replay'] else 0} | {acc} | "
                     f"{delta} | {s['lr_store_bytes'] / 2**20:.2f} |")
    return "\n".join(lines)


def _write(rows, configs, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    fields = ["lr_layer", "mode", "replay", "bits", "lr_count", "seed", "final_accuracy",
              "lr_store_bytes", "lr_store_payload_bytes", "train_seconds"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    _atomic(os.path.join(out_dir, "sweep.csv"), buf.getvalue())
    result = summarize(rows)
    _atomic(os.path.join(out_dir, "sweep.md"), result["table_md"] + "\n")
    _atomic(os.path.join(out_dir, "sweep.json"), json.dumps(
        {"rows": rows, "summary": result["summary"], "config": configs[0].to_dict()}, indent=2))
    _plot(result["summary"], os.path.join(out_dir, "sweep.png"))


def _atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _seeds_of(cells: list[dict]) -> set:
    return {seed for s in cells for seed in s.get("seed_list", [])}


def _plot(summary: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = defaultdict(list)
    for s in summary:
        if s["replay"]:
            series[(s["lr_layer"], s["lr_count"])].append(s)
    # Cells run on fewer seeds than the most in their series stand apart
    # (hollow, unconnected): a mean over other seeds is not comparable.
    for (layer, count), ss in sorted(series.items()):
        ss = sorted(ss, key=lambda s: s["lr_store_bytes"])
        most = max(s["seeds"] for s in ss)
        full = [s for s in ss if s["seeds"] == most]
        part = [s for s in ss if s["seeds"] < most]
        line = ax.errorbar([s["lr_store_bytes"] / 2**20 for s in full], [s["accuracy_mean"] for s in full],
                           yerr=[s["accuracy_std"] for s in full], marker="o", capsize=3,
                           label=f"{layer}, {count} LRs" + (f" ({most} seeds)" if most > 1 else
                                                            f" (seed {full[0]['seed_list'][0]})"))
        if part:
            ax.plot([s["lr_store_bytes"] / 2**20 for s in part], [s["accuracy_mean"] for s in part], "o",
                    mfc="none", color=line[0].get_color(),
                    label=f"{layer}, {count} LRs, seed {', '.join(sorted({str(n) for n in _seeds_of(part)}))} only")
        for s in ss:
            ax.annotate(s["bits"], (s["lr_store_bytes"] / 2**20, s["accuracy_mean"]), textcoords="offset points",
                        xytext=(3, 4), fontsize=7)
    for s in summary:
        if not s["replay"]:
            ax.axhline(s["accuracy_mean"], color="grey", ls="--" if s["mode"] == "no replay" else ":", lw=1)
            ax.text(0.01, s["accuracy_mean"], s["mode"] + (" (upper bound)" if s["mode"] == "cumulative"
                                                          else " (lower bound)"),
                    transform=ax.get_yaxis_transform(), va="bottom", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("LR memory (MiB, log scale)")
    ax.set_ylabel("final test accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
