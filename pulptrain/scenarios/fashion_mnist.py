"""Fashion-MNIST (Xiao et al. 2017) streams from Debian's ``dataset-fashion-mnist``.

70,000 real 28x28 grey images of 10 clothing classes, read from the original
IDX ``.gz`` files (default folder ``/usr/share/datasets/fashion-mnist``, or
``$PULPTRAIN_FASHION_MNIST``, or ``root=``). Images are upsampled bilinearly to
``image_size`` and repeated to 3 channels (uint8 NHWC) when a batch is read.

Protocols:
- ``class_incremental``: 5 tasks of 2 classes (``classes_per_task``), each
  task one batch with all training images of its classes;
- ``nic``: new instances and classes, NICv2-style: every class is cut into
  seeded chunks of ``chunk_size`` images; the first batch holds one chunk of
  each of ``initial_classes`` classes, every later batch one chunk, with new
  classes introduced over the stream and old ones returning with new images.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pulptrain.scenarios.base import Batch, Scenario, nic_order, protocol_name
from pulptrain.scenarios.idx import read_idx

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
CLASS_NAMES = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot"]
NUM_CLASSES = 10
PROTOCOLS = ("class_incremental", "nic")


def default_root() -> Path:
    return Path(os.environ.get("PULPTRAIN_FASHION_MNIST", DEFAULT_ROOT))


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"Fashion-MNIST file {root / stem}.gz not found (install the Debian package "
                            f"dataset-fashion-mnist, or pass root= / set PULPTRAIN_FASHION_MNIST to the "
                            f"folder holding {', '.join(f + '.gz' for f in FILES.values())})")


def load_arrays(root=None) -> dict[str, np.ndarray]:
    """The four arrays (uint8 images [n, 28, 28], uint8 labels [n]), checked for consistency."""
    from pulptrain.errors import FormatError

    root = Path(root).expanduser() if root is not None else default_root()
    arrays = {key: read_idx(_find(root, stem)) for key, stem in FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise FormatError(f"{split} images must be uint8 [n, h, w], got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise FormatError(f"{split}: {labels.shape} labels for {images.shape[0]} images")
        if labels.size and labels.max() >= NUM_CLASSES:
            raise FormatError(f"{split} labels must lie in [0, {NUM_CLASSES}), found {labels.max()}")
    return arrays


def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """[out, in] weights of half-pixel-centre bilinear resampling (edge clamped)."""
    src = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = (src - lo).astype(np.float32)
    weights = np.zeros((out_size, in_size), np.float32)
    np.add.at(weights, (np.arange(out_size), lo), 1 - frac)
    np.add.at(weights, (np.arange(out_size), hi), frac)
    return weights


def to_rgb(images: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """uint8 [n, h, w] grey -> uint8 [n, size, size, 3], bilinear, rounded."""
    n, h, w = images.shape
    out = np.empty((n, size, size, 3), np.uint8)
    rows, cols = _bilinear_matrix(size, h), _bilinear_matrix(size, w)
    for start in range(0, n, chunk):
        part = images[start:start + chunk].astype(np.float32)
        resized = np.einsum("yh,nhw,xw->nyx", rows, part, cols, optimize=True)
        out[start:start + chunk] = np.clip(resized + 0.5, 0, 255).astype(np.uint8)[..., None]
    return out


def build(root=None, protocol: str = "class_incremental", image_size: int = 32, seed: int = 0,
          run: int = 0, classes_per_task: int = 2, class_order=None, chunk_size: int = 600,
          initial_classes: int = 2, test_step: int = 1, train_step: int = 1):
    """A Fashion-MNIST stream as a :class:`Scenario` (see the module doc).

    ``class_order``: the class sequence (default: 0..9 for ``class_incremental``,
    a permutation seeded by ``(seed, run)`` for ``nic``). ``train_step`` /
    ``test_step``: keep every k-th training / test image (shorter streams)."""
    from pulptrain._validate import positive_int

    protocol = protocol_name(protocol, PROTOCOLS + ("ci", "nc"), "Fashion-MNIST")
    protocol = "class_incremental" if protocol in ("ci", "nc") else protocol
    size = positive_int("image_size", image_size, minimum=8)
    seed, run = positive_int("seed", seed, minimum=0), positive_int("run", run, minimum=0)
    classes_per_task = positive_int("classes_per_task", classes_per_task)
    chunk_size = positive_int("chunk_size", chunk_size)
    initial_classes = positive_int("initial_classes", initial_classes)
    test_step = positive_int("test_step", test_step)
    train_step = positive_int("train_step", train_step)
    rng = np.random.default_rng([seed, run, 0xF4])
    if class_order is None:
        order = list(range(NUM_CLASSES)) if protocol == "class_incremental" else rng.permutation(NUM_CLASSES).tolist()
    else:
        order = [int(c) for c in class_order]
        if sorted(order) != list(range(NUM_CLASSES)):
            raise ValueError(f"class_order must be a permutation of 0..{NUM_CLASSES - 1}, got {order}")
    if NUM_CLASSES % classes_per_task:
        raise ValueError(f"classes_per_task must divide {NUM_CLASSES}, got {classes_per_task}")
    if initial_classes > NUM_CLASSES:
        raise ValueError(f"initial_classes must be <= {NUM_CLASSES}, got {initial_classes}")

    arrays = load_arrays(root)
    train_images = arrays["train_images"][::train_step]
    train_labels = arrays["train_labels"][::train_step].astype(np.int64)
    if protocol == "class_incremental":
        units = []
        for t in range(0, NUM_CLASSES, classes_per_task):
            indices = np.flatnonzero(np.isin(train_labels, order[t:t + classes_per_task]))
            units.append([rng.permutation(indices)])
    else:
        chunks = {}
        for c in order:
            indices = rng.permutation(np.flatnonzero(train_labels == c))
            chunks[c] = [indices[i:i + chunk_size] for i in range(0, len(indices), chunk_size)]
        first, later = nic_order(chunks, order[:initial_classes], rng)
        units = [first] + [[chunk] for chunk in later]

    def loader(indices):
        return lambda: to_rgb(train_images[indices], size)

    batches = []
    for index, parts in enumerate(units):
        indices = np.concatenate(parts)
        batches.append(Batch(index, train_labels[indices], loader(indices), units=parts))
    test_images = arrays["test_images"][::test_step]
    test_labels = arrays["test_labels"][::test_step].astype(np.int64)
    return Scenario(
        name=f"fashion-mnist/{protocol}",
        num_classes=NUM_CLASSES,
        image_shape=(size, size, 3),
        train_batches=batches,
        load_test=lambda: (to_rgb(test_images, size), test_labels),
        class_names=list(CLASS_NAMES),
        metadata=dict(
            benchmark="fashion-mnist", protocol=protocol, seed=seed, run=run, image_size=size,
            class_order=order, num_batches=len(batches), batch_sizes=[len(b) for b in batches],
            classes_per_task=classes_per_task if protocol == "class_incremental" else None,
            chunk_size=chunk_size if protocol == "nic" else None,
            initial_classes=initial_classes if protocol == "nic" else None,
            test_step=test_step, train_step=train_step, root=str(Path(root) if root is not None else default_root()),
            held_out_sessions=[]))
