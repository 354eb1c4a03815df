"""The common shape of every benchmark stream.

A :class:`Scenario` is an ordered sequence of training batches plus one test
set. Images are uint8 RGB in NHWC layout ``[n, H, W, 3]``; labels are int64
``[n]`` in ``[0, num_classes)``. Batches load their images only when asked
(``batch.images``), so a stream of hundreds of batches costs no memory until
it is walked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def cache_dir() -> Path:
    """Where generated data is kept: ``$PULPTRAIN_CACHE`` or ``~/.cache/pulptrain``."""
    root = os.environ.get("PULPTRAIN_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pulptrain"


class Batch:
    """One training batch of a stream.

    ``labels`` are held in memory (int64 ``[n]``); ``images`` (uint8
    ``[n, H, W, 3]``) are produced by ``load_images`` on every access, so keep
    the returned array rather than reading the property twice.
    ``units`` names what the batch is made of, e.g. ``[(session, object)]``."""

    def __init__(self, index: int, labels: np.ndarray, load_images: Callable[[], np.ndarray],
                 units: Sequence = ()):
        self.index = int(index)
        self.labels = np.ascontiguousarray(labels, dtype=np.int64)
        self._load_images = load_images
        self.units = list(units)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def images(self) -> np.ndarray:
        images = self._load_images()
        if images.shape[0] != len(self):
            raise RuntimeError(f"batch {self.index}: loader returned {images.shape[0]} images "
                               f"for {len(self)} labels")
        return images

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` of this batch."""
        return self.images, self.labels

    def __repr__(self) -> str:
        classes = np.unique(self.labels).tolist()
        return f"Batch(index={self.index}, n={len(self)}, classes={classes})"


@dataclass
class Scenario:
    """A continual-learning benchmark stream.

    ``train_batches`` is a sequence of :class:`Batch`; ``test_set()`` returns
    ``(images, labels)``. ``metadata`` records the protocol, batch sizes,
    held-out sessions and anything else needed to reproduce the stream."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    train_batches: Sequence[Batch]
    load_test: Callable[[], tuple[np.ndarray, np.ndarray]]
    class_names: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = self.load_test()
        return images, np.ascontiguousarray(labels, dtype=np.int64)

    @property
    def num_batches(self) -> int:
        return len(self.train_batches)

    @property
    def batch_sizes(self) -> list[int]:
        return [len(b) for b in self.train_batches]

    def class_order(self) -> list[int]:
        """Classes in the order they first appear in the training stream."""
        seen: dict[int, None] = {}
        for batch in self.train_batches:
            for label in batch.labels.tolist():
                seen.setdefault(label, None)
        return list(seen)

    def first_appearance(self) -> dict[int, int]:
        """Class -> index of the first training batch that contains it."""
        first: dict[int, int] = {}
        for batch in self.train_batches:
            for label in np.unique(batch.labels).tolist():
                first.setdefault(label, batch.index)
        return first

    def summary(self) -> str:
        sizes = self.batch_sizes
        return (f"{self.name}: {self.num_batches} training batches "
                f"(first {sizes[0] if sizes else 0} samples, then {min(sizes[1:], default=0)}"
                f"..{max(sizes[1:], default=0)}), {self.num_classes} classes, images "
                f"{'x'.join(map(str, self.image_shape))} uint8")


def protocol_name(protocol, known, benchmark: str) -> str:
    """``protocol`` normalised (lower case, ``-`` -> ``_``) and checked against ``known``."""
    if not isinstance(protocol, str):
        raise TypeError(f"protocol must be a str, got {type(protocol).__name__}")
    name = protocol.lower().replace("-", "_")
    if name not in known:
        raise ValueError(f"unknown {benchmark} protocol {protocol!r}; known: {', '.join(known)}")
    return name


def objects_per_label(label_level: str) -> int:
    """CORe50 label granularity: 1 object per class (``"object"``) or 5 (``"category"``)."""
    if label_level not in ("object", "category"):
        raise ValueError(f"label_level must be 'object' or 'category', got {label_level!r}")
    return 1 if label_level == "object" else 5


def cumulative(scenario: Scenario, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Joint-training data: the first ``k`` training batches concatenated.

    Used for the cumulative upper bound (train once on everything seen so far)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= scenario.num_batches:
        raise ValueError(f"k must lie in [1, {scenario.num_batches}], got {k}")
    images, labels = zip(*(b.load() for b in scenario.train_batches[:k]))
    return np.concatenate(images), np.concatenate(labels)


def nic_order(units_by_class: dict[int, list], initial_classes: Sequence[int], rng: np.random.Generator,
              intro_span: float = 0.75) -> tuple[list, list]:
    """Order the units of a new-instances-and-classes (NICv2-style) stream.

    ``units_by_class`` maps each class to its units (e.g. one per session).
    The first batch takes one unit of every class in ``initial_classes``.
    The other classes are introduced one at a time at seeded positions spread
    over the first ``intro_span`` of the remaining stream, and every other slot
    revisits a class already seen with one of its unused units, so new classes
    keep appearing while old ones come back in new conditions.

    Returns ``(first_batch_units, later_units)``."""
    pending = {c: list(units) for c, units in units_by_class.items()}
    first = [pending[c].pop(int(rng.integers(len(pending[c])))) for c in initial_classes]
    initial = set(initial_classes)
    unseen = [c for c in pending if c not in initial]
    unseen = [unseen[i] for i in rng.permutation(len(unseen))]
    total = sum(len(v) for v in pending.values())
    span = max(len(unseen), int(round(intro_span * total)))
    intro_slots = set(rng.choice(span, size=len(unseen), replace=False).tolist()) if unseen else set()
    seen = list(initial_classes)
    later = []
    for slot in range(total):
        revisit = [c for c in seen if pending[c]]
        if unseen and (slot in intro_slots or not revisit):
            cls = unseen.pop(0)
            seen.append(cls)
        else:
            cls = revisit[int(rng.integers(len(revisit)))]
        later.append(pending[cls].pop(int(rng.integers(len(pending[cls])))))
    return first, later


def group(units: list, per_batch: int) -> list[list]:
    """Split ``units`` into consecutive groups of ``per_batch`` (the last may be shorter)."""
    return [units[i:i + per_batch] for i in range(0, len(units), per_batch)]
