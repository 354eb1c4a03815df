"""Shared test tools: float64 PyTorch references and mixed-tolerance compares."""
from __future__ import annotations

import numpy as np

THREAD_COUNTS = (1, 2, 3, 8)


def assert_close(actual, expected, *, atol: float, rtol: float, name: str = "", seed=None) -> None:
    """|a - e| <= atol + rtol * |e| elementwise; on failure report the worst
    index, both values, the shape and the seed."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != expected {expected.shape} (seed={seed})"
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    bad = ~(err <= bound)
    if bad.any():
        excess = np.where(bad, err - bound, -np.inf)
        idx = np.unravel_index(int(np.argmax(excess)), actual.shape)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {actual.size} elements out of tolerance (atol={atol}, rtol={rtol}); "
            f"worst at index {idx}: got {actual[idx]!r}, expected {expected[idx]!r}; "
            f"shape {actual.shape}; max abs err {err.max():.3e}; seed={seed}")


def max_rel_err(actual, expected) -> float:
    """max |a - e| / max(|e|_max, tiny): a scale-aware error for reports."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def nhwc_to_nchw(a):
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))


def nchw_to_nhwc(a):
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
