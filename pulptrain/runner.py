"""The main job: a latent-replay continual-learning run end to end.

``run(config)`` validates everything up front, builds the scenario, the
backbone split at the LR layer (INT8 or FP32 frozen stage), the replay store
and the trainer, streams the training batches with a progress bar, evaluates
on the held-out set, and writes ``report.json`` and ``accuracy.png``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time

import numpy as np

from pulptrain.cl import TrainerConfig

__all__ = ["RunConfig", "run", "validate_bits", "write_report"]

# The default stream: the first 40 batches of the stand-in's NICv2-79 protocol
# (100 new frames per batch: 8 new + 120 replays per mini-batch once the memory
# is full), about 10 minutes on 2 cores. --full streams all 79.
DEFAULT_SCENARIO = "core50-standin/nicv2_79"
DEFAULT_BATCHES = 40


def validate_bits(bits) -> int | str:
    """LR precision: an int 1..8, or "fp32" / "fp16"."""
    if isinstance(bits, str):
        low = bits.lower()
        if low in ("fp32", "fp16", "32", "16"):
            return "fp16" if low in ("fp16", "16") else "fp32"
        try:
            bits = int(low)
        except ValueError:
            raise ValueError(f"bits must be 1..8, 'fp16' or 'fp32', got {bits!r}") from None
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, 'fp16' or 'fp32', got {bits!r}")
    return int(bits)


@dataclasses.dataclass
class RunConfig:
    scenario: str = DEFAULT_SCENARIO   # see pulptrain.scenarios.names()
    level: str = "object"              # "object" (50 classes) or "category" (10)
    root: str | None = None            # dataset folder, for scenarios read from disk
    scenario_options: dict = dataclasses.field(default_factory=dict)  # e.g. frames_per_session
    batches: int | None = DEFAULT_BATCHES  # training batches to stream; None = the whole protocol
    lr_layer: str = "conv5_4/dw"
    lr_count: int = 1500
    bits: int | str = 8
    frozen: str = "int8"               # "int8" or "fp32"
    eval_every: int = 1
    seed: int = 0
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _peak_rss_bytes() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib) * (1 if sys.platform == "darwin" else 1024)


def write_report(report: dict, out_dir: str) -> None:
    """report.json and accuracy.png in out_dir (written atomically)."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "report.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    curve = report.get("accuracy_curve") or []
    if curve:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [p["batch"] + 1 for p in curve]
        ax.plot(xs, [100 * p["accuracy"] for p in curve], marker=".", label=report.get("label", "run"))
        ax.set_xlabel("training batches seen")
        ax.set_ylabel("test accuracy (%)")
        cfg = report.get("config", {})
        ax.set_title(f"{cfg.get('scenario')} ({cfg.get('level')}), LR layer {cfg.get('lr_layer')}, "
                     f"{cfg.get('lr_count')} LRs @ {cfg.get('bits')} bit", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "accuracy.png"), dpi=120)
        plt.close(fig)


def run(config: RunConfig, out_dir: str | None = None, progress: bool = True, log=print,
        checkpoint_dir: str | None = None, resume: bool = False, setup=None) -> dict:
    """Run one latent-replay experiment; returns the report dictionary.

    With ``checkpoint_dir`` a crash-safe checkpoint is written after every
    batch; ``resume=True`` continues from the newest one (the configuration
    must be the same) and ends bitwise where an uninterrupted run ends."""
    from pulptrain import checkpoint, experiment

    t_start = time.perf_counter()
    if config.trainer.cumulative and checkpoint_dir:
        raise ValueError("checkpoint_dir: the cumulative bound trains once at the end of the stream, "
                         "there is nothing to checkpoint")
    setup = setup or experiment.prepare(config, progress=progress, log=log)
    trainer = setup.trainer
    test_x, test_y = setup.test_latents, setup.test_labels
    curve: list = []
    train_seconds = 0.0
    start = 0
    if resume and checkpoint.exists(checkpoint_dir):
        start, curve, train_seconds = _restore(setup, checkpoint.load_latest(checkpoint_dir), config)
        log(f"resumed from {checkpoint_dir} after {start} batches")
    elif resume:
        log(f"no checkpoint in {checkpoint_dir} yet: starting from the first batch")
    n_batches = len(setup.batches)
    bar = _progress(n_batches, progress, "training")
    bar.update(start)
    acc = curve[-1]["accuracy"] if curve else float("nan")
    if config.trainer.cumulative:
        acc, curve, train_seconds = _run_cumulative(setup, bar)
        start = n_batches
    for i in range(start, n_batches):
        latents, labels = setup.encode(setup.batches[i])
        stats = trainer.train_batch(latents, labels)
        train_seconds += stats["seconds"]
        memory = measured_memory(setup)      # before evaluation reuses the layer caches
        if (i + 1) % config.eval_every == 0 or i == n_batches - 1:
            acc = trainer.evaluate(test_x, test_y)
            curve.append({"batch": i, "accuracy": acc, "loss": stats["loss"],
                          "seen_classes": int(len(setup.seen_classes(i)))})
        if checkpoint_dir:
            checkpoint.save(checkpoint_dir, model_state=setup.adaptive.state_dict(),
                            optimizer_state=trainer.optimizer.state_dict(), store=setup.store,
                            progress={"batches_done": i + 1, "config": config.to_dict(),
                                      "trainer": trainer.progress_state(), "curve": curve,
                                      "train_seconds": train_seconds})
        bar.set_postfix(acc=f"{100 * acc:.1f}%", loss=f"{stats['loss']:.3f}")
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t_start
    report = {
        "label": {"replay": f"{config.bits}-bit LRs", "no replay": "no replay (lower bound)",
                  "cumulative": "cumulative (upper bound)"}[config.trainer.mode],
        "config": config.to_dict(),
        "num_classes": setup.num_classes,
        "train_batches": n_batches,
        "test_samples": int(len(test_y)),
        "accuracy_curve": curve,
        "final_accuracy": acc,
        "lr_store_bytes": int(setup.store.nbytes) if setup.store is not None else 0,
        "lr_store_payload_bytes": int(setup.store.payload_nbytes) if setup.store is not None else 0,
        "peak_memory_bytes": _peak_rss_bytes(),
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "frozen_seconds": setup.frozen_seconds(),
        "threads": _threads(),
        "memory": memory if n_batches > start else measured_memory(setup),
    }
    if out_dir:
        write_report(report, out_dir)
    return report


def _run_cumulative(setup, bar) -> tuple[float, list, float]:
    """The cumulative upper bound: encode the whole stream, train on it jointly
    once, evaluate. Returns (accuracy, curve with one point, train seconds)."""
    latents, labels = [], []
    for batch in setup.batches:
        x, y = setup.encode(batch)
        latents.append(x)
        labels.append(y)
        bar.update(1)
    stats = setup.trainer.train_joint(np.concatenate(latents), np.concatenate(labels))
    acc = setup.trainer.evaluate(setup.test_latents, setup.test_labels)
    last = len(setup.batches) - 1
    bar.set_postfix(acc=f"{100 * acc:.1f}%", loss=f"{stats['loss']:.3f}")
    return acc, [{"batch": last, "accuracy": acc, "loss": stats["loss"],
                  "seen_classes": int(len(setup.seen_classes(last)))}], stats["seconds"]


def measured_memory(setup) -> dict:
    """Bytes of the buffers the run actually holds, keyed like
    ``pulptrain.plan.Plan.memory``: the trainable weights, their gradient
    accumulators and momentum, the activations kept for backward after the
    last training step (each array counted once), and the replay store."""
    from pulptrain import nn

    params = setup.adaptive.parameters()
    kept = {}
    for layer in setup.adaptive:
        for attr in nn.CACHE_ATTRS:
            value = getattr(layer, attr, None)
            if isinstance(value, np.ndarray):
                kept[id(value)] = value.nbytes
    logits = getattr(setup.trainer.loss, "_logits", None)
    if isinstance(logits, np.ndarray):
        kept[id(logits)] = logits.nbytes
    memory = {
        "adaptive_weights": sum(p.data.nbytes for p in params),
        "adaptive_grads": sum(p.grad.nbytes for p in params if p.grad is not None),
        "momentum": sum(v.nbytes for v in getattr(setup.trainer.optimizer, "velocity", [])),
        "activations": sum(kept.values()),
    }
    if setup.store is not None:
        memory["lr_store"] = int(setup.store.nbytes)
    return memory


def _threads() -> int:
    from pulptrain import get_num_threads

    return get_num_threads()


def _restore(setup, state, config) -> tuple[int, list, float]:
    """Load a checkpoint into the run's components; returns (batches done, curve, train seconds)."""
    from pulptrain.errors import FormatError
    from pulptrain.replay import LatentReplayStore

    saved = state.get("config")
    if saved != json.loads(json.dumps(config.to_dict())):
        raise ValueError("the checkpoint was written by a run with a different configuration; "
                         "resume with the same options or use a new --checkpoint folder")
    done = int(state["batches_done"])
    if not 0 < done <= len(setup.batches):
        raise FormatError(f"checkpoint says {done} batches done, the stream has {len(setup.batches)}")
    setup.adaptive.load_state_dict(state["model_state"])
    setup.trainer.optimizer.load_state_dict(state["optimizer_state"])
    if setup.store is not None:
        loaded = LatentReplayStore.load(state["store_path"])
        setup.store = loaded
        setup.trainer.store = loaded
    setup.trainer.restore_progress(state["trainer"])
    return done, list(state["curve"]), float(state["train_seconds"])


def summary_table(report: dict) -> str:
    """A short human-readable summary of a run report."""
    cfg = report["config"]
    mib = 1024 * 1024
    rows = [
        ("scenario", f"{cfg['scenario']} ({_level(cfg)}{report['num_classes']} classes)"),
        ("stream", f"{report['train_batches']} training batches, {report['test_samples']} test samples"),
        ("LR layer / frozen stage", f"{cfg['lr_layer']} / {cfg['frozen']}"),
        ("latent replays", ("none (joint training on the whole stream)" if cfg["trainer"].get("cumulative")
                            else "none") if not cfg["trainer"]["replay"]
         else f"{cfg['lr_count']} at {cfg['bits']} bit: {report['lr_store_bytes'] / mib:.2f} MiB"),
        ("final accuracy", f"{100 * report['final_accuracy']:.2f} %"),
        ("peak memory (process)", f"{report['peak_memory_bytes'] / mib:.0f} MiB"),
        ("wall time", f"{report['wall_seconds']:.1f} s (training {report['train_seconds']:.1f} s, "
                      f"frozen stage {report['frozen_seconds']:.1f} s, {report['threads']} threads)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _level(cfg: dict) -> str:
    from pulptrain import scenarios

    core50 = scenarios.canonical(cfg["scenario"]) in ("core50", "core50-standin")
    return f"{cfg['level']} level, " if core50 else ""


class _NoBar:
    def set_postfix(self, **kw):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True)
