"""Readable tables, JSON and the memory chart of a ``pulptrain.plan.Plan``."""
from __future__ import annotations

import json
from pathlib import Path

from pulptrain.plan import LEVELS, MIB, Plan

LEVEL_COLOURS = {"L1": "#4c72b0", "L2": "#55a868", "MRAM": "#c44e52", "external": "#8172b2"}


def _mib(nbytes: float) -> str:
    return f"{nbytes / MIB:9.3f}"


def _hours(h: float | None) -> str:
    return "n/a" if h is None else f"{h:.0f} h"


def format_text(p: Plan) -> str:
    c, s = p.config, p.schedule
    lines = [
        f"pulptrain plan: {c.backbone} {c.input_size}x{c.input_size}, LR layer {c.lr_layer}, "
        f"{c.lr_count} LRs x {c.bits} bit, {c.num_classes} classes",
        f"  learning event: {c.new_samples} new frames, {c.epochs} epochs x {s['minibatches_per_epoch']} "
        f"mini-batches of {s['new_per_minibatch']} new + {s['replays_per_minibatch']} replays; "
        f"update '{c.update_rule}', momentum {c.momentum}, micro-batch {c.micro_batch}",
        "",
        f"  {'memory item':<20}{'MiB':>9}  {'where':<9} what",
    ]
    for item in p.memory.values():
        lines.append(f"  {item.key:<20}{_mib(item.bytes)}  {item.level:<9} {item.note}")
    lines.append(f"  {'total':<20}{_mib(p.memory_total_bytes)}  (paper: < {p.comparison['paper']['memory_mb']} MB; "
                 f"1 MiB = 2^20 B)")
    lines.append("  by level: " + ", ".join(
        f"{lv} {p.memory_by_level[lv] / MIB:.3f}/{p.capacity_by_level[lv] / MIB:.3f} MiB" for lv in LEVELS)
        + ("  (fits)" if p.fits else "  (DOES NOT FIT)"))
    lines += ["", f"  {'target':<9}{'MHz':>6}{'compute s':>11}{'DMA s':>9}{'event s':>10}"
              f"{'event J':>9}{'mW':>7}{'lifetime':>10}"]
    for t in p.targets.values():
        lines.append(f"  {t.target:<9}{t.mhz:>6.0f}{t.compute_s:>11.1f}{t.dma_s:>9.1f}{t.seconds:>10.1f}"
                     f"{t.joules:>9.2f}{t.active_mw:>7.1f}{_hours(t.lifetime_h):>10}")
    lines += ["", "  where the time of a learning event goes (compute s, then DMA):"]
    for t in p.targets.values():
        top = sorted(t.compute_breakdown_s.items(), key=lambda kv: -kv[1])[:5]
        lines.append(f"  {t.target:<9}" + ", ".join(f"{name} {sec:.1f}" for name, sec in top)
                     + (f"; DMA {t.dma_s:.1f}" if t.dma_s else ""))
    cmp_, paper = p.comparison, p.comparison["paper"]
    vega = p.targets["vega"]
    lines += ["",
              f"  VEGA vs STM32L4: {cmp_['speedup_vs_stm32l4']:.1f}x faster (paper {paper['speedup_vs_stm32l4']}x), "
              f"{cmp_['energy_ratio_vs_stm32l4']:.1f}x less energy (paper {paper['energy_ratio_vs_stm32l4']}x)",
              f"  kernels alone (no DMA time): {cmp_['speedup_compute_only']:.1f}x faster, "
              f"{cmp_['energy_ratio_compute_only']:.1f}x less energy",
              f"  lifetime, one {c.lifetime_event} ({vega.lifetime_event_s:.1f} s, {vega.lifetime_event_j:.2f} J) "
              f"per period: {_hours(vega.lifetime_h)} (paper {paper['lifetime_h']} h); {vega.lifetime_note}"]
    return "\n".join(lines)


def format_sweep(plans: list[Plan]) -> str:
    lines = [f"  {'LR layer':<12}{'LR elems':>9}{'memory MiB':>12}{'VEGA s':>9}{'STM32 s':>10}"
             f"{'speed-up':>10}{'energy':>8}{'lifetime':>10}"]
    for p in plans:
        lines.append(f"  {p.config.lr_layer:<12}{p.comparison['lr_store']['elements']:>9}"
                     f"{p.memory_total_bytes / MIB:>12.1f}{p.targets['vega'].seconds:>9.1f}"
                     f"{p.targets['stm32l4'].seconds:>10.0f}{p.comparison['speedup_vs_stm32l4']:>9.1f}x"
                     f"{p.comparison['energy_ratio_vs_stm32l4']:>7.1f}x{_hours(p.targets['vega'].lifetime_h):>10}")
    speedups = [p.comparison["speedup_vs_stm32l4"] for p in plans]
    energies = [p.comparison["energy_ratio_vs_stm32l4"] for p in plans]
    lines.append(f"  average over {len(plans)} LR layers: {sum(speedups) / len(plans):.1f}x faster, "
                 f"{sum(energies) / len(plans):.1f}x less energy")
    return "\n".join(lines)


def sweep_dict(plans: list[Plan]) -> dict:
    return {"plans": [p.to_dict() for p in plans],
            "average_speedup_vs_stm32l4": sum(p.comparison["speedup_vs_stm32l4"] for p in plans) / len(plans),
            "average_energy_ratio_vs_stm32l4":
                sum(p.comparison["energy_ratio_vs_stm32l4"] for p in plans) / len(plans)}


def plot_memory(p: Plan, path: Path) -> None:
    """Horizontal bar per memory item, coloured by the level it lives in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(p.memory.values(), key=lambda i: i.bytes)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh([i.key for i in items], [i.bytes / MIB for i in items],
            color=[LEVEL_COLOURS[i.level] for i in items])
    for y, item in enumerate(items):
        ax.text(item.bytes / MIB, y, f" {item.bytes / MIB:.2f} MiB ({item.level})", va="center", fontsize=8)
    ax.set_xlabel("MiB")
    c = p.config
    ax.set_title(f"{c.lr_layer}, {c.lr_count} LRs x {c.bits} bit: total {p.memory_total_bytes / MIB:.1f} MiB")
    ax.set_xlim(0, max(i.bytes for i in items) / MIB * 1.35)
    handles = [plt.Rectangle((0, 0), 1, 1, color=LEVEL_COLOURS[lv]) for lv in LEVELS]
    ax.legend(handles, LEVELS, loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result, out_dir: str | Path) -> list[Path]:
    """plan.json (and memory.png for a single plan) under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_dict() if isinstance(result, Plan) else sweep_dict(result)
    written = [out / "plan.json"]
    written[0].write_text(json.dumps(data, indent=2) + "\n")
    if isinstance(result, Plan):
        written.append(out / "memory.png")
        plot_memory(result, written[-1])
    return written
