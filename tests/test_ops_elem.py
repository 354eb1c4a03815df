"""Depthwise conv, average pooling, channel affine, softmax cross-entropy and SGD
against PyTorch (float64), their reference twins, and every thread count."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pulptrain
from pulptrain import ops, _elem
from pulptrain._validate import conv_padding
from helpers import THREAD_COUNTS, assert_close, bitwise_equal, nchw_to_nhwc, nhwc_to_nchw


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def assert_bitwise(a, b, name):
    assert bitwise_equal(a, b), f"{name}: optimised and reference results differ"


# ------------------------------------------------------------------ depthwise
# (N, H, W, C, KH, KW, stride, padding, bias)
DEPTHWISE_CASES = [
    (2, 8, 8, 64, 3, 3, 1, 1, True),                 # MobileNet stage, full channel blocks
    (3, 8, 8, 40, 3, 3, 2, "same", True),            # stride 2 with TF "same" (extra pixel bottom/right)
    (1, 7, 9, 33, 3, 3, (2, 1), (1, 0, 2, 1), False),  # odd sizes, asymmetric stride and padding
    (2, 1, 1, 17, 3, 3, 1, 1, True),                 # 1-pixel map
    (1, 5, 5, 3, 1, 1, 1, 0, True),                  # 1x1 kernel
    (2, 6, 5, 8, 5, 3, (3, 2), 2, False),            # window larger than the stride
    (1, 4, 4, 70, 3, 3, 2, "valid", True),           # no padding, leftover row/column
    (2, 5, 4, 275, 3, 3, 1, "same", True),           # 128-channel blocks, a 16-block and single channels
]


def torch_depthwise(x, w, b, stride, pads, gy):
    """F.conv2d with groups=C on explicitly padded NCHW float64 tensors."""
    xt, wt = t64(nhwc_to_nchw(x), True), t64(np.transpose(w, (2, 0, 1))[:, None], True)
    bt = t64(b, True) if b is not None else None
    top, bottom, left, right = pads
    y = F.conv2d(F.pad(xt, (left, right, top, bottom)), wt, bt, stride=stride, groups=x.shape[3])
    y.backward(t64(nhwc_to_nchw(gy)))
    grad_w = np.transpose(wt.grad.numpy()[:, 0], (1, 2, 0))
    grad_b = bt.grad.numpy() if b is not None else gy.astype(np.float64).sum(axis=(0, 1, 2))
    return nchw_to_nhwc(y.detach().numpy()), nchw_to_nhwc(xt.grad.numpy()), grad_w, grad_b


@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_matches_torch(rng, case):
    n, h, w_, c, kh, kw, stride, padding, with_bias = case
    x, w = randn(rng, n, h, w_, c), randn(rng, kh, kw, c)
    b = randn(rng, c) if with_bias else None
    y = ops.depthwise_conv2d_forward(x, w, b, stride, padding)
    gy = randn(rng, *y.shape)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    pads = conv_padding(padding, (h, w_), (kh, kw), s)
    y_t, gx_t, gw_t, gb_t = torch_depthwise(x, w, b, s, pads, gy)
    gx, gw, gb = ops.depthwise_conv2d_backward(x, w, gy, stride, padding)
    assert_close(y, y_t, atol=1e-5, rtol=1e-5, name="y")
    assert_close(gx, gx_t, atol=1e-5, rtol=1e-5, name="grad_x")
    assert_close(gw, gw_t, atol=1e-4, rtol=1e-5, name="grad_w")
    assert_close(gb, gb_t, atol=1e-4, rtol=1e-5, name="grad_b")
    assert_bitwise(y, ops.depthwise_conv2d_forward(x, w, b, stride, padding, ref=True), "y")
    for got, want, name in zip((gx, gw, gb), ops.depthwise_conv2d_backward(x, w, gy, stride, padding, ref=True),
                               ("grad_x", "grad_w", "grad_b")):
        assert_bitwise(got, want, name)
    _, gw2, gb2 = ops.depthwise_conv2d_backward(x, w, gy, stride, padding, need_grad_x=False)
    assert bitwise_equal(gw2, gw) and bitwise_equal(gb2, gb)
    assert ops.depthwise_conv2d_backward(x, w, gy, stride, padding, need_grad_x=False)[0] is None


# -------------------------------------------------------------------- pooling
POOL_CASES = [  # (N, H, W, C, kernel, stride)
    (2, 8, 8, 64, 2, None), (3, 7, 5, 19, (3, 2), (2, 1)), (1, 4, 4, 70, 4, None),
    (2, 9, 9, 5, 2, 3), (1, 1, 1, 3, 1, 1),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool_matches_torch(rng, case):
    n, h, w, c, kernel, stride = case
    x = randn(rng, n, h, w, c)
    xt = t64(nhwc_to_nchw(x), True)
    yt = F.avg_pool2d(xt, kernel, stride)
    y = ops.avg_pool2d_forward(x, kernel, stride)
    gy = randn(rng, *y.shape)
    yt.backward(t64(nhwc_to_nchw(gy)))
    assert_close(y, nchw_to_nhwc(yt.detach().numpy()), atol=1e-6, rtol=1e-6, name="y")
    gx = ops.avg_pool2d_backward(x, gy, kernel, stride)
    assert_close(gx, nchw_to_nhwc(xt.grad.numpy()), atol=1e-6, rtol=1e-6, name="grad_x")
    assert bitwise_equal(gx, ops.avg_pool2d_backward(x.shape, gy, kernel, stride))
    assert_bitwise(y, ops.avg_pool2d_forward(x, kernel, stride, ref=True), "y")
    assert_bitwise(gx, ops.avg_pool2d_backward(x, gy, kernel, stride, ref=True), "grad_x")


@pytest.mark.parametrize("shape", [(2, 8, 8, 64), (3, 1, 1, 7), (1, 5, 3, 130)])
def test_global_avg_pool_matches_torch(rng, shape):
    x = randn(rng, *shape)
    xt = t64(x, True)
    yt = xt.mean(dim=(1, 2))
    y = ops.global_avg_pool_forward(x)
    gy = randn(rng, *y.shape)
    yt.backward(t64(gy))
    assert_close(y, yt.detach().numpy(), atol=1e-6, rtol=1e-6, name="y")
    gx = ops.global_avg_pool_backward(x, gy)
    assert_close(gx, xt.grad.numpy(), atol=1e-7, rtol=1e-6, name="grad_x")
    assert bitwise_equal(gx, ops.global_avg_pool_backward(shape, gy))
    assert_bitwise(y, ops.global_avg_pool_forward(x, ref=True), "y")
    assert_bitwise(gx, ops.global_avg_pool_backward(x, gy, ref=True), "grad_x")


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_global_avg_pool_backward_through_the_input_activation(rng, act):
    """input_activation: x is that activation's output; grad_x is masked as
    stored, bitwise the plain backward followed by the activation's backward
    (x at 0, at 6, NaN, -0 and beyond included), on the reference path too."""
    x = np.clip(randn(rng, 3, 4, 4, 70) * 4, -1, 7)
    x.reshape(-1)[:5] = [0.0, 6.0, np.nan, -0.0, 3.0]
    gy = randn(rng, 3, 70)
    backward = ops.relu6_backward if act == "relu6" else ops.relu_backward
    want = backward(x, ops.global_avg_pool_backward(x.shape, gy))
    assert_bitwise(ops.global_avg_pool_backward(x, gy, input_activation=act), want, "fused")
    assert_bitwise(ops.global_avg_pool_backward(x, gy, input_activation=act, ref=True), want, "ref")
    with pytest.raises(TypeError, match="x_or_shape must be the array x"):
        ops.global_avg_pool_backward(x.shape, gy, input_activation=act)
    with pytest.raises(ValueError, match="activation must be"):
        ops.global_avg_pool_backward(x, gy, input_activation="tanh")


# ------------------------------------------------------------- channel affine
@pytest.mark.parametrize("shape", [(2, 8, 8, 64), (3, 5, 7, 19), (4, 1, 1, 200), (16, 10)])
def test_channel_affine_matches_torch(rng, shape):
    x, gy = randn(rng, *shape), randn(rng, *shape)
    scale, shift = randn(rng, shape[-1]), randn(rng, shape[-1])
    xt, st, bt = t64(x, True), t64(scale, True), t64(shift, True)
    yt = xt * st + bt
    yt.backward(t64(gy))
    y = ops.channel_affine_forward(x, scale, shift)
    gx, gs, gb = ops.channel_affine_backward(x, scale, gy)
    assert_close(y, yt.detach().numpy(), atol=1e-6, rtol=1e-6, name="y")
    assert_close(gx, xt.grad.numpy(), atol=1e-6, rtol=1e-6, name="grad_x")
    assert_close(gs, st.grad.numpy(), atol=1e-4, rtol=1e-5, name="grad_scale")
    assert_close(gb, bt.grad.numpy(), atol=1e-4, rtol=1e-5, name="grad_shift")
    assert_bitwise(y, ops.channel_affine_forward(x, scale, shift, ref=True), "y")
    for got, want in zip((gx, gs, gb), ops.channel_affine_backward(x, scale, gy, ref=True)):
        assert_bitwise(got, want, "affine backward")


# ---------------------------------------------------------------------- loss
@pytest.mark.parametrize("n, k, scale", [(1, 1, 1.0), (7, 3, 1.0), (128, 10, 3.0), (5, 1000, 1.0), (4, 6, 1e4)])
def test_softmax_cross_entropy_matches_torch(rng, n, k, scale):
    logits = randn(rng, n, k, scale=scale)
    labels = rng.integers(0, k, size=n)
    lt = t64(logits, True)
    loss_t = F.cross_entropy(lt, torch.tensor(labels))
    loss_t.backward()
    loss = ops.softmax_cross_entropy_forward(logits, labels)
    grad = ops.softmax_cross_entropy_backward(logits, labels)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert abs(loss - loss_t.item()) <= 1e-5 * max(1.0, abs(loss_t.item())), (loss, loss_t.item())
    assert_close(grad, lt.grad.numpy(), atol=1e-7, rtol=1e-5, name="grad_logits")
    assert loss == ops.softmax_cross_entropy_forward(logits, labels, ref=True)
    assert_bitwise(grad, ops.softmax_cross_entropy_backward(logits, labels, ref=True), "grad_logits")


def test_labels_dtypes_accepted(rng):
    logits = randn(rng, 4, 3)
    want = ops.softmax_cross_entropy_forward(logits, np.array([0, 1, 2, 1], np.int64))
    for dtype in (np.int32, np.uint8, np.int16):
        assert ops.softmax_cross_entropy_forward(logits, np.array([0, 1, 2, 1], dtype)) == want


# ----------------------------------------------------------------------- SGD
def test_sgd_matches_torch_over_steps(rng):
    shape = (64, 3, 3, 17)
    w0 = randn(rng, *shape)
    grads = [randn(rng, *shape) for _ in range(5)]
    lr, mu, wd = 0.05, 0.9, 5e-4
    p = torch.nn.Parameter(t64(w0))
    opt = torch.optim.SGD([p], lr=lr, momentum=mu, weight_decay=wd)
    param, velocity = w0.copy(), np.zeros_like(w0)
    param_ref, velocity_ref = w0.copy(), np.zeros_like(w0)
    for g in grads:
        p.grad = t64(g)
        opt.step()
        ops.sgd_step(param, g, velocity, lr, mu, wd)
        ops.sgd_step(param_ref, g, velocity_ref, lr, mu, wd, ref=True)
    assert_close(param, p.detach().numpy(), atol=1e-6, rtol=1e-6, name="param")
    assert_close(velocity, opt.state[p]["momentum_buffer"].numpy(), atol=1e-5, rtol=1e-5, name="velocity")
    assert_bitwise(param, param_ref, "param")
    assert_bitwise(velocity, velocity_ref, "velocity")


def test_sgd_defaults_and_plain_sgd(rng):
    w0, g = randn(rng, 100), randn(rng, 100)
    param, velocity = w0.copy(), np.zeros_like(w0)
    ops.sgd_step(param, g, velocity, 0.1, momentum=0.0, weight_decay=0.0)
    assert_close(param, w0.astype(np.float64) - 0.1 * g.astype(np.float64), atol=1e-7, rtol=1e-6, name="plain")


# --------------------------------------------------------- thread counts
def test_bitwise_equal_for_any_thread_count(rng):
    x, w, b = randn(rng, 5, 8, 8, 96), randn(rng, 3, 3, 96), randn(rng, 96)
    scale, shift = randn(rng, 96), randn(rng, 96)
    logits, labels = randn(rng, 300, 10), rng.integers(0, 10, size=300)
    g_param = randn(rng, 40000)

    def run_all():
        out = []
        for stride in (1, 2):
            y = ops.depthwise_conv2d_forward(x, w, b, stride, "same")
            out += [y, *ops.depthwise_conv2d_backward(x, w, np.cos(y), stride, "same")]
        p = ops.avg_pool2d_forward(x, 3, 2)
        out += [p, ops.avg_pool2d_backward(x, p, 3, 2)]
        gp = ops.global_avg_pool_forward(x)
        out += [gp, ops.global_avg_pool_backward(x, gp)]
        out += [ops.channel_affine_forward(x, scale, shift), *ops.channel_affine_backward(x, scale, x)]
        out += [np.float32(ops.softmax_cross_entropy_forward(logits, labels)),
                ops.softmax_cross_entropy_backward(logits, labels)]
        param, velocity = g_param * 2, np.ones_like(g_param)
        ops.sgd_step(param, g_param, velocity, 0.1)
        return out + [param, velocity]

    results = []
    for n in THREAD_COUNTS:
        pulptrain.set_num_threads(n)
        results.append(run_all())
    for other in results[1:]:
        for i, (a, b_) in enumerate(zip(results[0], other)):
            assert bitwise_equal(np.asarray(a), np.asarray(b_)), f"output {i} differs across thread counts"


# ---------------------------------------------------------------- bad input
F32 = np.float32


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 3), F32), None, 1, 1),
     TypeError, "x must have dtype float32"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 4, 4, 3), F32), np.zeros((3, 3, 4), F32), None, 1, 1),
     ValueError, "w must have shape"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((4, 4, 3), F32), np.zeros((3, 3, 3), F32), None, 1, 1),
     ValueError, "x must have 4 dimensions"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 4, 4, 3), F32), np.zeros((3, 3, 3), F32),
                                          np.zeros(4, F32), 1, 1), ValueError, "b must have the shape"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 2, 2, 3), F32), np.zeros((3, 3, 3), F32), None, 1, 0),
     ValueError, "larger than the padded input"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 4, 4, 3), F32), np.zeros((3, 3, 3), F32), None, 0, 1),
     ValueError, "stride must be >= 1"),
    (lambda: ops.depthwise_conv2d_forward(np.zeros((1, 4, 4, 3), F32), np.zeros((3, 3, 3), F32), None, 1, "full"),
     ValueError, "padding must be"),
    (lambda: ops.depthwise_conv2d_backward(np.zeros((1, 4, 4, 3), F32), np.zeros((3, 3, 3), F32),
                                           np.zeros((1, 3, 3, 3), F32), 1, 1), ValueError, "grad_y must have the shape"),
    (lambda: ops.avg_pool2d_forward(np.zeros((1, 2, 2, 3), F32), 3), ValueError, "kernel_size height 3 is larger"),
    (lambda: ops.avg_pool2d_backward((1, 4, 4), np.zeros((1, 2, 2, 3), F32), 2), ValueError, "x_shape_or_x"),
    (lambda: ops.avg_pool2d_backward((1, 4, 4, 3), np.zeros((1, 3, 2, 3), F32), 2), ValueError, "grad_y"),
    (lambda: ops.global_avg_pool_backward((1, 4, 4, 3), np.zeros((1, 4), F32)), ValueError, "grad_y"),
    (lambda: ops.global_avg_pool_backward("x", np.zeros((1, 4), F32)), TypeError, "x_or_shape"),
    (lambda: ops.channel_affine_forward(np.zeros((1, 2, 2, 3), F32), np.zeros(4, F32), np.zeros(4, F32)),
     ValueError, "scale must have the shape"),
    (lambda: ops.channel_affine_forward(np.zeros((1, 2, 2, 3), F32), np.zeros(3, F32), np.zeros(2, F32)),
     ValueError, "shift must have the shape"),
    (lambda: ops.softmax_cross_entropy_forward(np.zeros((2, 3), F32), np.array([0, 3])),
     ValueError, r"labels must lie in \[0, 3\), found 3"),
    (lambda: ops.softmax_cross_entropy_backward(np.zeros((2, 3), F32), np.array([-1, 0])),
     ValueError, "labels must lie in"),
    (lambda: ops.softmax_cross_entropy_forward(np.zeros((2, 3), F32), np.array([0.0, 1.0])),
     TypeError, "labels must have an integer dtype"),
    (lambda: ops.softmax_cross_entropy_forward(np.zeros((2, 3), F32), np.array([0, 1, 1])),
     ValueError, r"labels must have shape \(2,\)"),
    (lambda: ops.softmax_cross_entropy_forward(np.zeros(3, F32), np.array([0])),
     ValueError, "logits must have 2 dimensions"),
    (lambda: ops.sgd_step(np.zeros(4, F32)[::2], np.zeros(2, F32), np.zeros(2, F32), 0.1),
     ValueError, "param is updated in place"),
    (lambda: ops.sgd_step(np.zeros(4, F32), np.zeros(4, F32), np.zeros(4), 0.1),
     TypeError, "velocity must have dtype float32"),
    (lambda: ops.sgd_step(np.zeros(4, F32), np.zeros(3, F32), np.zeros(4, F32), 0.1),
     ValueError, "grad must have the shape"),
    (lambda: ops.sgd_step(np.zeros(4, F32), np.zeros(4, F32), np.zeros(4, F32), float("nan")),
     ValueError, "lr must be finite"),
    (lambda: ops.sgd_step(np.zeros(4, F32), np.zeros(4, F32), np.zeros(4, F32), 0.1, momentum=-1),
     ValueError, "momentum must be >= 0"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_sgd_rejects_aliased_buffers():
    buf = np.zeros(8, F32)
    with pytest.raises(ValueError, match="must not share memory"):
        ops.sgd_step(buf, np.zeros(8, F32), buf, 0.1)


def test_c_range_check_behind_python_validation():
    """The C kernel refuses an out-of-range label by itself (PT_ERR_RANGE)."""
    logits = np.zeros(6, F32)
    with pytest.raises(pulptrain.StatusError, match="out of range") as info:
        _elem.softmax_xent_fwd(logits, np.array([0, 5], np.int32), 2, 3, 1)
    assert info.value.status == 6
    grad = np.full(6, 7.0, F32)
    with pytest.raises(pulptrain.StatusError):
        _elem.softmax_xent_bwd(logits, np.array([3, 0], np.int32), grad, 2, 3, 2)
    assert (grad == 7.0).all(), "nothing written on a bad label"


def test_non_contiguous_inputs_are_copied(rng):
    x, w = randn(rng, 2, 6, 12, 8), randn(rng, 3, 3, 8)
    view = x[:, :, ::2]
    assert bitwise_equal(ops.depthwise_conv2d_forward(view, w, None, 1, 1),
                         ops.depthwise_conv2d_forward(np.ascontiguousarray(view), w, None, 1, 1))
