"""Functional kernels on numpy float32 NHWC arrays.

Each primitive has ``<op>_forward`` and ``<op>_backward``. Inputs must be
float32 (TypeError otherwise); non-contiguous arrays are copied. Outputs are
new C-contiguous float32 arrays. The GIL is released inside every kernel.

Layouts: activations NHWC; conv weights [Cout, KH, KW, Cin]; depthwise
[KH, KW, C]; pointwise [Cout, Cin]; linear [Out, In].
"""
from __future__ import annotations

import numpy as np

from pulptrain import _alloc, _core, _gemm
from pulptrain._threads import get_num_threads
from pulptrain._validate import as_f32, conv_output_hw, conv_padding, pair, same_shape

__all__ = ["relu_forward", "relu_backward", "relu6_forward", "relu6_backward",
           "conv2d_forward", "conv2d_backward",
           "pointwise_conv2d_forward", "pointwise_conv2d_backward",
           "linear_forward", "linear_backward"]


# --------------------------------------------------------------- activations
def _act_forward(x, six: bool, ref: bool) -> np.ndarray:
    x = as_f32("x", x)
    y = _alloc.empty_like(x)
    _core.relu_fwd(x.reshape(-1), y.reshape(-1), get_num_threads(), six, ref)
    return y


def _act_backward(x_or_y, grad_y, six: bool, ref: bool) -> np.ndarray:
    v = as_f32("x_or_y", x_or_y)
    grad_y = as_f32("grad_y", grad_y)
    same_shape("grad_y", grad_y, "x_or_y", v.shape)
    grad_x = _alloc.empty_like(v)
    _core.relu_bwd(v.reshape(-1), grad_y.reshape(-1), grad_x.reshape(-1), get_num_threads(), six, ref)
    return grad_x


def relu_forward(x: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """y = max(x, 0), any shape."""
    return _act_forward(x, False, ref)


def relu_backward(x_or_y: np.ndarray, grad_y: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """grad_x = grad_y where x_or_y > 0 (x_or_y: the forward input or output)."""
    return _act_backward(x_or_y, grad_y, False, ref)


ACTIVATIONS = {None: 0, "relu": 1, "relu6": 2}   # codes of pt_act


def _activation(name, arg: str = "activation") -> int:
    if name not in ACTIVATIONS:
        raise ValueError(f"{arg} must be None, 'relu' or 'relu6', got {name!r}")
    return ACTIVATIONS[name]


def _activate_ref(y: np.ndarray, name) -> np.ndarray:
    """The reference path: the activation as its own reference kernel."""
    if name is None:
        return y
    return _act_forward(y, name == "relu6", True)


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
    y = _alloc.empty(y_shape, np.float32)
    _gemm.conv_fwd("conv2d", params, _flat(x), _flat(w), _flat(b), _flat(y), get_num_threads(), ref)
    return y


def conv2d_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, stride=1, padding=0, *,
                    ref: bool = False, need_grad_x: bool = True):
    """Gradients of conv2d_forward: (grad_x, grad_w, grad_b), summed over the
    batch; grad_x is None when need_grad_x is False."""
    x, w, params, y_shape = _conv_shape(x, w, stride, padding)
    return _conv_backward("conv2d", params, x, w, grad_y, y_shape, need_grad_x, ref)


def _conv_backward(kind: str, params, x, w, grad_y, y_shape, need_grad_x: bool, ref: bool,
                   input_activation=None):
    """(grad_x or None, grad_w, grad_b) of a conv2d or pointwise conv."""
    act = _activation(input_activation, "input_activation")
    grad_y = as_f32("grad_y", grad_y, 4)
    same_shape("grad_y", grad_y, f"the {kind} output", y_shape)
    grad_x = None
    if need_grad_x:
        grad_x = _alloc.empty_like(x)
        fused = act and not ref
        _gemm.conv_bwd_input(kind, params, _flat(w), _flat(grad_y), _flat(grad_x), get_num_threads(), ref,
                             act if fused else 0, _flat(x) if fused else None)
        if act and ref:
            grad_x = _act_backward(x, grad_x, input_activation == "relu6", True)
    grad_w = _alloc.empty_like(w)
    grad_b = _alloc.empty(y_shape[3], np.float32)
    _gemm.conv_bwd_weight(kind, params, _flat(x), _flat(grad_y), _flat(grad_w), grad_b, get_num_threads(), ref)
    return grad_x, grad_w, grad_b


def _pointwise_shape(x, w):
    x = as_f32("x", x, 4)
    w = as_f32("w", w, 2)
    n, h, wd, c = x.shape
    cout, cin = w.shape
    if cin != c:
        raise ValueError(f"w has Cin={cin} but x has C={c} (w is [Cout, Cin], x is NHWC)")
    return x, w, (n, h, wd, c, cout, 1, 1, 1, 1, 0, 0, 0, 0), (n, h, wd, cout)


def pointwise_conv2d_forward(x: np.ndarray, w: np.ndarray, b, *, activation: str | None = None,
                             ref: bool = False) -> np.ndarray:
    """1x1 convolution: x [N, H, W, Cin], w [Cout, Cin], b [Cout] or None ->
    y [N, H, W, Cout] (one GEMM over the N*H*W pixels). ``activation``:
    None, "relu" or "relu6", fused into the GEMM's output pass (bitwise the
    same as applying it afterwards)."""
    act = _activation(activation)
    x, w, params, y_shape = _pointwise_shape(x, w)
    b = _bias(b, y_shape[3], "Cout of w")
    y = _alloc.empty(y_shape, np.float32)
    _gemm.conv_fwd("pointwise", params, _flat(x), _flat(w), _flat(b), _flat(y), get_num_threads(), ref,
                   0 if ref else act)
    return _activate_ref(y, activation) if ref else y


def pointwise_conv2d_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, *, ref: bool = False,
                              need_grad_x: bool = True, input_activation: str | None = None):
    """Gradients of pointwise_conv2d_forward: (grad_x, grad_w, grad_b).

    ``input_activation`` ("relu" / "relu6"): x is that activation's output,
    and grad_x is returned with respect to the activation's input (grad_x
    where 0 < x < cap, else 0), fused into the GEMM's last pass; bitwise the
    plain grad_x followed by ``relu6_backward(x, grad_x)``."""
    x, w, params, y_shape = _pointwise_shape(x, w)
    return _conv_backward("pointwise", params, x, w, grad_y, y_shape, need_grad_x, ref, input_activation)


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
    y = _alloc.empty((dims[0], dims[2]), np.float32)
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
        grad_x = _alloc.empty_like(x)
        _gemm.linear_bwd_input(*dims, _flat(w), _flat(grad_y), _flat(grad_x), get_num_threads(), ref)
    grad_w = _alloc.empty_like(w)
    grad_b = _alloc.empty(dims[2], np.float32)
    _gemm.linear_bwd_weight(*dims, _flat(x), _flat(grad_y), _flat(grad_w), grad_b, get_num_threads(), ref)
    return grad_x, grad_w, grad_b


# ===================================================================== non-GEMM training kernels
# depthwise conv, average pooling, channel affine, softmax cross-entropy, SGD
from pulptrain import _elem  # noqa: E402
from pulptrain._validate import MAX_DIM, as_labels, finite_float, positive_int  # noqa: E402
__all__ += ["depthwise_conv2d_forward", "depthwise_conv2d_backward",
            "avg_pool2d_forward", "avg_pool2d_backward",
            "global_avg_pool_forward", "global_avg_pool_backward",
            "channel_affine_forward", "channel_affine_backward",
            "softmax_cross_entropy_forward", "softmax_cross_entropy_backward", "sgd_step"]


def _nhwc_shape(name: str, x_or_shape) -> tuple[int, int, int, int]:
    """The NHWC shape of an array, or a 4-tuple of positive ints taken as one."""
    if isinstance(x_or_shape, np.ndarray):
        shape = x_or_shape.shape
    elif isinstance(x_or_shape, (tuple, list)):
        shape = tuple(positive_int(f"{name}[{i}]", d, maximum=MAX_DIM) for i, d in enumerate(x_or_shape))
    else:
        raise TypeError(f"{name} must be an NHWC array or its shape tuple, got {type(x_or_shape).__name__}")
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"{name} must describe a non-empty NHWC tensor [N, H, W, C], got shape {tuple(shape)}")
    return tuple(int(d) for d in shape)


def _depthwise_geometry(shape, w: np.ndarray, stride, padding):
    n, h, wd, c = shape
    if w.ndim != 3 or w.shape[2] != c:
        raise ValueError(f"w must have shape [KH, KW, C] with C = {c} (the channels of x), got {w.shape}")
    kernel = (w.shape[0], w.shape[1])
    stride = pair("stride", stride)
    pads = conv_padding(padding, (h, wd), kernel, stride)
    out_hw = conv_output_hw((h, wd), kernel, stride, pads)
    return kernel, stride, pads, out_hw


def depthwise_conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=1, padding=0, *,
                             activation: str | None = None, ref: bool = False) -> np.ndarray:
    """Depthwise convolution: x [N, H, W, C], w [KH, KW, C], b [C] or None ->
    y [N, OH, OW, C]. ``stride`` is an int or (sh, sw); ``padding`` an int,
    (top, bottom, left, right), (vertical, horizontal), "same" or "valid".
    ``activation``: None, "relu" or "relu6", fused into the output store."""
    act = _activation(activation)
    x = as_f32("x", x, 4)
    w = as_f32("w", w, 3)
    kernel, stride, pads, (oh, ow) = _depthwise_geometry(x.shape, w, stride, padding)
    if b is not None:
        b = as_f32("b", b, 1)
        same_shape("b", b, "C", (x.shape[3],))
    y = _alloc.empty((x.shape[0], oh, ow, x.shape[3]), np.float32)
    _elem.depthwise_fwd(x.reshape(-1), w.reshape(-1), None if b is None else b, y.reshape(-1), x.shape,
                        kernel, stride, pads, get_num_threads(), ref, 0 if ref else act)
    return _activate_ref(y, activation) if ref else y


def depthwise_conv2d_backward(x: np.ndarray, w: np.ndarray, grad_y: np.ndarray, stride=1, padding=0, *,
                              need_grad_x: bool = True, ref: bool = False, input_activation: str | None = None):
    """Gradients of depthwise_conv2d_forward: (grad_x [N, H, W, C] or None when
    need_grad_x is False, grad_w [KH, KW, C], grad_b [C]), summed over the batch.
    ``input_activation``: as for pointwise_conv2d_backward (masked as stored)."""
    act = _activation(input_activation, "input_activation")
    x = as_f32("x", x, 4)
    w = as_f32("w", w, 3)
    grad_y = as_f32("grad_y", grad_y, 4)
    kernel, stride, pads, (oh, ow) = _depthwise_geometry(x.shape, w, stride, padding)
    same_shape("grad_y", grad_y, "the output", (x.shape[0], oh, ow, x.shape[3]))
    threads = get_num_threads()
    grad_w = _alloc.empty_like(w)
    grad_b = _alloc.empty(x.shape[3], np.float32)
    if need_grad_x and not ref:   # both gradients in one pass over grad_y
        grad_x = _alloc.empty_like(x)
        _elem.depthwise_bwd(w.reshape(-1), x.reshape(-1), grad_y.reshape(-1), grad_x.reshape(-1),
                            grad_w.reshape(-1), grad_b, x.shape, kernel, stride, pads, threads, act)
        return grad_x, grad_w, grad_b
    grad_x = None
    if need_grad_x:   # the reference twins, the activation's backward a pass of its own
        grad_x = _alloc.empty_like(x)
        _elem.depthwise_bwd_input(w.reshape(-1), grad_y.reshape(-1), grad_x.reshape(-1), x.shape,
                                  kernel, stride, pads, threads, True)
        if act:
            grad_x = _act_backward(x, grad_x, input_activation == "relu6", True)
    _elem.depthwise_bwd_weight(x.reshape(-1), grad_y.reshape(-1), grad_w.reshape(-1), grad_b, x.shape,
                               kernel, stride, pads, threads, ref)
    return grad_x, grad_w, grad_b


def _pool_geometry(shape, kernel_size, stride):
    kernel = pair("kernel_size", kernel_size)
    stride = kernel if stride is None else pair("stride", stride)
    out_hw = conv_output_hw(shape[1:3], kernel, stride, (0, 0, 0, 0), what="kernel_size")
    return kernel, stride, out_hw


def avg_pool2d_forward(x: np.ndarray, kernel_size, stride=None, *, ref: bool = False) -> np.ndarray:
    """Average over KH x KW windows (no padding; stride defaults to the
    kernel size): x [N, H, W, C] -> [N, OH, OW, C]."""
    x = as_f32("x", x, 4)
    kernel, stride, (oh, ow) = _pool_geometry(x.shape, kernel_size, stride)
    y = _alloc.empty((x.shape[0], oh, ow, x.shape[3]), np.float32)
    _elem.avgpool_fwd(x.reshape(-1), y.reshape(-1), x.shape, kernel, stride, get_num_threads(), ref)
    return y


def avg_pool2d_backward(x_shape_or_x, grad_y: np.ndarray, kernel_size, stride=None, *,
                        ref: bool = False) -> np.ndarray:
    """grad_x of avg_pool2d_forward. The first argument is the forward input x
    or just its shape (N, H, W, C): the gradient does not depend on x's values.
    Pixels no window covers get 0."""
    shape = _nhwc_shape("x_shape_or_x", x_shape_or_x)
    grad_y = as_f32("grad_y", grad_y, 4)
    kernel, stride, (oh, ow) = _pool_geometry(shape, kernel_size, stride)
    same_shape("grad_y", grad_y, "the output", (shape[0], oh, ow, shape[3]))
    grad_x = _alloc.empty(shape, np.float32)
    _elem.avgpool_bwd(grad_y.reshape(-1), grad_x.reshape(-1), shape, kernel, stride, get_num_threads(), ref)
    return grad_x


def global_avg_pool_forward(x: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """Mean over H and W: x [N, H, W, C] -> [N, C]."""
    x = as_f32("x", x, 4)
    y = _alloc.empty((x.shape[0], x.shape[3]), np.float32)
    _elem.global_avgpool_fwd(x.reshape(-1), y.reshape(-1), x.shape, get_num_threads(), ref)
    return y


def global_avg_pool_backward(x_or_shape, grad_y: np.ndarray, *, ref: bool = False,
                             input_activation: str | None = None) -> np.ndarray:
    """grad_x [N, H, W, C] = grad_y[n, c] / (H*W); the first argument is the
    forward input x or its shape (N, H, W, C). ``input_activation`` ("relu" /
    "relu6"): x is that activation's output (the array, not its shape) and
    grad_x goes through it, 0 where x is not in (0, cap), masked as it is
    stored (the reference path: a pass of its own)."""
    act = _activation(input_activation, "input_activation")
    if act and not isinstance(x_or_shape, np.ndarray):
        raise TypeError("x_or_shape must be the array x (the activation's output) when "
                        f"input_activation is set, got {type(x_or_shape).__name__}")
    shape = _nhwc_shape("x_or_shape", x_or_shape)
    x = as_f32("x_or_shape", x_or_shape, 4) if act else None
    grad_y = as_f32("grad_y", grad_y, 2)
    same_shape("grad_y", grad_y, "[N, C]", (shape[0], shape[3]))
    grad_x = _alloc.empty(shape, np.float32)
    if act and not ref:
        _elem.global_avgpool_bwd(grad_y.reshape(-1), grad_x.reshape(-1), shape, get_num_threads(), False,
                                 act, x.reshape(-1))
        return grad_x
    _elem.global_avgpool_bwd(grad_y.reshape(-1), grad_x.reshape(-1), shape, get_num_threads(), ref)
    return _act_backward(x, grad_x, input_activation == "relu6", True) if act else grad_x


def _affine_dims(x: np.ndarray, scale: np.ndarray):
    scale = as_f32("scale", scale, 1)
    same_shape("scale", scale, "C (the last axis of x)", (x.shape[-1],))
    if x.ndim == 4:
        return x.shape, scale
    # [N, ..., C]: each sample is one "image" of its middle elements
    n, c = x.shape[0], x.shape[-1]
    return (n, 1, x.size // (n * c), c), scale


def channel_affine_forward(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, *,
                           ref: bool = False) -> np.ndarray:
    """y = x * scale[c] + shift[c] over the last (channel) axis; x is NHWC
    [N, H, W, C] or any [N, ..., C] (e.g. [N, C])."""
    x = as_f32("x", x, (2, 3, 4, 5))
    dims, scale = _affine_dims(x, scale)
    shift = as_f32("shift", shift, 1)
    same_shape("shift", shift, "scale", scale.shape)
    y = _alloc.empty_like(x)
    _elem.affine_fwd(x.reshape(-1), scale, shift, y.reshape(-1), dims, get_num_threads(), ref)
    return y


def channel_affine_backward(x: np.ndarray, scale: np.ndarray, grad_y: np.ndarray, *,
                            need_grad_x: bool = True, ref: bool = False):
    """(grad_x or None, grad_scale [C], grad_shift [C]) of channel_affine_forward,
    the parameter gradients summed over the batch."""
    x = as_f32("x", x, (2, 3, 4, 5))
    dims, scale = _affine_dims(x, scale)
    grad_y = as_f32("grad_y", grad_y)
    same_shape("grad_y", grad_y, "x", x.shape)
    threads = get_num_threads()
    grad_x = None
    if need_grad_x:
        grad_x = _alloc.empty_like(x)
        _elem.affine_bwd_input(scale, grad_y.reshape(-1), grad_x.reshape(-1), dims, threads, ref)
    grad_scale = _alloc.empty_like(scale)
    grad_shift = _alloc.empty_like(scale)
    _elem.affine_bwd_param(x.reshape(-1), grad_y.reshape(-1), grad_scale, grad_shift, dims, threads, ref)
    return grad_x, grad_scale, grad_shift


def _logits_labels(logits, labels):
    logits = as_f32("logits", logits, 2)
    labels = as_labels("labels", labels, logits.shape[0], logits.shape[1])
    return logits, labels


def softmax_cross_entropy_forward(logits: np.ndarray, labels: np.ndarray, *, ref: bool = False) -> float:
    """Mean over the batch of -log softmax(logits[n])[labels[n]]; logits
    [N, K] float32, labels [N] integers in [0, K) (ValueError naming labels
    otherwise)."""
    logits, labels = _logits_labels(logits, labels)
    return float(_elem.softmax_xent_fwd(logits.reshape(-1), labels, logits.shape[0], logits.shape[1],
                                        get_num_threads(), ref))


def softmax_cross_entropy_backward(logits: np.ndarray, labels: np.ndarray, *, ref: bool = False) -> np.ndarray:
    """Gradient of the mean loss: (softmax(logits) - onehot(labels)) / N, [N, K]."""
    logits, labels = _logits_labels(logits, labels)
    grad = _alloc.empty_like(logits)
    _elem.softmax_xent_bwd(logits.reshape(-1), labels, grad.reshape(-1), logits.shape[0], logits.shape[1],
                           get_num_threads(), ref)
    return grad


def _in_place_f32(name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{name} must have dtype float32, got {a.dtype}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} is updated in place and must be a writeable C-contiguous array")
    if a.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a


def sgd_step(param: np.ndarray, grad: np.ndarray, velocity: np.ndarray, lr: float, momentum: float = 0.9,
             weight_decay: float = 5e-4, *, ref: bool = False) -> None:
    """One SGD step in place, with PyTorch's semantics (dampening 0, no Nesterov):
    g = grad + weight_decay * param; velocity = momentum * velocity + g;
    param -= lr * velocity. param and velocity (start it at zeros) must be
    writeable C-contiguous float32 arrays of the same shape as grad."""
    param = _in_place_f32("param", param)
    velocity = _in_place_f32("velocity", velocity)
    grad = as_f32("grad", grad)
    same_shape("grad", grad, "param", param.shape)
    same_shape("velocity", velocity, "param", param.shape)
    if np.shares_memory(param, velocity):
        raise ValueError("param and velocity must not share memory")
    lr = finite_float("lr", lr, minimum=0.0)
    momentum = finite_float("momentum", momentum, minimum=0.0)
    weight_decay = finite_float("weight_decay", weight_decay, minimum=0.0)
    _elem.sgd_step(param.reshape(-1), grad.reshape(-1), velocity.reshape(-1), lr, momentum, weight_decay,
                   get_num_threads(), ref)
