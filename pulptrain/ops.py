"""Functional kernels on numpy float32 NHWC arrays.

Each primitive has ``<op>_forward`` and ``<op>_backward``. Inputs must be
float32 (TypeError otherwise); non-contiguous arrays are copied. Outputs are
new C-contiguous float32 arrays. The GIL is released inside every kernel.

Layouts: activations NHWC; conv weights [Cout, KH, KW, Cin]; depthwise
[KH, KW, C]; pointwise [Cout, Cin]; linear [Out, In].
"""
from __future__ import annotations

import numpy as np

from pulptrain import _core
from pulptrain._threads import get_num_threads
from pulptrain._validate import as_f32, same_shape

__all__ = ["relu_forward", "relu_backward", "relu6_forward", "relu6_backward"]


# --------------------------------------------------------------- activations
def _act_forward(x, six: bool, ref: bool) -> np.ndarray:
    x = as_f32("x", x)
    y = np.empty_like(x)
    _core.relu_fwd(x.reshape(-1), y.reshape(-1), get_num_threads(), six, ref)
    return y


def _act_backward(x_or_y, grad_y, six: bool, ref: bool) -> np.ndarray:
    v = as_f32("x_or_y", x_or_y)
    grad_y = as_f32("grad_y", grad_y)
    same_shape("grad_y", grad_y, "x_or_y", v.shape)
    grad_x = np.empty_like(v)
    _core.relu_bwd(v.reshape(-1), grad_y.reshape(-1), grad_x.reshape(-1), get_num_threads(), six, ref)
    return grad_x


def relu_forward(x: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """y = max(x, 0), any shape."""
    return _act_forward(x, False, ref)


def relu_backward(x_or_y: np.ndarray, grad_y: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """grad_x = grad_y where x_or_y > 0 (x_or_y: the forward input or output)."""
    return _act_backward(x_or_y, grad_y, False, ref)


def relu6_forward(x: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """y = min(max(x, 0), 6), any shape."""
    return _act_forward(x, True, ref)


def relu6_backward(x_or_y: np.ndarray, grad_y: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """grad_x = grad_y where 0 < x_or_y < 6."""
    return _act_backward(x_or_y, grad_y, True, ref)
