"""Layers, a sequential model, the softmax cross-entropy loss and SGD on top of
pulptrain.ops: the familiar forward / backward / step / zero_grad loop in
NHWC float32 numpy.

- ``forward(x)`` caches what ``backward`` needs (the input, or the output for
  the activations); do not modify that array in place before ``backward``.
- ``backward(grad_y)`` returns grad_x and ADDS the parameter gradients to
  ``Parameter.grad``, so several mini-batches can be summed; ``zero_grad()``
  clears them. Gradients of the batch are summed inside the kernels (the loss
  divides by N).
- A layer with ``requires_grad = False`` (frozen) leaves its parameters'
  gradients alone; a layer with ``need_grad_x = False`` skips its grad-input
  and returns None, and a Sequential stops there (use it on the first layer).
- Convolutions take ``activation="relu6"`` (or "relu"), fused into their
  forward; inside a Sequential, the next convolution then folds that
  activation's backward into its own grad-input (the gradients are bitwise
  those of separate ReLU6 layers; a layer shared between containers would
  need its flags reset).
- Inside ``with nn.inference():`` a Sequential drops each layer's cache as
  soon as the next layer has its output, so evaluation holds one activation
  at a time instead of all of them (``backward`` then needs a new forward).
- With an L1 budget set (``with pulptrain.tile.l1_budget(128 * 1024):``),
  the convolutions and linear layers run through the tiled, double-buffered
  executor (pulptrain.tile), bitwise the same.
- Weights are initialised with He (Kaiming) normal, std = sqrt(2 / fan_in),
  from a seeded generator: pass ``rng`` (a numpy Generator or an int seed) or
  call ``manual_seed``; biases start at 0.

Layouts: activations NHWC; Conv2d weight [Cout, KH, KW, Cin], DepthwiseConv2d
[KH, KW, C], PointwiseConv2d [Cout, Cin], Linear [Out, In].
"""
from __future__ import annotations

import contextlib
import math
import numbers
import threading
from collections import OrderedDict

import numpy as np

from pulptrain import ops, tile
from pulptrain._validate import as_f32, finite_float, pair, positive_int

__all__ = ["Parameter", "Module", "Conv2d", "DepthwiseConv2d", "PointwiseConv2d", "Linear", "ReLU", "ReLU6",
           "ChannelAffine", "AvgPool2d", "GlobalAvgPool", "Flatten", "Sequential", "SoftmaxCrossEntropy", "SGD",
           "manual_seed", "inference"]

_default_rng = np.random.default_rng(0)
_mode = threading.local()
# What a layer's forward keeps for its backward.
CACHE_ATTRS = ("_x", "_y", "_cache")


@contextlib.contextmanager
def inference():
    """Forward passes inside keep nothing for backward (per thread)."""
    previous = getattr(_mode, "inference", False)
    _mode.inference = True
    try:
        yield
    finally:
        _mode.inference = previous


def _in_inference() -> bool:
    return getattr(_mode, "inference", False)


def manual_seed(seed: int) -> None:
    """Reseed the generator layers draw their initial weights from (when no
    ``rng`` is given)."""
    global _default_rng
    _default_rng = np.random.default_rng(positive_int("seed", seed, minimum=0))


def _generator(rng) -> np.random.Generator:
    if rng is None:
        return _default_rng
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def _he_normal(shape, fan_in: int, rng) -> np.ndarray:
    return (_generator(rng).standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)


class Parameter:
    """A trainable float32 array with its gradient (same shape, starts at 0)."""

    def __init__(self, data: np.ndarray, name: str = "", requires_grad: bool = True):
        self.data = np.array(as_f32(name or "data", data), dtype=np.float32, copy=True)
        self.grad = np.zeros_like(self.data)
        self.name = name
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    def zero_grad(self) -> None:
        self.grad.fill(0.0)

    def accumulate(self, grad: np.ndarray) -> None:
        if self.requires_grad:
            self.grad += grad

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.data.shape}, requires_grad={self.requires_grad})"


class Module:
    """Base class: ``forward``, ``backward``, parameters and their state."""

    def __init__(self):
        self._params: OrderedDict[str, Parameter] = OrderedDict()
        self.need_grad_x = True

    def _add_param(self, name: str, data: np.ndarray, requires_grad: bool = True) -> Parameter:
        param = Parameter(data, name, requires_grad)
        self._params[name] = param
        return param

    # ---- the training interface
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_y: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def release(self) -> None:
        """Drop what forward kept for backward."""
        for attr in CACHE_ATTRS:
            if getattr(self, attr, None) is not None:
                setattr(self, attr, None)
        for child in getattr(self, "layers", {}).values():
            child.release()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # ---- parameters
    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        return [(prefix + name, p) for name, p in self._params.items()]

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    @property
    def requires_grad(self) -> bool:
        """True when any parameter is trained; setting it freezes or unfreezes all."""
        return any(p.requires_grad for p in self.parameters())

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        for p in self.parameters():
            p.requires_grad = bool(flag)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> OrderedDict:
        """Parameter name -> a copy of its data."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy float32 arrays into the parameters of the same names. With
        ``strict``, missing and unexpected names raise KeyError; a wrong shape
        raises ValueError naming the parameter."""
        params = OrderedDict(self.named_parameters())
        if strict:
            missing = [k for k in params if k not in state]
            unexpected = [k for k in state if k not in params]
            if missing or unexpected:
                raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        for name, p in params.items():
            if name not in state:
                continue
            value = as_f32(f"state[{name!r}]", state[name])
            if value.shape != p.data.shape:
                raise ValueError(f"state[{name!r}] has shape {value.shape}, the parameter has {p.data.shape}")
            p.data[...] = value

    def _cached(self, attr: str):
        value = getattr(self, attr, None)
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return value


# -------------------------------------------------------------------- layers
class _WeightLayer(Module):
    """Common parts of the layers with a weight and an optional bias."""

    def __init__(self, weight: np.ndarray, out_channels: int, bias: bool, activation=None):
        super().__init__()
        self.weight = self._add_param("weight", weight)
        self.bias = self._add_param("bias", np.zeros(out_channels, np.float32)) if bias else None
        ops._activation(activation)                  # raises for an unknown name
        self.activation = activation
        # Set by a Sequential when this layer's input is the previous layer's
        # fused activation output: grad_x then comes out with respect to that
        # activation's input (masked in the kernel), and the previous layer
        # skips its own mask (_act_backward_done).
        self.input_activation = None
        self._act_backward_done = False
        self._x = None
        self._y = None                               # the activated output, for its backward

    def _forward_with(self, forward_fn, x, *args):
        self._x = x
        if self.activation is None:
            return forward_fn(x, self.weight.data, self._bias_data(), *args)
        self._y = forward_fn(x, self.weight.data, self._bias_data(), *args, activation=self.activation)
        return self._y

    def _bias_data(self):
        return None if self.bias is None else self.bias.data

    def _backward_with(self, backward_fn, grad_y, *args):
        x = self._cached("_x")
        trains = self.requires_grad
        if not trains and not self.need_grad_x:
            return None
        if self.activation is not None and not self._act_backward_done:   # through the fused activation
            grad_y = ops._act_backward(self._cached("_y"), grad_y, self.activation == "relu6", False)
        extra = {"input_activation": self.input_activation} if self.input_activation else {}
        grad_x, grad_w, grad_b = backward_fn(x, self.weight.data, grad_y, *args, need_grad_x=self.need_grad_x,
                                             **extra)
        self.weight.accumulate(grad_w)
        if self.bias is not None:
            self.bias.accumulate(grad_b)
        return grad_x


class Conv2d(_WeightLayer):
    """Dense convolution; weight [Cout, KH, KW, Cin]."""

    def __init__(self, in_c: int, out_c: int, kernel_size, stride=1, padding=0, bias: bool = True, *, rng=None):
        in_c, out_c = positive_int("in_c", in_c), positive_int("out_c", out_c)
        kh, kw = pair("kernel_size", kernel_size)
        super().__init__(_he_normal((out_c, kh, kw, in_c), in_c * kh * kw, rng), out_c, bias)
        self.stride, self.padding = pair("stride", stride), padding

    def forward(self, x):
        self._x = x
        return tile.conv2d_forward(x, self.weight.data, self._bias_data(), self.stride, self.padding)

    def backward(self, grad_y):
        return self._backward_with(tile.conv2d_backward, grad_y, self.stride, self.padding)


class DepthwiseConv2d(_WeightLayer):
    """Depthwise convolution; weight [KH, KW, C]. ``activation`` (None,
    "relu" or "relu6") is fused into the kernel's output."""

    def __init__(self, channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *, rng=None,
                 activation=None):
        channels = positive_int("channels", channels)
        kh, kw = pair("kernel_size", kernel_size)
        super().__init__(_he_normal((kh, kw, channels), kh * kw, rng), channels, bias, activation)
        self.stride, self.padding = pair("stride", stride), padding

    def forward(self, x):
        return self._forward_with(tile.depthwise_conv2d_forward, x, self.stride, self.padding)

    def backward(self, grad_y):
        return self._backward_with(tile.depthwise_conv2d_backward, grad_y, self.stride, self.padding)


class PointwiseConv2d(_WeightLayer):
    """1x1 convolution; weight [Cout, Cin]. ``activation`` (None, "relu" or
    "relu6") is fused into the GEMM's output pass."""

    def __init__(self, in_c: int, out_c: int, bias: bool = True, *, rng=None, activation=None):
        in_c, out_c = positive_int("in_c", in_c), positive_int("out_c", out_c)
        super().__init__(_he_normal((out_c, in_c), in_c, rng), out_c, bias, activation)

    def forward(self, x):
        return self._forward_with(tile.pointwise_conv2d_forward, x)

    def backward(self, grad_y):
        return self._backward_with(tile.pointwise_conv2d_backward, grad_y)


class Linear(_WeightLayer):
    """Fully connected layer; x [N, In], weight [Out, In]."""

    def __init__(self, in_f: int, out_f: int, bias: bool = True, *, rng=None):
        in_f, out_f = positive_int("in_f", in_f), positive_int("out_f", out_f)
        super().__init__(_he_normal((out_f, in_f), in_f, rng), out_f, bias)

    def forward(self, x):
        self._x = x
        return tile.linear_forward(x, self.weight.data, self._bias_data())

    def backward(self, grad_y):
        return self._backward_with(tile.linear_backward, grad_y)


class ChannelAffine(Module):
    """y = x * scale[c] + shift[c]: a folded BatchNorm, frozen unless
    ``trainable``. scale starts at 1, shift at 0."""

    def __init__(self, c: int, trainable: bool = False):
        super().__init__()
        c = positive_int("c", c)
        self.scale = self._add_param("scale", np.ones(c, np.float32), trainable)
        self.shift = self._add_param("shift", np.zeros(c, np.float32), trainable)
        self._x = None

    def forward(self, x):
        self._x = x
        return tile.channel_affine_forward(x, self.scale.data, self.shift.data)

    def backward(self, grad_y):
        x = self._cached("_x")
        if not self.requires_grad:
            if not self.need_grad_x:
                return None
            if np.shape(grad_y) != np.shape(x):
                raise ValueError(f"grad_y must have the shape of x {np.shape(x)}, got {np.shape(grad_y)}")
            # grad_x = grad_y * scale: the forward map without shift
            return tile.channel_affine_forward(grad_y, self.scale.data, np.zeros_like(self.shift.data))
        grad_x, grad_scale, grad_shift = tile.channel_affine_backward(x, self.scale.data, grad_y,
                                                                      need_grad_x=self.need_grad_x)
        self.scale.accumulate(grad_scale)
        self.shift.accumulate(grad_shift)
        return grad_x


class _Stateless(Module):
    """A layer without parameters that caches one array in forward."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def backward(self, grad_y):
        cache = self._cached("_cache")
        return self._backward(cache, grad_y) if self.need_grad_x else None


class ReLU(_Stateless):
    def forward(self, x):
        self._cache = ops.relu_forward(x)
        return self._cache

    def _backward(self, y, grad_y):
        return ops.relu_backward(y, grad_y)


class ReLU6(_Stateless):
    def forward(self, x):
        self._cache = ops.relu6_forward(x)
        return self._cache

    def _backward(self, y, grad_y):
        return ops.relu6_backward(y, grad_y)


class AvgPool2d(_Stateless):
    """Average over KH x KW windows, no padding; stride defaults to the kernel size."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair("kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("stride", stride)

    def forward(self, x):
        self._cache = np.shape(x)
        return tile.avg_pool2d_forward(x, self.kernel_size, self.stride)

    def _backward(self, shape, grad_y):
        return tile.avg_pool2d_backward(shape, grad_y, self.kernel_size, self.stride)


class GlobalAvgPool(_Stateless):
    """[N, H, W, C] -> [N, C] by averaging over H and W. In a Sequential
    after a layer with a fused activation it masks its grad-input by that
    activation (``input_activation``), as the convolutions do."""

    def __init__(self):
        super().__init__()
        self.input_activation = None

    def forward(self, x):
        # the mask needs x itself (the previous layer's output, kept anyway)
        self._cache = x if self.input_activation else np.shape(x)
        return tile.global_avg_pool_forward(x)

    def _backward(self, x_or_shape, grad_y):
        return tile.global_avg_pool_backward(x_or_shape, grad_y, input_activation=self.input_activation)


class Flatten(_Stateless):
    """[N, ...] -> [N, prod(...)] (NHWC order)."""

    def forward(self, x):
        x = as_f32("x", x)
        if x.ndim == 0:
            raise ValueError("x must be [N, ...], got a 0-d array")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def _backward(self, shape, grad_y):
        grad_y = as_f32("grad_y", grad_y, 2)
        want = (shape[0], math.prod(shape[1:]))
        if grad_y.shape != want:
            raise ValueError(f"grad_y must have shape {want}, got {grad_y.shape}")
        return grad_y.reshape(shape)


# --------------------------------------------------------------------- model
class Sequential(Module):
    """Layers applied in order: ``Sequential(l1, l2, ...)`` (named "0", "1",
    ...) or ``Sequential(("conv5_4/dw", l1), ("conv5_4/pw", l2), ...)``.
    Parameters are named "<layer>.<param>", e.g. "conv5_4/pw.weight". Index
    by position or name. Setting ``need_grad_x`` sets it on the first layer."""

    def __init__(self, *layers):
        super().__init__()
        named = OrderedDict()
        for i, item in enumerate(layers):
            name, layer = (item if isinstance(item, tuple) else (str(i), item))
            if not isinstance(layer, Module):
                raise TypeError(f"layer {name!r} must be a pulptrain.nn.Module, got {type(layer).__name__}")
            if not isinstance(name, str) or not name or name in named:
                raise ValueError(f"layer names must be unique non-empty strings, got {name!r}")
            named[name] = layer
        if not named:
            raise ValueError("Sequential needs at least one layer")
        self.layers = named
        # A conv whose input is a fused activation's output masks its grad-input
        # by it (one pass over the tensor fewer); bitwise the unfused gradients.
        chain = list(named.values())
        for prev, layer in zip(chain, chain[1:]):
            if (getattr(prev, "activation", None) is not None
                    and isinstance(layer, (PointwiseConv2d, DepthwiseConv2d, GlobalAvgPool))):
                layer.input_activation = prev.activation
                prev._act_backward_done = True
        for name, p in self.named_parameters():
            p.name = name

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers.values())

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.layers[key]
        return list(self.layers.values())[key]

    def named_children(self):
        return list(self.layers.items())

    def named_parameters(self, prefix: str = ""):
        out = []
        for name, layer in self.layers.items():
            out += layer.named_parameters(f"{prefix}{name}.")
        return out

    @property
    def need_grad_x(self) -> bool:
        return next(iter(self.layers.values())).need_grad_x if hasattr(self, "layers") else True

    @need_grad_x.setter
    def need_grad_x(self, flag: bool) -> None:
        if hasattr(self, "layers"):
            next(iter(self.layers.values())).need_grad_x = bool(flag)

    def forward(self, x):
        drop = _in_inference()
        for layer in self.layers.values():
            x = layer.forward(x)
            if drop:
                layer.release()
        return x

    def backward(self, grad_y):
        grad = grad_y
        for layer in reversed(list(self.layers.values())):
            grad = layer.backward(grad)
            if grad is None:
                return None
        return grad


# ---------------------------------------------------------------- loss, SGD
class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy over the batch. ``forward(logits, labels)``
    returns the loss (a float) and caches its inputs; ``backward()`` returns
    grad_logits = (softmax - onehot) / N."""

    def __init__(self):
        self._logits = self._labels = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        loss = ops.softmax_cross_entropy_forward(logits, labels)
        self._logits, self._labels = logits, labels
        return loss

    __call__ = forward

    def backward(self, grad_loss: float = 1.0) -> np.ndarray:
        if self._logits is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        grad = ops.softmax_cross_entropy_backward(self._logits, self._labels)
        if grad_loss != 1.0:
            grad *= np.float32(finite_float("grad_loss", grad_loss))
        return grad


class SGD:
    """Stochastic gradient descent with momentum and weight decay, PyTorch's
    update (dampening 0, no Nesterov), run by the C kernel in place:
    g = grad + weight_decay * w; v = momentum * v + g; w -= lr * v.
    Parameters with requires_grad False are skipped. ``lr`` may be changed
    between steps."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
        if isinstance(params, Module):
            params = params.parameters()
        self.params = list(params)
        if not self.params or not all(isinstance(p, Parameter) for p in self.params):
            raise TypeError("params must be a non-empty sequence of pulptrain.nn.Parameter (or a Module)")
        self.lr = finite_float("lr", lr, minimum=0.0)
        self.momentum = finite_float("momentum", momentum, minimum=0.0)
        self.weight_decay = finite_float("weight_decay", weight_decay, minimum=0.0)
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        lr = finite_float("lr", self.lr, minimum=0.0)
        for p, v in zip(self.params, self.velocity):
            if p.requires_grad:
                ops.sgd_step(p.data, p.grad, v, lr, self.momentum, self.weight_decay)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def state_dict(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "velocity": [v.copy() for v in self.velocity]}

    def load_state_dict(self, state: dict) -> None:
        velocity = state["velocity"]
        if len(velocity) != len(self.params):
            raise ValueError(f"state has {len(velocity)} velocity buffers, the optimizer {len(self.params)}")
        for i, (v, p) in enumerate(zip(velocity, self.params)):
            v = as_f32(f"velocity[{i}]", v)
            if v.shape != p.data.shape:
                raise ValueError(f"velocity[{i}] has shape {v.shape}, the parameter has {p.data.shape}")
        self.lr = finite_float("lr", state["lr"], minimum=0.0)
        self.momentum = finite_float("momentum", state["momentum"], minimum=0.0)
        self.weight_decay = finite_float("weight_decay", state["weight_decay"], minimum=0.0)
        self.velocity = [np.array(v, dtype=np.float32, copy=True) for v in velocity]
