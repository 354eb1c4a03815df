"""An independent float64 PyTorch forward of MobileNetV1 from the pulptrain
weight dictionary (BN folded, pulptrain layouts), TF "SAME" padding."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pulptrain.models import LAYERS


def _same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    pads = []
    for size in (x.shape[3], x.shape[2]):          # width first for F.pad
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def reference_forward(weights, images_uint8: np.ndarray, upto: int | None = None, logits: bool = True):
    """Outputs (NHWC float64 numpy) of every layer up to index ``upto`` (all
    by default), and the 1001 logits when ``logits``."""
    x = torch.tensor(images_uint8, dtype=torch.float64).permute(0, 3, 1, 2) * (2.0 / 255.0) - 1.0
    outputs = []
    last = len(LAYERS) - 1 if upto is None else upto
    for spec in LAYERS[:last + 1]:
        if spec.kind == "pool":
            x = x.mean(dim=(2, 3))
            outputs.append(x.numpy())
            break
        w = torch.tensor(weights[f"{spec.tf_name}/w"], dtype=torch.float64)
        b = torch.tensor(weights[f"{spec.tf_name}/b"], dtype=torch.float64)
        if spec.kind == "conv":
            x = F.conv2d(_same(x, 3, spec.stride), w.permute(0, 3, 1, 2), b, spec.stride)
        elif spec.kind == "depthwise":
            x = F.conv2d(_same(x, 3, spec.stride), w.permute(2, 0, 1)[:, None], b, spec.stride,
                         groups=spec.in_channels)
        else:
            x = F.conv2d(x, w[:, :, None, None], b)
        x = x.clamp(0.0, 6.0)
        outputs.append(x.permute(0, 2, 3, 1).numpy())
    if not logits:
        return outputs, None
    if x.ndim == 4:
        x = x.mean(dim=(2, 3))
    w = torch.tensor(weights["Logits/w"], dtype=torch.float64)
    b = torch.tensor(weights["Logits/b"], dtype=torch.float64)
    return outputs, (x @ w.T + b).numpy()
