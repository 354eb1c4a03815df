"""ReLU / ReLU6 against PyTorch (float64), reference twins and thread counts."""
import numpy as np
import pytest
import torch

import pulptrain
from pulptrain import ops
from helpers import THREAD_COUNTS, assert_close, bitwise_equal

SHAPES = [(1, 1, 1, 1), (2, 3, 5, 7), (4, 8, 8, 33), (1, 200, 200, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("six", [False, True])
def test_forward_backward_match_torch(rng, shape, six):
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.relu6(xt) if six else torch.relu(xt)
    yt.backward(torch.tensor(gy, dtype=torch.float64))
    fwd, bwd = (ops.relu6_forward, ops.relu6_backward) if six else (ops.relu_forward, ops.relu_backward)
    y = fwd(x)
    assert_close(y, yt.detach().numpy(), atol=0, rtol=0, name="y")
    assert_close(bwd(x, gy), xt.grad.numpy(), atol=0, rtol=0, name="grad_x from x")
    assert_close(bwd(y, gy), xt.grad.numpy(), atol=0, rtol=0, name="grad_x from y")
    assert bitwise_equal(y, fwd(x, ref=True))
    assert bitwise_equal(bwd(x, gy), bwd(x, gy, ref=True))


def test_bitwise_equal_for_any_thread_count(rng):
    x = (rng.standard_normal((3, 70, 70, 16)) * 4).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    outs = []
    for n in THREAD_COUNTS:
        pulptrain.set_num_threads(n)
        outs.append((ops.relu6_forward(x), ops.relu6_backward(x, gy)))
    for y, g in outs[1:]:
        assert bitwise_equal(y, outs[0][0]) and bitwise_equal(g, outs[0][1])


def test_non_contiguous_is_copied(rng):
    x = rng.standard_normal((4, 6, 6, 8)).astype(np.float32)
    view = x[:, ::2]
    assert bitwise_equal(ops.relu_forward(view), np.maximum(view, 0))


@pytest.mark.parametrize("bad, exc, msg", [
    (np.zeros((2, 2), np.float64), TypeError, "x must have dtype float32"),
    ([1.0, 2.0], TypeError, "x must be a numpy.ndarray"),
    (np.zeros((0, 3), np.float32), ValueError, "x must not be empty"),
])
def test_bad_input(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        ops.relu_forward(bad)


def test_backward_shape_mismatch():
    with pytest.raises(ValueError, match="grad_y must have the shape of x_or_y"):
        ops.relu_backward(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("n, exc", [(0, ValueError), (-1, ValueError), (65, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_thread_count(n, exc):
    with pytest.raises(exc, match="n must"):
        pulptrain.set_num_threads(n)
