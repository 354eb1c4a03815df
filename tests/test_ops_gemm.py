"""conv2d, pointwise conv and linear: forward and backward against PyTorch
(float64), the reference twins, every GEMM ISA variant, thread counts and
bad inputs."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pulptrain
from pulptrain import _gemm, ops
from gemm_cases import (CONV_CASES, LINEAR_CASES, POINTWISE_CASES, conv_data, conv_torch,
                        depths_conv, linear_torch, tolerance)
from helpers import THREAD_COUNTS, assert_close, bitwise_equal

NAMES = ("y", "grad_x", "grad_w", "grad_b")


@pytest.fixture(params=_gemm.supported_isas())
def isa(request):
    saved = _gemm.get_isa()
    _gemm.set_isa(request.param)
    yield request.param
    _gemm.set_isa(saved)


def check_against(got, expected, depths, seed, what):
    for name, a, e, d in zip(NAMES, got, expected, depths):
        atol, rtol = tolerance(d)
        assert_close(a, e, atol=atol, rtol=rtol, name=f"{what} {name}", seed=seed)


def run_conv(x, w, b, gy, stride, padding, ref=False):
    y = ops.conv2d_forward(x, w, b, stride, padding, ref=ref)
    return (y,) + ops.conv2d_backward(x, w, gy, stride, padding, ref=ref)


# ------------------------------------------------------------------ conv2d
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch_and_ref(rng, isa, case):
    x, w, b, gy = conv_data(rng, case)
    stride, padding = case[7], case[8]
    got = run_conv(x, w, b, gy, stride, padding)
    seed = rng.bit_generator.seed_seq.entropy
    check_against(got, conv_torch(x, w, b, gy, stride, padding), depths_conv(case), seed, f"conv2d/{isa}")
    check_against(got, run_conv(x, w, b, gy, stride, padding, ref=True), depths_conv(case), seed,
                  f"conv2d/{isa} vs ref")


def test_conv2d_without_bias_and_grad_x(rng):
    x, w, _, gy = conv_data(rng, CONV_CASES[2])
    y = ops.conv2d_forward(x, w, None, 2, (0, 1, 0, 1))
    y_ref = ops.conv2d_forward(x, w, np.zeros(w.shape[0], np.float32), 2, (0, 1, 0, 1))
    assert_close(y, y_ref, atol=0, rtol=0, name="y without bias")
    gx, gw, gb = ops.conv2d_backward(x, w, gy, 2, (0, 1, 0, 1), need_grad_x=False)
    assert gx is None
    full = ops.conv2d_backward(x, w, gy, 2, (0, 1, 0, 1))
    assert bitwise_equal(gw, full[1]) and bitwise_equal(gb, full[2])


def test_conv2d_several_im2col_chunks(rng):
    """4 images of 64x64x32 with a 3x3 kernel exceed the im2col chunk budget."""
    case = (4, 64, 64, 32, 8, 3, 3, 1, 1)
    x, w, b, gy = conv_data(rng, case)
    got = run_conv(x, w, b, gy, 1, 1)
    check_against(got, conv_torch(x, w, b, gy, 1, 1), depths_conv(case),
                  rng.bit_generator.seed_seq.entropy, "conv2d chunks")


# -------------------------------------------------------------- pointwise
@pytest.mark.parametrize("case", POINTWISE_CASES, ids=str)
def test_pointwise_matches_torch_and_ref(rng, isa, case):
    n, h, wd, cin, cout = case
    x, w4, b, gy = conv_data(rng, (n, h, wd, cin, cout, 1, 1, 1, 0))
    w = np.ascontiguousarray(w4.reshape(cout, cin))
    got = (ops.pointwise_conv2d_forward(x, w, b),) + ops.pointwise_conv2d_backward(x, w, gy)
    expected = conv_torch(x, w4, b, gy, 1, 0)
    depths = (cin, cout, n * h * wd, n * h * wd)
    seed = rng.bit_generator.seed_seq.entropy
    check_against(got[:2] + (got[2].reshape(w4.shape),) + got[3:], expected, depths, seed, f"pointwise/{isa}")
    ref = (ops.pointwise_conv2d_forward(x, w, b, ref=True),) + ops.pointwise_conv2d_backward(x, w, gy, ref=True)
    check_against(got, ref, depths, seed, f"pointwise/{isa} vs ref")


# ----------------------------------------------------------------- linear
@pytest.mark.parametrize("case", LINEAR_CASES, ids=str)
def test_linear_matches_torch_and_ref(rng, isa, case):
    n, fin, fout = case
    x = rng.standard_normal((n, fin)).astype(np.float32)
    w = rng.standard_normal((fout, fin)).astype(np.float32)
    b = rng.standard_normal(fout).astype(np.float32)
    gy = rng.standard_normal((n, fout)).astype(np.float32)
    got = (ops.linear_forward(x, w, b),) + ops.linear_backward(x, w, gy)
    depths = (fin, fout, n, n)
    seed = rng.bit_generator.seed_seq.entropy
    check_against(got, linear_torch(x, w, b, gy), depths, seed, f"linear/{isa}")
    ref = (ops.linear_forward(x, w, b, ref=True),) + ops.linear_backward(x, w, gy, ref=True)
    check_against(got, ref, depths, seed, f"linear/{isa} vs ref")
    assert ops.linear_backward(x, w, gy, need_grad_x=False)[0] is None
    assert bitwise_equal(ops.linear_forward(x, w, None), ops.linear_forward(x, w, np.zeros_like(b)))


# ------------------------------------------------------------ determinism
def test_bitwise_equal_for_any_thread_count(rng, isa):
    x, w, b, gy = conv_data(rng, (3, 9, 8, 17, 33, 3, 3, 2, 1))
    xp = rng.standard_normal((4, 8, 8, 70)).astype(np.float32)
    wp = rng.standard_normal((45, 70)).astype(np.float32)
    gp = rng.standard_normal((4, 8, 8, 45)).astype(np.float32)
    xl = rng.standard_normal((64, 300)).astype(np.float32)
    wl = rng.standard_normal((50, 300)).astype(np.float32)
    gl = rng.standard_normal((64, 50)).astype(np.float32)
    runs = []
    for n in THREAD_COUNTS:
        pulptrain.set_num_threads(n)
        runs.append(run_conv(x, w, b, gy, 2, 1)
                    + (ops.pointwise_conv2d_forward(xp, wp, None),) + ops.pointwise_conv2d_backward(xp, wp, gp)
                    + (ops.linear_forward(xl, wl, None),) + ops.linear_backward(xl, wl, gl))
    for run in runs[1:]:
        for i, (a, first) in enumerate(zip(run, runs[0])):
            assert bitwise_equal(a, first), f"output {i} differs between thread counts"


# -------------------------------------------------------------- bad input
X4 = np.zeros((2, 5, 5, 3), np.float32)
W4 = np.zeros((4, 3, 3, 3), np.float32)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: ops.conv2d_forward(X4[0], W4, None), ValueError, "x must have 4 dimensions"),
    (lambda: ops.conv2d_forward(X4, W4[..., :2], None), ValueError, "w has Cin=2 but x has C=3"),
    (lambda: ops.conv2d_forward(X4.astype(np.float64), W4, None), TypeError, "x must have dtype float32"),
    (lambda: ops.conv2d_forward(X4, W4, np.zeros(3, np.float32)), ValueError, r"b must have shape \(4,\)"),
    (lambda: ops.conv2d_forward(X4, W4, None, 0), ValueError, "stride must be >= 1"),
    (lambda: ops.conv2d_forward(X4, W4, None, (1, 2, 3)), ValueError, "stride must be an int or a pair"),
    (lambda: ops.conv2d_forward(X4, W4, None, 1, -1), ValueError, "padding must be >= 0"),
    (lambda: ops.conv2d_forward(X4, W4, None, 1, "full"), ValueError, "padding must be an int"),
    (lambda: ops.conv2d_forward(X4[:, :2], W4, None), ValueError, "kernel height 3 is larger"),
    (lambda: ops.conv2d_forward(X4[:, :, :0], W4, None), ValueError, "x must not be empty"),
    (lambda: ops.conv2d_backward(X4, W4, np.zeros((2, 3, 3, 5), np.float32), 1, 0), ValueError,
     "grad_y must have the shape of the conv2d output"),
    (lambda: ops.pointwise_conv2d_forward(X4, np.zeros((4, 5), np.float32), None), ValueError,
     "w has Cin=5 but x has C=3"),
    (lambda: ops.pointwise_conv2d_forward(X4, W4, None), ValueError, "w must have 2 dimensions"),
    (lambda: ops.linear_forward(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32), None), ValueError,
     "w has In=5 but x has In=3"),
    (lambda: ops.linear_forward([[1.0]], np.zeros((4, 1), np.float32), None), TypeError,
     "x must be a numpy.ndarray"),
    (lambda: ops.linear_backward(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32),
                                 np.zeros((2, 5), np.float32)), ValueError, "grad_y must have the shape"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_non_contiguous_inputs_are_copied(rng):
    x = rng.standard_normal((2, 10, 6, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    view = x[:, ::2]
    assert bitwise_equal(ops.conv2d_forward(view, w, None, 1, 1),
                         ops.conv2d_forward(np.ascontiguousarray(view), w, None, 1, 1))


def test_isa_selection():
    assert "generic" in _gemm.supported_isas()
    assert _gemm.get_isa() in _gemm.supported_isas()
    with pytest.raises(ValueError, match="isa must be one of"):
        _gemm.set_isa("sse9")


@pytest.mark.parametrize("value, ok", [("generic", True), ("sse9", False)])
def test_isa_from_environment(value, ok):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PULPTRAIN_ISA=value, PYTHONPATH=root)
    run = subprocess.run([sys.executable, "-c", "from pulptrain import _gemm; print(_gemm.get_isa())"],
                         env=env, cwd=root, capture_output=True, text=True)
    if ok:
        assert run.returncode == 0 and run.stdout.strip() == value, run.stderr
    else:
        assert run.returncode != 0 and "isa must be one of" in run.stderr
