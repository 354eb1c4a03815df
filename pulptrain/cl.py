"""Latent-replay continual learning (Pellegrini et al. 2020; Ravaglia et al. 2021).

A network is split at a latent-replay (LR) layer. The frozen stage below it
never trains: it turns each incoming batch of new images into latents once.
The adaptive stage above it trains for a few epochs on mini-batches that mix
the new latents with latents replayed from a (quantized) memory, which is then
updated with some of the new latents.

The mixing rule and memory update follow the reference AR1*/Latent Replay code:

- a batch of ``N`` new latents with ``M`` latents in memory is cut into
  mini-batches of ``new_per_mb = N // ((N + M) // mb)`` new samples, each topped
  up with ``mb - new_per_mb`` replays (21 new + 107 replays for N = 300,
  M = 1500, mb = 128); an epoch has ``N // new_per_mb`` mini-batches and walks
  the shuffled memory in order;
- after batch ``i`` the store's policy inserts new latents (for the AR1 rule,
  ``h = min(M // (i + 1), N)`` random new latents overwrite ``h`` random slots).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import numpy as np

from pulptrain._validate import as_f32, positive_int

__all__ = ["TrainerConfig", "LatentReplayTrainer", "mixing_plan", "MixingPlan"]


@dataclasses.dataclass
class TrainerConfig:
    """Hyper-parameters of a latent-replay run (defaults: the paper's NICv2 setup)."""

    minibatch: int = 128
    epochs_first: int = 4          # epochs on the first batch
    epochs: int = 4                # epochs on every later batch
    lr_first: float = 1e-3         # learning rate on the first batch
    lr: float = 1e-4               # learning rate afterwards
    momentum: float = 0.9
    weight_decay: float = 5e-4
    replay: bool = True            # False: the no-replay lower bound
    cumulative: bool = False       # True: the cumulative (joint training) upper bound
    joint_epochs: int = 8          # epochs of joint training for the cumulative bound
    quantize_new: bool = False     # pass new latents through the store's quantizer too
    eval_chunk: int = 256          # samples per forward pass at evaluation
    seed: int = 0

    def validate(self) -> "TrainerConfig":
        for name in ("minibatch", "epochs_first", "epochs", "joint_epochs", "eval_chunk"):
            positive_int(name, getattr(self, name))
        for name in ("lr_first", "lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        if not (0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (self.weight_decay >= 0.0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        positive_int("seed", self.seed, minimum=0)
        if self.cumulative and self.replay:
            raise ValueError("cumulative (joint training) runs keep no replay memory: set replay=False")
        return self

    @property
    def mode(self) -> str:
        """"replay", "no replay" (the lower bound) or "cumulative" (the upper bound)."""
        return "cumulative" if self.cumulative else ("replay" if self.replay else "no replay")


@dataclasses.dataclass(frozen=True)
class MixingPlan:
    new_per_minibatch: int
    replays_per_minibatch: int
    iterations: int                # mini-batches per epoch


def mixing_plan(n_new: int, n_memory: int, minibatch: int) -> MixingPlan:
    """The reference rule for cutting ``n_new`` new latents and ``n_memory``
    stored ones into mini-batches of ``minibatch`` samples.

    With an empty memory, an epoch is ``n_new // minibatch`` full mini-batches
    of new samples (at least one)."""
    n_new = positive_int("n_new", n_new)
    n_memory = positive_int("n_memory", n_memory, minimum=0)
    minibatch = positive_int("minibatch", minibatch)
    if n_memory == 0:
        per = min(n_new, minibatch)
        return MixingPlan(per, 0, max(1, n_new // minibatch))
    chunks = (n_new + n_memory) // minibatch
    per = n_new // chunks if chunks > 0 else n_new
    per = max(1, min(per, minibatch))
    return MixingPlan(per, min(minibatch - per, n_memory), n_new // per)


class LatentReplayTrainer:
    """Trains an adaptive stage on new latents mixed with latent replays.

    ``frozen``: callable images -> float32 latents (the frozen stage; may be
    None when the caller passes latents directly). ``adaptive``: a
    ``pulptrain.nn`` model ending in logits. ``store``: a
    ``pulptrain.replay.LatentReplayStore`` (or None for no replay).
    """

    def __init__(self, adaptive, num_classes: int, store=None, frozen: Callable | None = None,
                 config: TrainerConfig | None = None, optimizer_factory=None):
        from pulptrain import nn

        self.config = (config or TrainerConfig()).validate()
        self.adaptive = adaptive
        if hasattr(adaptive, "need_grad_x"):   # nothing below the adaptive stage trains
            adaptive.need_grad_x = False
        self.frozen = frozen
        self.num_classes = positive_int("num_classes", num_classes, minimum=2)
        self.store = store if self.config.replay else None
        self.loss = nn.SoftmaxCrossEntropy()
        make_opt = optimizer_factory or (lambda params, lr: nn.SGD(
            params, lr=lr, momentum=self.config.momentum, weight_decay=self.config.weight_decay))
        self.optimizer = make_opt(list(adaptive.parameters()), self.config.lr_first)
        self.rng = np.random.default_rng(self.config.seed)
        self.batches_seen = 0
        self.samples_trained = 0

    # ------------------------------------------------------------------ data
    def encode(self, images: np.ndarray, chunk: int = 128) -> np.ndarray:
        """Run the frozen stage over ``images`` in chunks; float32 latents."""
        if self.frozen is None:
            raise ValueError("this trainer has no frozen stage: pass latents instead of images")
        outs = [self.frozen(images[i:i + chunk]) for i in range(0, len(images), chunk)]
        return np.ascontiguousarray(np.concatenate(outs, axis=0), dtype=np.float32)

    # -------------------------------------------------------------- training
    def train_batch(self, latents: np.ndarray, labels: np.ndarray, progress: Callable | None = None) -> dict:
        """Learn one incoming batch of new latents, then update the memory.

        Returns statistics: mean loss of the last epoch, mini-batches run,
        the mixing plan and the wall time."""
        latents = as_f32("latents", latents)
        labels = self._check_labels(labels, len(latents))
        cfg = self.config
        first = self.batches_seen == 0
        epochs = cfg.epochs_first if first else cfg.epochs
        self.optimizer.lr = cfg.lr_first if first else cfg.lr

        train_latents = self.store.quantize_roundtrip(latents) if (
            cfg.quantize_new and self.store is not None) else latents
        n_mem = len(self.store) if self.store is not None else 0
        plan = mixing_plan(len(latents), n_mem, cfg.minibatch)
        t0 = time.perf_counter()
        losses: list[float] = []
        for _ in range(epochs):
            order = self.rng.permutation(len(latents))
            mem_order = self.rng.permutation(n_mem) if plan.replays_per_minibatch else None
            losses = []
            for it in range(plan.iterations):
                idx = order[it * plan.new_per_minibatch:(it + 1) * plan.new_per_minibatch]
                x, y = train_latents[idx], labels[idx]
                if mem_order is not None:
                    r = plan.replays_per_minibatch
                    start = (it * r) % n_mem
                    slots = np.take(mem_order, np.arange(start, start + r), mode="wrap")
                    rx, ry = self.store.gather(slots)
                    x = np.concatenate([x, rx], axis=0)
                    y = np.concatenate([y, ry.astype(np.int32)], axis=0)
                losses.append(self._step(x, y))
                self.samples_trained += len(y)
                if progress is not None:
                    progress(losses[-1])
        if not all(math.isfinite(v) for v in losses):
            raise FloatingPointError(
                f"training diverged on batch {self.batches_seen}: loss became {losses[-1]!r}")
        if self.store is not None:
            self.store.update(latents, labels, self.batches_seen, rng=self.rng)
        self.batches_seen += 1
        return {"loss": float(np.mean(losses)), "minibatches": plan.iterations * epochs,
                "new_per_minibatch": plan.new_per_minibatch,
                "replays_per_minibatch": plan.replays_per_minibatch,
                "seconds": time.perf_counter() - t0}

    def train_joint(self, latents: np.ndarray, labels: np.ndarray) -> dict:
        """The cumulative upper bound: train on every latent of the stream at
        once (no continual constraint) for ``joint_epochs`` shuffled epochs of
        full mini-batches at ``lr_first``."""
        latents = as_f32("latents", latents)
        labels = self._check_labels(labels, len(latents))
        cfg = self.config
        self.optimizer.lr = cfg.lr_first
        per_epoch = max(1, len(latents) // cfg.minibatch)
        t0 = time.perf_counter()
        losses: list[float] = []
        for _ in range(cfg.joint_epochs):
            order = self.rng.permutation(len(latents))
            losses = []
            for it in range(per_epoch):
                idx = np.sort(order[it * cfg.minibatch:(it + 1) * cfg.minibatch])
                losses.append(self._step(latents[idx], labels[idx]))
                self.samples_trained += len(idx)
        if not all(math.isfinite(v) for v in losses):
            raise FloatingPointError(f"joint training diverged: loss became {losses[-1]!r}")
        return {"loss": float(np.mean(losses)), "minibatches": per_epoch * cfg.joint_epochs,
                "seconds": time.perf_counter() - t0}

    def _check_labels(self, labels, n: int) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got range "
                             f"[{labels.min()}, {labels.max()}]")
        return labels.astype(np.int32)

    def _step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.optimizer.zero_grad()
        logits = self.adaptive.forward(x)
        loss = self.loss.forward(logits, y)
        self.adaptive.backward(self.loss.backward())
        self.optimizer.step()
        return float(loss)

    # ----------------------------------------------------------- checkpoints
    def progress_state(self) -> dict:
        """JSON-serialisable progress: batches seen, samples, RNG state."""
        return {"batches_seen": self.batches_seen, "samples_trained": self.samples_trained,
                "rng": self.rng.bit_generator.state}

    def restore_progress(self, state: dict) -> None:
        self.batches_seen = int(state["batches_seen"])
        self.samples_trained = int(state["samples_trained"])
        self.rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------ evaluation
    def predict(self, latents: np.ndarray) -> np.ndarray:
        """Class predictions of the adaptive stage for float32 latents."""
        from pulptrain import nn

        latents = as_f32("latents", latents)
        chunk = self.config.eval_chunk
        with nn.inference():                   # keep no activations for a backward
            preds = [np.argmax(self.adaptive.forward(latents[i:i + chunk]), axis=1)
                     for i in range(0, len(latents), chunk)]
        return np.concatenate(preds)

    def evaluate(self, latents: np.ndarray, labels: np.ndarray) -> float:
        """Top-1 accuracy (0..1) on held-out latents."""
        labels = np.asarray(labels)
        if labels.shape != (len(latents),):
            raise ValueError(f"labels must have shape ({len(latents)},), got {labels.shape}")
        return float(np.mean(self.predict(latents) == labels))
