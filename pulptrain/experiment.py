"""Assembles a latent-replay experiment from a RunConfig.

Everything that can be checked cheaply (scenario name, LR layer, bits, LR
count, dataset files) is checked before any long work starts.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from pulptrain.cl import LatentReplayTrainer

__all__ = ["Setup", "prepare", "check_config", "LEVELS", "FROZEN_KINDS"]

LEVELS = ("object", "category")
FROZEN_KINDS = ("int8", "fp32")
CALIBRATION_IMAGES = 64     # real images the INT8 frozen stage is calibrated on
INPUT_SIZE = 128


def check_config(config) -> None:
    """Raise ValueError / TypeError naming the option for anything invalid."""
    from pulptrain import scenarios
    from pulptrain.models import mobilenet
    from pulptrain.runner import validate_bits
    from pulptrain._validate import positive_int

    try:
        scenarios.canonical(config.scenario)
    except ValueError:
        raise ValueError(f"scenario must be one of {', '.join(scenarios.names())}, "
                         f"got {config.scenario!r}") from None
    if config.level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {config.level!r}")
    if config.frozen not in FROZEN_KINDS:
        raise ValueError(f"frozen must be one of {FROZEN_KINDS}, got {config.frozen!r}")
    mobilenet.layer_index(config.lr_layer)           # raises for an unknown LR layer
    if config.lr_layer == mobilenet.LAYERS[-1].name:
        raise ValueError(f"lr_layer {config.lr_layer!r} leaves nothing to train above it")
    config.bits = validate_bits(config.bits)
    positive_int("lr_count", config.lr_count)
    positive_int("eval_every", config.eval_every)
    positive_int("seed", config.seed, minimum=0)
    if config.batches is not None:
        positive_int("batches", config.batches)
    config.trainer.validate()


@dataclasses.dataclass
class Shared:
    """What runs that differ only in LR bits, LR count, seed or training
    options can share: the stream, the frozen stage and every latent it made."""

    scenario: object
    batches: list
    num_classes: int
    frozen: object
    latent_shape: tuple
    test_latents: np.ndarray
    test_labels: np.ndarray
    key: tuple = ()
    cache_latents: bool = False
    frozen_seconds: float = 0.0
    _latents: dict = dataclasses.field(default_factory=dict)

    def encode(self, index: int, encode_fn) -> np.ndarray:
        if index in self._latents:
            return self._latents[index]
        t0 = time.perf_counter()
        latents = encode_fn(self.batches[index].images)
        self.frozen_seconds += time.perf_counter() - t0
        if self.cache_latents:
            self._latents[index] = latents
        return latents


def shared_key(config) -> tuple:
    return (config.scenario, config.level, config.root, tuple(sorted(config.scenario_options.items())),
            config.batches, config.lr_layer, config.frozen)


@dataclasses.dataclass
class Setup:
    config: object
    shared: Shared
    adaptive: object
    store: object
    trainer: LatentReplayTrainer
    _seen: list = dataclasses.field(default_factory=list)

    @property
    def batches(self):
        return self.shared.batches

    @property
    def num_classes(self) -> int:
        return self.shared.num_classes

    @property
    def test_latents(self) -> np.ndarray:
        return self.shared.test_latents

    @property
    def test_labels(self) -> np.ndarray:
        return self.shared.test_labels

    def encode(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """Latents and labels of a training batch (frozen stage timed)."""
        return self.shared.encode(batch.index, self.trainer.encode), np.asarray(batch.labels)

    def frozen_seconds(self) -> float:
        return self.shared.frozen_seconds

    def seen_classes(self, i: int) -> np.ndarray:
        """Classes present in training batches 0..i."""
        while len(self._seen) <= i:
            prev = self._seen[-1] if self._seen else np.zeros(0, np.int64)
            self._seen.append(np.union1d(prev, np.asarray(self.batches[len(self._seen)].labels)))
        return self._seen[i]


def build_scenario(config, progress: bool = True):
    from pulptrain import scenarios

    base = scenarios.canonical(config.scenario)
    options = {**config.scenario_options}
    if base in ("core50-standin", "core50"):
        options.update(label_level=config.level, progress=progress)
    elif base == "fashion-mnist":
        options.setdefault("image_size", INPUT_SIZE)   # the backbone's input size
    scenario = scenarios.get(config.scenario, root=config.root, **options)
    batches = list(scenario.train_batches)
    if config.batches is not None:
        batches = batches[:config.batches]
    return scenario, batches


def build_frozen(config, frozen_float, calibration_images):
    if config.frozen == "fp32":
        return frozen_float
    from pulptrain import quant

    return quant.quantize_frozen_stage(frozen_float, calibration_images)


def calibration_set(batches, count: int, seed: int) -> np.ndarray:
    """``count`` images spread over the first training batch (what a device has
    seen when it quantizes its frozen stage)."""
    images = batches[0].images
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))
    return images[pick]


def build_store(config, shape, num_classes: int):
    if not config.trainer.replay:
        return None
    from pulptrain.replay import LatentReplayStore

    # Every LR layer of MobileNetV1 follows a ReLU6, so latents lie in [0, 6].
    value_range = (0.0, 6.0) if config.bits not in ("fp32", "fp16") else None
    return LatentReplayStore(config.lr_count, shape, bits=config.bits, value_range=value_range,
                             policy="ar1", seed=config.seed, num_classes=num_classes)


def prepare_shared(config, progress: bool = True, log=print, cache_latents: bool = False) -> Shared:
    """The stream, the frozen stage (INT8-quantized if asked) and the test latents."""
    from pulptrain import models

    check_config(config)
    scenario, batches = build_scenario(config, progress)
    if not batches:
        raise ValueError(f"scenario {config.scenario!r} has no training batches")
    frozen_float, _ = models.mobilenet_v1(config.lr_layer, INPUT_SIZE, None)
    frozen = build_frozen(config, frozen_float, calibration_set(batches, CALIBRATION_IMAGES, 0))
    shape = tuple(models.mobilenet.output_shape(config.lr_layer, INPUT_SIZE))
    test_images, test_labels = scenario.test_set()
    if progress:
        log(f"encoding {len(test_images)} test images through the {config.frozen} frozen stage")
    t0 = time.perf_counter()
    test_latents = _encode_all(frozen, test_images)
    shared = Shared(scenario, batches, scenario.num_classes, frozen, shape, test_latents,
                    np.asarray(test_labels), shared_key(config), cache_latents)
    shared.frozen_seconds = time.perf_counter() - t0
    return shared


def _encode_all(frozen, images, chunk: int = 128) -> np.ndarray:
    outs = [frozen(images[i:i + chunk]) for i in range(0, len(images), chunk)]
    return np.ascontiguousarray(np.concatenate(outs, axis=0), dtype=np.float32)


def prepare(config, progress: bool = True, log=print, shared: Shared | None = None) -> Setup:
    """Build every component of a run (validated first, then the long work)."""
    from pulptrain import models

    check_config(config)
    if shared is None:
        shared = prepare_shared(config, progress, log)
    elif shared.key != shared_key(config):
        raise ValueError("shared setup was built for a different scenario / LR layer / frozen stage")
    _, adaptive = models.mobilenet_v1(config.lr_layer, INPUT_SIZE, shared.num_classes)
    _seed_classifier(adaptive, config.seed)
    store = build_store(config, shared.latent_shape, shared.num_classes)
    trainer = LatentReplayTrainer(adaptive, shared.num_classes, store=store, frozen=shared.frozen,
                                  config=config.trainer)
    return Setup(config, shared, adaptive, store, trainer)


def _seed_classifier(adaptive, seed: int) -> None:
    """Re-draw the new classifier from the run's seed, so seeds differ."""
    if hasattr(adaptive, "reset_classifier"):
        adaptive.reset_classifier(seed)
