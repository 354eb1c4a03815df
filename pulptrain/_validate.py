"""Argument checks shared by the Python API: every error names the argument.

Policy (documented in the README):
- arrays must be float32 (other dtypes raise TypeError: no silent precision
  change); non-contiguous float32 arrays are copied to C order;
- shapes are checked against the documented NHWC layout before any C call.
"""
from __future__ import annotations

import numbers

import numpy as np


def as_f32(name: str, a, ndim: int | tuple[int, ...] | None = None, allow_empty: bool = False) -> np.ndarray:
    """Return ``a`` as a C-contiguous float32 array, or raise naming ``name``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {a.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if a.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {a.shape}")
    if not allow_empty and a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def as_labels(name: str, a, n: int, num_classes: int) -> np.ndarray:
    """Integer class labels of shape (n,) in [0, num_classes), as int32."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of integers, got {type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {a.shape}")
    if n and (a.min() < 0 or a.max() >= num_classes):
        bad = int(a[(a < 0) | (a >= num_classes)][0])
        raise ValueError(f"{name} must lie in [0, {num_classes}), found {bad}")
    return np.ascontiguousarray(a, dtype=np.int32)


# Strides, paddings and kernel sizes reach the C runtime as int.
MAX_DIM = (1 << 31) - 1


def positive_int(name: str, v, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return int(v)


def pair(name: str, v) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 (strides, kernel sizes)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {v!r}")
        return positive_int(f"{name}[0]", v[0], maximum=MAX_DIM), positive_int(f"{name}[1]", v[1], maximum=MAX_DIM)
    v = positive_int(name, v, maximum=MAX_DIM)
    return v, v


def same_shape(name: str, a: np.ndarray, other_name: str, shape) -> None:
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape of {other_name} {tuple(shape)}, got {a.shape}")


def finite_float(name: str, v, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def conv_padding(padding, in_hw: tuple[int, int], kernel: tuple[int, int],
                 stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """Resolve ``padding`` to (top, bottom, left, right).

    ``padding`` is an int (all sides), a 4-tuple (top, bottom, left, right), a
    pair (vertical, horizontal), or "same"/"valid" with TensorFlow's rules:
    out = ceil(in / stride), the total padding max((out - 1) * stride + k - in, 0)
    split with the extra pixel at the bottom / right."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode != "same":
            raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        pads = []
        for size, k, s in zip(in_hw, kernel, stride):
            out = -(-size // s)
            total = max((out - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    if isinstance(padding, (tuple, list)):
        if len(padding) == 2:
            padding = (padding[0], padding[0], padding[1], padding[1])
        if len(padding) != 4:
            raise ValueError(f"padding must have 2 or 4 entries, got {padding!r}")
        return tuple(positive_int(f"padding[{i}]", p, minimum=0, maximum=MAX_DIM) for i, p in enumerate(padding))
    p = positive_int("padding", padding, minimum=0, maximum=MAX_DIM)
    return (p, p, p, p)


def conv_output_hw(in_hw, kernel, stride, pads, what: str = "kernel") -> tuple[int, int]:
    """Output (H, W) of a window op; ValueError when the window does not fit."""
    out = []
    for size, k, s, lo, hi, axis in zip(in_hw, kernel, stride, pads[0::2], pads[1::2], ("height", "width")):
        span = size + lo + hi - k
        if span < 0:
            raise ValueError(f"{what} {axis} {k} is larger than the padded input {axis} {size + lo + hi}")
        if span // s + 1 > MAX_DIM:
            raise ValueError(f"padding {lo} + {hi} gives an output {axis} of {span // s + 1}, above {MAX_DIM}")
        out.append(span // s + 1)
    return tuple(out)
