"""Functional kernels on numpy float32 NHWC arrays.

Each primitive has ``<op>_forward`` and ``<op>_backward``. Inputs must be
float32 (TypeError otherwise); non-contiguous arrays are copied. Outputs are
new C-contiguous float32 arrays. The GIL is released inside every kernel.

Layouts: activations NHWC; conv weights [Cout, KH, KW, Cin]; depthwise
[KH, KW, C]; pointwise [Cout, Cin]; linear [Out, In].
"""
from __future__ import annotations

import numpy as np

from pulptrain import _core, _gemm
from pulptrain._threads import get_num_threads
from pulptrain._validate import as_f32, conv_output_hw, conv_padding, pair, same_shape

__all__ = ["relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
           "conv2d_forward", "conv2d_backward",
           "pointwise_conv2d_forward", "pointwise_conv2d_backward",
           "linear_forward", "linear_backward"]


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


# ------------------------------------------- GEMM family: conv2d, pointwise, linear
def _bias(b, out_channels: int, what: str):
    """None, or b as float32 of shape (out_channels,)."""
    if b is None:
        return None
    b = as_f32("b", b, 1)
    if b.shape[0] != out_channels:
        raise ValueError(f"b must have shape ({out_channels},) ({what}), got {b.shape}")
    return b


def _flat(a):
    return None if a is None else a.reshape(-1)


def _conv_shape(x, w, stride, padding):
    """Validated (x, w, conv params tuple, output shape) of a dense conv."""
    x = as_f32("x", x, 4)
    w = as_f32("w", w, 4)
    n, h, wd, c = x.shape
    cout, kh, kw, cin = w.shape
    if cin != c:
        raise ValueError(f"w has Cin={cin} but x has C={c} (w is [Cout, KH, KW, Cin], x is NHWC)")
    strides = pair("stride", stride)
    pads = conv_padding(padding, (h, wd), (kh, kw), strides)
    oh, ow = conv_output_hw((h, wd), (kh, kw), strides, pads)
    params = (n, h, wd, c, cout, kh, kw, strides[0], strides[1]) + tuple(pads)
    return x, w, params, (n, oh, ow, cout)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b, stride=1, padding=0, *, ref: bool = False) -> np.ndarray:
    """Dense 2-D convolution. x [N, H, W, Cin], w [Cout, KH, KW, Cin], b [Cout]
    or None -> y [N, OH, OW, Cout]. stride: int or (sh, sw); padding: int,
    (t, b, l, r), (vertical, horizontal), "same" or "valid"."""
    x, w, params, y_shape = _conv_shape(x, w, stride, padding)
    b = _bias(b, y_shape[3], "Cout of w")
    y = np.empty(y_shape, np.float32)
    _gemm.conv_fwd("conv2d", params, _flat(x), _flat(w), _flat(b), _flat(y), get_num_threads(), ref)
    return y


def conv2d_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, stride=1, padding=0, *,
                    ref: bool = False, need_grad_x: bool = True):
    """Gradients of conv2d_forward: (grad_x, grad_w, grad_b), summed over the
    batch; grad_x is None when need_grad_x is False."""
    x, w, params, y_shape = _conv_shape(x, w, stride, padding)
    grad_y = as_f32("grad_y", grad_y, 4)
    same_shape("grad_y", grad_y, "the conv2d output", y_shape)
    grad_x = None
    if need_grad_x:
        grad_x = np.empty_like(x)
        _gemm.conv_bwd_input("conv2d", params, _flat(w), _flat(grad_y), _flat(grad_x), get_num_threads(), ref)
    grad_w = np.empty_like(w)
    grad_b = np.empty(y_shape[3], np.float32)
    _gemm.conv_bwd_weight("conv2d", params, _flat(x), _flat(grad_y), _flat(grad_w), grad_b,
                          get_num_threads(), ref)
    return grad_x, grad_w, grad_b


def _pointwise_shape(x, w):
    x = as_f32("x", x, 4)
    w = as_f32("w", w, 2)
    n, h, wd, c = x.shape
    cout, cin = w.shape
    if cin != c:
        raise ValueError(f"w has Cin={cin} but x has C={c} (w is [Cout, Cin], x is NHWC)")
    return x, w, (n, h, wd, c, cout, 1, 1, 1, 1, 0, 0, 0, 0), (n, h, wd, cout)


def pointwise_conv2d_forward(x: np.ndarray, w: np.ndarray, b, *, ref: bool = False) -> np.ndarray:
    """1x1 convolution: x [N, H, W, Cin], w [Cout, Cin], b [Cout] or None ->
    y [N, H, W, Cout] (one GEMM over the N*H*W pixels)."""
    x, w, params, y_shape = _pointwise_shape(x, w)
    b = _bias(b, y_shape[3], "Cout of w")
    y = np.empty(y_shape, np.float32)
    _gemm.conv_fwd("pointwise", params, _flat(x), _flat(w), _flat(b), _flat(y), get_num_threads(), ref)
    return y


def pointwise_conv2d_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, *, ref: bool = False,
                              need_grad_x: bool = True):
    """Gradients of pointwise_conv2d_forward: (grad_x, grad_w, grad_b)."""
    x, w, params, y_shape = _pointwise_shape(x, w)
    grad_y = as_f32("grad_y", grad_y, 4)
    same_shape("grad_y", grad_y, "the pointwise output", y_shape)
    grad_x = None
    if need_grad_x:
        grad_x = np.empty_like(x)
        _gemm.conv_bwd_input("pointwise", params, _flat(w), _flat(grad_y), _flat(grad_x), get_num_threads(), ref)
    grad_w = np.empty_like(w)
    grad_b = np.empty(y_shape[3], np.float32)
    _gemm.conv_bwd_weight("pointwise", params, _flat(x), _flat(grad_y), _flat(grad_w), grad_b,
                          get_num_threads(), ref)
    return grad_x, grad_w, grad_b


def _linear_shape(x, w):
    x = as_f32("x", x, 2)
    w = as_f32("w", w, 2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w has In={w.shape[1]} but x has In={x.shape[1]} (w is [Out, In], x is [N, In])")
    return x, w, (x.shape[0], x.shape[1], w.shape[0])


def linear_forward(x: np.ndarray, w: np.ndarray, b, *, ref: bool = False) -> np.ndarray:
    """y = x w^T + b: x [N, In], w [Out, In], b [Out] or None -> y [N, Out]."""
    x, w, dims = _linear_shape(x, w)
    b = _bias(b, dims[2], "Out of w")
    y = np.empty((dims[0], dims[2]), np.float32)
    _gemm.linear_fwd(*dims, _flat(x), _flat(w), b, _flat(y), get_num_threads(), ref)
    return y


def linear_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, *, ref: bool = False,
                    need_grad_x: bool = True):
    """Gradients of linear_forward: (grad_x [N, In], grad_w [Out, In], grad_b [Out])."""
    x, w, dims = _linear_shape(x, w)
    grad_y = as_f32("grad_y", grad_y, 2)
    same_shape("grad_y", grad_y, "the linear output", (dims[0], dims[2]))
    grad_x = None
    if need_grad_x:
        grad_x = np.empty_like(x)
        _gemm.linear_bwd_input(*dims, _flat(w), _flat(grad_y), _flat(grad_x), get_num_threads(), ref)
    grad_w = np.empty_like(w)
    grad_b = np.empty(dims[2], np.float32)
    _gemm.linear_bwd_weight(*dims, _flat(x), _flat(grad_y), _flat(grad_w), grad_b, get_num_threads(), ref)
    return grad_x, grad_w, grad_b
