"""An independent float64 numpy forward of MobileNetV1 from the pulptrain
weight dictionary (BN folded, pulptrain layouts), TF "SAME" padding."""
from __future__ import annotations

import numpy as np

from pulptrain.models import LAYERS


def _same_pad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    pads = []
    for size in x.shape[1:3]:
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _taps(x: np.ndarray, k: int, s: int):
    """(ky, kx, strided view) of every kernel tap over the padded input."""
    x = _same_pad(x, k, s)
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    for ky in range(k):
        for kx in range(k):
            yield ky, kx, x[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s]


def reference_forward(weights, images_uint8: np.ndarray):
    """NHWC float64 outputs of every layer (pool6 last) and the 1001 logits."""
    x = images_uint8.astype(np.float64) * (2.0 / 255.0) - 1.0
    outputs = []
    for spec in LAYERS:
        if spec.kind == "pool":
            x = x.mean(axis=(1, 2))
            outputs.append(x)
            break
        w = weights[f"{spec.tf_name}/w"].astype(np.float64)
        b = weights[f"{spec.tf_name}/b"].astype(np.float64)
        if spec.kind == "pointwise":
            y = x @ w.T
        elif spec.kind == "conv":
            y = sum(tap @ w[:, ky, kx, :].T for ky, kx, tap in _taps(x, 3, spec.stride))
        else:
            y = sum(tap * w[ky, kx] for ky, kx, tap in _taps(x, 3, spec.stride))
        x = np.clip(y + b, 0.0, 6.0)
        outputs.append(x)
    logits = x @ weights["Logits/w"].astype(np.float64).T + weights["Logits/b"].astype(np.float64)
    return outputs, logits
