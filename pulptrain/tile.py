"""Tiling a layer's training step into a small L1 scratchpad.

A PULP cluster computes on its L1 (TCDM: 128 KiB on VEGA, 64 KiB in the
pulp-open model) while activations and weights sit in L2. :func:`plan` asks the
C planner (csrc/tile) for the tile sizes that fit a budget with double
buffering at the lowest cost (bytes moved L2 <-> L1, plus PT_TILE_CALL_BYTES
= 1 KiB per tile for its DMA commands and kernel call), and reports them;
:func:`run` executes one step through the tiled, double-buffered executor,
which is bitwise equal to the untiled kernels (pulptrain.ops).

Steps are ``"forward"``, ``"grad_input"`` and ``"grad_weight"`` (the pools,
which have no weights, only the first two). Array layouts are those of
:mod:`pulptrain.ops`: NHWC activations, pointwise w [Cout, Cin], depthwise
w [KH, KW, C], conv2d w [Cout, KH, KW, Cin], linear x [N, In] and w [Out, In];
a global average pool's y is [N, C]; the channel affine map's "w" is its
scale [C] and its "b" its shift [C] (required), x [N, H, W, C].
"""
from __future__ import annotations

import atexit
import math
from dataclasses import dataclass, field, replace

import numpy as np

from pulptrain import _alloc, _tile, ops
from pulptrain._threads import get_num_threads
from pulptrain._validate import as_f32, conv_output_hw, conv_padding, positive_int, same_shape
from pulptrain.errors import StatusError

STEPS = ("forward", "grad_input", "grad_weight")
KINDS = ("linear", "pointwise", "depthwise", "conv2d", "avg_pool", "global_avg_pool", "channel_affine")
_WINDOWED = ("depthwise", "conv2d", "avg_pool")
_POOLS = ("avg_pool", "global_avg_pool")
ACTIVATIONS = ops.ACTIVATIONS    # Layer.activation / input_activation -> pt_act
VEGA_L1_BYTES = 128 * 1024
PULP_OPEN_L1_BYTES = 64 * 1024
_GUARD = 64
_CANARY = 0xA5


@dataclass(frozen=True)
class Layer:
    """One layer to tile. ``kind`` is "linear" (x [n, cin] -> [n, cout]),
    "pointwise" (x [n, h, w, cin] -> [n, h, w, cout]), "depthwise"
    (``cout == cin``, a ``k`` x ``k`` window, ``stride``, ``padding`` as in
    pulptrain.ops: int, (top, bottom, left, right) or "same"), "conv2d"
    (dense, im2col: a ``k`` x ``k`` window over all ``cin`` channels),
    "avg_pool" (``k`` x ``k`` windows moved by ``stride``, no padding, no
    weights), "global_avg_pool" (the mean over h and w: y [n, cin]) or
    "channel_affine" (y = x * scale + shift per channel: w = scale, b =
    shift, which it always has). ``activation`` ("relu", "relu6" or None)
    is applied by the forward to each finished output tile while it is in
    L1, as the fused kernels of pulptrain.ops do (not for the pools and the
    affine map); the backward steps take grad_y as it is.
    ``input_activation`` (not for conv2d and the affine map) is the
    activation whose output is x: grad_input then takes x as its last array
    and returns grad_x through it, each tile masked in L1 with x's tile
    fetched beside it, as ops' ``input_activation=`` does."""
    kind: str
    n: int
    h: int
    w: int
    cin: int
    cout: int
    k: int = 1
    stride: int = 1
    padding: int | tuple | str = 0
    bias: bool = True
    activation: str | None = None      # forward: "relu" / "relu6" on each finished tile in L1
    input_activation: str | None = None  # grad_input: through the activation that made x, in L1
    name: str = field(default="", compare=False)

    @classmethod
    def linear(cls, batch: int, in_features: int, out_features: int, bias: bool = True, name: str = "",
               activation: str | None = None):
        return cls("linear", batch, 1, 1, in_features, out_features, bias=bias, activation=activation, name=name)

    @classmethod
    def pointwise(cls, n: int, h: int, w: int, cin: int, cout: int, bias: bool = True, name: str = "",
                  activation: str | None = None):
        return cls("pointwise", n, h, w, cin, cout, bias=bias, activation=activation, name=name)

    @classmethod
    def depthwise(cls, n: int, h: int, w: int, c: int, k: int = 3, stride: int = 1, padding=1,
                  bias: bool = True, name: str = "", activation: str | None = None):
        return cls("depthwise", n, h, w, c, c, k, stride, padding, bias, activation=activation, name=name)

    @classmethod
    def avg_pool(cls, n: int, h: int, w: int, c: int, k: int, stride: int | None = None, name: str = ""):
        return cls("avg_pool", n, h, w, c, c, k, k if stride is None else stride, 0, False, name=name)

    @classmethod
    def global_avg_pool(cls, n: int, h: int, w: int, c: int, name: str = ""):
        return cls("global_avg_pool", n, h, w, c, c, bias=False, name=name)

    @classmethod
    def channel_affine(cls, n: int, h: int, w: int, c: int, name: str = ""):
        return cls("channel_affine", n, h, w, c, c, name=name)

    @classmethod
    def conv2d(cls, n: int, h: int, w: int, cin: int, cout: int, k: int = 3, stride: int = 1, padding=1,
               bias: bool = True, name: str = "", activation: str | None = None):
        return cls("conv2d", n, h, w, cin, cout, k, stride, padding, bias, activation=activation, name=name)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        for attr in ("n", "h", "w", "cin", "cout", "k", "stride"):
            positive_int(attr, getattr(self, attr))
        if self.kind == "linear" and (self.h, self.w) != (1, 1):
            raise ValueError("a linear layer has h = w = 1")
        if self.kind not in _WINDOWED and (self.k, self.stride, self.pads) != (1, 1, (0, 0, 0, 0)):
            raise ValueError(f"a {self.kind} layer has k = stride = 1 and no padding")
        if self.kind in ("depthwise", "channel_affine") + _POOLS and self.cout != self.cin:
            raise ValueError(f"a {self.kind} layer has cout == cin, got {self.cout} != {self.cin}")
        if self.kind in _POOLS and (self.bias or self.pads != (0, 0, 0, 0)):
            raise ValueError(f"a {self.kind} layer has no bias and no padding")
        if self.kind == "channel_affine" and not self.bias:
            raise ValueError("a channel_affine layer has a shift (bias=True)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        if self.activation is not None and self.kind in _POOLS + ("channel_affine",):
            raise ValueError(f"a {self.kind} layer takes no activation")
        if self.input_activation not in ACTIVATIONS:
            raise ValueError(f"input_activation must be one of {tuple(ACTIVATIONS)}, "
                             f"got {self.input_activation!r}")
        if self.input_activation is not None and self.kind not in ("linear", "pointwise", "depthwise") + _POOLS:
            raise ValueError(f"a {self.kind} layer takes no input_activation")
        conv_output_hw((self.h, self.w), (self.k, self.k), (self.stride, self.stride), self.pads)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        return conv_padding(self.padding, (self.h, self.w), (self.k, self.k), (self.stride, self.stride))

    @property
    def steps(self) -> tuple[str, ...]:
        """The layer's training steps: all three, or for the pools (no
        weights) forward and grad_input."""
        return STEPS[:2] if self.kind in _POOLS else STEPS

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind == "global_avg_pool":
            return 1, 1
        return conv_output_hw((self.h, self.w), (self.k, self.k), (self.stride, self.stride), self.pads)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of x, w, b and y."""
        oh, ow = self.out_hw
        if self.kind == "linear":
            return {"x": (self.n, self.cin), "w": (self.cout, self.cin), "b": (self.cout,),
                    "y": (self.n, self.cout)}
        if self.kind in _POOLS:
            y = (self.n, self.cin) if self.kind == "global_avg_pool" else (self.n, oh, ow, self.cin)
            return {"x": (self.n, self.h, self.w, self.cin), "y": y}
        w = {"depthwise": (self.k, self.k, self.cin), "conv2d": (self.cout, self.k, self.k, self.cin),
             "channel_affine": (self.cin,)}.get(self.kind, (self.cout, self.cin))
        return {"x": (self.n, self.h, self.w, self.cin), "w": w, "b": (self.cout,),
                "y": (self.n, oh, ow, self.cout)}

    def _params(self) -> tuple:
        if self.kind == "global_avg_pool":     # the window is the whole map
            return (self.kind, self.n, self.h, self.w, self.cin, self.cout, self.h, self.w, 1, 1, 0, 0, 0, 0, False,
                    0, ACTIVATIONS[self.input_activation])
        return (self.kind, self.n, self.h, self.w, self.cin, self.cout, self.k, self.k, self.stride,
                self.stride, *self.pads, bool(self.bias), ACTIVATIONS[self.activation],
                ACTIVATIONS[self.input_activation])


@dataclass(frozen=True)
class TilePlan:
    """The planner's choice for one step of one layer, and what it costs.

    ``tile`` holds m/n/k tile sizes and the loop order (outermost first) of
    the GEMM view for linear and pointwise layers, images/rows/channels for
    depthwise, the pools and the channel affine map. For conv2d (pt_tile.h): forward and grad_weight give the
    GEMM view's m/n/k and loop order (forward: m output pixels x n filters
    per tile, k the whole patch; grad_weight: m filters, k pixels per tile,
    n columns of the patch per GEMM, "mkn" keeping a block of filters' sums
    in L1, "kmn" all of grad_w) and grad_input images/rows/channels plus the
    columns of the patch (of w) per GEMM. ``lower_bound_bytes`` moves every operand of the step once;
    ``io_lower_bound_bytes`` adds, for GEMMs, the communication bound of any
    schedule with ``l1_budget`` bytes of fast memory, 2 M N K / sqrt(S) - 2 S
    words (Hong & Kung 1981; constant from Smith et al., 2019)."""
    layer: Layer
    step: str
    l1_budget: int
    l1_bytes: int
    tile: dict
    num_tiles: int
    bytes_in: int
    bytes_out: int
    lower_bound_bytes: int
    io_lower_bound_bytes: int
    macs: int

    @property
    def bytes_moved(self) -> int:
        return self.bytes_in + self.bytes_out

    @property
    def ratio_to_bound(self) -> float:
        return self.bytes_moved / self.lower_bound_bytes

    @property
    def arithmetic_intensity(self) -> float:
        """Multiply-adds per byte moved between L2 and L1."""
        return self.macs / self.bytes_moved

    def to_dict(self) -> dict:
        return {"layer": self.layer.name or self.layer.kind, "kind": self.layer.kind, "step": self.step,
                "l1_budget": self.l1_budget, "l1_bytes": self.l1_bytes, "tile": dict(self.tile),
                "num_tiles": self.num_tiles, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out,
                "bytes_moved": self.bytes_moved, "lower_bound_bytes": self.lower_bound_bytes,
                "io_lower_bound_bytes": self.io_lower_bound_bytes, "ratio_to_bound": self.ratio_to_bound,
                "macs": self.macs, "arithmetic_intensity": self.arithmetic_intensity}


def _step(step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, got {step!r}")
    return step


def _budget(l1_bytes) -> int:
    return positive_int("l1_bytes", l1_bytes)


def plan(layer: Layer, step: str, l1_bytes: int) -> TilePlan:
    """Tile sizes for ``step`` of ``layer`` in an L1 of ``l1_bytes`` bytes.

    Raises pulptrain.errors.StatusError (PT_ERR_BUDGET) when not even the
    smallest tile fits; :func:`min_l1_bytes` gives the smallest budget that
    does."""
    step, budget = _step(step), _budget(l1_bytes)
    if step not in layer.steps:
        raise ValueError(f"step {step!r}: a {layer.kind} layer has no weights, so no grad_weight step")
    try:
        d = _tile.plan(layer._params(), step, budget)
    except StatusError as e:
        if e.status != _tile.ERR_BUDGET:
            raise
        need = min_l1_bytes(layer, step)
        raise StatusError(e.status, "pulptrain.tile.plan",
                          f"{layer.name or layer.kind} {step} does not fit in an L1 budget of {budget} bytes; "
                          f"its smallest tile needs {need} bytes") from None
    if layer.kind in ("depthwise", "channel_affine") + _POOLS or (layer.kind == "conv2d" and step == "grad_input"):
        images, rows, channels = d["tile_depthwise"]
        tile = {"images": images, "rows": rows, "channels": channels}
        if layer.kind == "conv2d":
            tile["columns"] = d["tile_gemm"][1]
        io_bound = d["lower_bound_bytes"]
    elif layer.kind == "conv2d":
        (m, n, k), (tm, tn, tk) = d["gemm"], d["tile_gemm"]
        tile = {"m": tm, "n": tn, "k": tk, "order": d["order"], "gemm": (m, n, k)}
        io_bound = d["lower_bound_bytes"]
    else:
        (m, n, k), (tm, tn, tk) = d["gemm"], d["tile_gemm"]
        tile = {"m": tm, "n": tn, "k": tk, "order": d["order"], "gemm": (m, n, k)}
        words = budget / 4.0
        io_bound = max(d["lower_bound_bytes"], int(4 * (2.0 * m * n * k / math.sqrt(words) - 2.0 * words)))
    return TilePlan(layer, step, budget, d["l1_bytes"], tile, d["num_tiles"], d["bytes_in"], d["bytes_out"],
                    d["lower_bound_bytes"], io_bound, d["macs"])


def min_l1_bytes(layer: Layer, step: str) -> int:
    """The smallest L1 budget :func:`plan` accepts for this step."""
    if _step(step) not in layer.steps:
        raise ValueError(f"step {step!r}: a {layer.kind} layer has no weights, so no grad_weight step")
    return int(_tile.min_l1_bytes(layer._params(), _step(step)))


def training_step(layer: Layer, l1_bytes: int) -> list[TilePlan]:
    """Plans of the steps of one training iteration of ``layer`` (three; two
    for the pools, which have no weights)."""
    return [plan(layer, step, l1_bytes) for step in layer.steps]



def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


class TiledStep:
    """``step`` of ``layer`` planned for an L1 of ``l1_bytes`` bytes, ready to
    run many times (the plan and the fenced L1 region are made once)."""

    def __init__(self, layer: Layer, step: str, l1_bytes: int):
        self.layer, self.step = layer, _step(step)
        budget = _budget(l1_bytes)
        self.plan = plan(layer, self.step, budget)
        self._executor = _tile.Executor(layer._params(), self.step, budget)
        self._l1 = np.full(budget + 2 * _GUARD + _tile.ALIGN, _CANARY, np.uint8)
        self._offset = _GUARD + (-(self._l1.ctypes.data + _GUARD)) % _tile.ALIGN
        self._budget = budget

    def __call__(self, *arrays, stats: dict | None = None):
        step, shapes = self.step, self.layer.shapes()
        names = {"forward": ("x", "w", "b"), "grad_input": ("w", "grad_y"), "grad_weight": ("x", "grad_y")}[step]
        pool = self.layer.kind in _POOLS
        if pool:
            names = {"forward": ("x",), "grad_input": ("grad_y",)}[step]
        masked = step == "grad_input" and self.layer.input_activation is not None
        if masked:
            names += ("x",)
        if len(arrays) != len(names):
            raise TypeError(f"{step} takes {len(names)} arrays ({', '.join(names)}), got {len(arrays)}")
        checked = []
        for name, a in zip(names, arrays):
            if name == "b" and a is None:
                checked.append(None)
                continue
            want = shapes["y" if name == "grad_y" else name]
            a = as_f32(name, a, len(want))
            if a.shape != want:
                raise ValueError(f"{name} has shape {a.shape}, the layer needs {want}")
            checked.append(_flat(a))
        if step == "forward" and not pool and checked[2] is not None and not self.layer.bias:
            raise ValueError("b given for a layer without bias")
        out_shape = {"forward": shapes["y"], "grad_input": shapes["x"], "grad_weight": shapes.get("w")}[step]
        out = _alloc.empty(out_shape, np.float32)
        grad_b = _alloc.empty(shapes["b"], np.float32) if step == "grad_weight" and self.layer.bias else None
        bias = checked[2] if step == "forward" and not pool else None
        mask = checked[-1] if masked else None
        if pool:    # no weights: the executor takes (x, None) or (None, grad_y)
            checked = [checked[0], None] if step == "forward" else [None, checked[0]]
        moved = self._executor.run(self._l1, self._offset, checked[0], checked[1], bias, _flat(out), grad_b,
                                   get_num_threads(), mask)
        end = self._offset + self._budget
        if (self._l1[:self._offset] != _CANARY).any() or (self._l1[end:] != _CANARY).any():
            raise RuntimeError("the tiled executor wrote outside its L1 budget")
        if stats is not None:
            stats["plan"] = self.plan
            stats["bytes_moved"] = int(moved)
        return (out, grad_b) if step == "grad_weight" else out


def run(layer: Layer, step: str, l1_bytes: int, *arrays, stats: dict | None = None):
    """Run ``step`` of ``layer`` tiled into an L1 region of ``l1_bytes`` bytes.

    forward(x, w, b) -> y; grad_input(w, grad_y) -> grad_x (grad_input(w,
    grad_y, x) for a layer with an input_activation);
    grad_weight(x, grad_y) -> (grad_w, grad_b) (grad_b None without a bias);
    b may be None. The pools: forward(x) -> y, grad_input(grad_y) -> grad_x
    (grad_input(grad_y, x) with an input_activation). The region is fenced
    by canary bytes, checked afterwards (RuntimeError if the executor wrote
    outside the budget). ``stats``, when given, receives the plan and the
    bytes the DMA actually moved."""
    return TiledStep(layer, step, l1_bytes)(*arrays, stats=stats)


# --------------------------------------------- ops-compatible, budget-aware
# Drop-in versions of the pulptrain.ops layer functions: with an L1 budget set
# (set_l1_budget / l1_budget) they run through the tiled executor, otherwise
# they are the untiled ops. pulptrain.nn calls these, so a budget set here
# runs a whole model tiled. With a budget, ``activation`` is applied by the
# tiled forward to each finished output tile in L1 (Layer.activation) and
# ``input_activation`` by the tiled grad-input, x's tile fetched beside each
# grad_x tile (Layer.input_activation), as the fused kernels do. Results are
# bitwise the same either way.
_l1_budget: int | None = None
_prepared: dict = {}
_PREPARED_MAX = 64


def set_l1_budget(l1_bytes: int | None) -> None:
    """Run the layer functions of this module (and so pulptrain.nn) tiled into
    ``l1_bytes`` (None: untiled)."""
    global _l1_budget
    _l1_budget = None if l1_bytes is None else _budget(l1_bytes)


def get_l1_budget() -> int | None:
    return _l1_budget


class l1_budget:  # noqa: N801 - used like a function: ``with tile.l1_budget(128 * 1024):``
    """Context manager: set the L1 budget inside a ``with`` block."""

    def __init__(self, l1_bytes: int | None):
        self._new, self._old = l1_bytes, None

    def __enter__(self):
        self._old = _l1_budget
        set_l1_budget(self._new)
        return self

    def __exit__(self, *exc):
        set_l1_budget(self._old)
        return False


DMA_BACKENDS = ("memcpy", "thread")


def set_dma(backend: str) -> None:
    """How the tiled executor's copies run natively. "memcpy" (the default)
    copies when a transfer is issued, on the calling core, so nothing
    overlaps; "thread" queues each transfer to a helper thread that copies
    while the cores compute, as a cluster DMA engine does, so the double
    buffering overlaps the next tile's copy with this tile's compute (it
    takes a core of its own: use one compute thread fewer). Results are
    bitwise the same either way. Do not switch while a tiled step runs."""
    if backend not in DMA_BACKENDS:
        raise ValueError(f"backend must be one of {DMA_BACKENDS}, got {backend!r}")
    _tile.set_dma_thread(backend == "thread")


def get_dma() -> str:
    return "thread" if _tile.dma_thread_running() else "memcpy"


class dma:  # noqa: N801 - used like a function: ``with tile.dma("thread"):``
    """Context manager: set the DMA backend inside a ``with`` block."""

    def __init__(self, backend: str):
        self._new, self._old = backend, None

    def __enter__(self):
        self._old = get_dma()
        set_dma(self._new)
        return self

    def __exit__(self, *exc):
        set_dma(self._old)
        return False


atexit.register(_tile.set_dma_thread, False)     # drain and join the engine before the interpreter goes


def _tiled(layer: Layer, step: str) -> TiledStep:
    key = (layer, step, _l1_budget)
    prepared = _prepared.get(key)
    if prepared is None:
        if len(_prepared) >= _PREPARED_MAX:
            _prepared.pop(next(iter(_prepared)))
        prepared = _prepared[key] = TiledStep(layer, step, _l1_budget)
    return prepared


def _through_input_activation(x, grad_x, input_activation):
    """grad_x through the activation whose output is x (None: as it is)."""
    ops._activation(input_activation, "input_activation")   # raises for an unknown name
    if grad_x is None or input_activation is None:
        return grad_x
    return ops._act_backward(x, grad_x, input_activation == "relu6", False)


def _backward(layer: Layer, x, w, grad_y, need_grad_x: bool, input_activation):
    """grad_x (through input_activation, masked in L1 by the tiled grad_input:
    Layer.input_activation), grad_w and grad_b."""
    ops._activation(input_activation, "input_activation")   # raises for an unknown name, as ops does
    grad_x = None
    if need_grad_x and input_activation is None:
        grad_x = _tiled(layer, "grad_input")(w, grad_y)
    elif need_grad_x:
        grad_x = _tiled(replace(layer, input_activation=input_activation), "grad_input")(w, grad_y, x)
    grad_w, grad_b = _tiled(layer, "grad_weight")(x, grad_y)
    return grad_x, grad_w, grad_b


def pointwise_conv2d_forward(x, w, b, *, activation=None):
    """ops.pointwise_conv2d_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.pointwise_conv2d_forward(x, w, b, activation=activation)
    x, w = as_f32("x", x, 4), as_f32("w", w, 2)
    ops._activation(activation)                      # raises for an unknown name, as ops does
    layer = replace(Layer.pointwise(*x.shape, w.shape[0], bias=True), activation=activation)
    return _tiled(layer, "forward")(x, w, b)


def pointwise_conv2d_backward(x, w, grad_y, *, need_grad_x: bool = True, input_activation=None):
    """ops.pointwise_conv2d_backward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.pointwise_conv2d_backward(x, w, grad_y, need_grad_x=need_grad_x,
                                             input_activation=input_activation)
    x, w = as_f32("x", x, 4), as_f32("w", w, 2)
    return _backward(Layer.pointwise(*x.shape, w.shape[0], bias=True), x, w, grad_y, need_grad_x,
                     input_activation)


def linear_forward(x, w, b):
    """ops.linear_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.linear_forward(x, w, b)
    x, w = as_f32("x", x, 2), as_f32("w", w, 2)
    return _tiled(Layer.linear(x.shape[0], x.shape[1], w.shape[0], bias=True), "forward")(x, w, b)


def linear_backward(x, w, grad_y, *, need_grad_x: bool = True, input_activation=None):
    """ops.linear_backward, tiled when an L1 budget is set (``input_activation``
    masks grad_x as for the convolutions)."""
    if _l1_budget is None:
        grad_x, grad_w, grad_b = ops.linear_backward(x, w, grad_y, need_grad_x=need_grad_x)
        return _through_input_activation(x, grad_x, input_activation), grad_w, grad_b
    x, w = as_f32("x", x, 2), as_f32("w", w, 2)
    return _backward(Layer.linear(x.shape[0], x.shape[1], w.shape[0], bias=True), x, w, grad_y, need_grad_x,
                     input_activation)


def _window_layer(kind: str, x, w, stride, padding) -> Layer:
    """The Layer of a conv2d (w [Cout, KH, KW, Cin]) or depthwise (w [KH, KW, C]) call."""
    from pulptrain._validate import pair
    x, w = as_f32("x", x, 4), as_f32("w", w, 4 if kind == "conv2d" else 3)
    kernel = w.shape[1:3] if kind == "conv2d" else w.shape[:2]
    sh, sw = pair("stride", stride)
    if sh != sw or kernel[0] != kernel[1]:
        raise ValueError(f"the tiled {kind} path takes square kernels and equal strides")
    n, h, wd, c = x.shape
    pads = conv_padding(padding, (h, wd), kernel, (sh, sw))
    cout = w.shape[0] if kind == "conv2d" else c
    return Layer(kind, n, h, wd, c, cout, kernel[0], sh, pads, True)


def conv2d_forward(x, w, b, stride=1, padding=0):
    """ops.conv2d_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.conv2d_forward(x, w, b, stride, padding)
    return _tiled(_window_layer("conv2d", x, w, stride, padding), "forward")(x, w, b)


def conv2d_backward(x, w, grad_y, stride=1, padding=0, *, need_grad_x: bool = True):
    """ops.conv2d_backward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.conv2d_backward(x, w, grad_y, stride, padding, need_grad_x=need_grad_x)
    return _backward(_window_layer("conv2d", x, w, stride, padding), x, w, grad_y, need_grad_x, None)


def depthwise_conv2d_forward(x, w, b, stride=1, padding=0, *, activation=None):
    """ops.depthwise_conv2d_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.depthwise_conv2d_forward(x, w, b, stride, padding, activation=activation)
    ops._activation(activation)                      # raises for an unknown name, as ops does
    layer = replace(_window_layer("depthwise", x, w, stride, padding), activation=activation)
    return _tiled(layer, "forward")(x, w, b)


def depthwise_conv2d_backward(x, w, grad_y, stride=1, padding=0, *, need_grad_x: bool = True,
                              input_activation=None):
    """ops.depthwise_conv2d_backward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.depthwise_conv2d_backward(x, w, grad_y, stride, padding, need_grad_x=need_grad_x,
                                             input_activation=input_activation)
    return _backward(_window_layer("depthwise", x, w, stride, padding), x, w, grad_y, need_grad_x, input_activation)


def _pool_layer(shape, kernel_size, stride) -> Layer:
    """The Layer of an avg_pool2d call on an NHWC shape."""
    from pulptrain._validate import pair
    kernel = pair("kernel_size", kernel_size)
    stride = kernel if stride is None else pair("stride", stride)
    conv_output_hw(shape[1:3], kernel, stride, (0, 0, 0, 0), what="kernel_size")   # as ops words it
    if kernel[0] != kernel[1] or stride[0] != stride[1]:
        raise ValueError("the tiled avg_pool path takes square kernels and equal strides")
    return Layer.avg_pool(*shape, kernel[0], stride[0])


def avg_pool2d_forward(x, kernel_size, stride=None):
    """ops.avg_pool2d_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.avg_pool2d_forward(x, kernel_size, stride)
    x = as_f32("x", x, 4)
    return _tiled(_pool_layer(x.shape, kernel_size, stride), "forward")(x)


def avg_pool2d_backward(x_shape_or_x, grad_y, kernel_size, stride=None):
    """ops.avg_pool2d_backward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.avg_pool2d_backward(x_shape_or_x, grad_y, kernel_size, stride)
    shape = ops._nhwc_shape("x_shape_or_x", x_shape_or_x)
    return _tiled(_pool_layer(shape, kernel_size, stride), "grad_input")(grad_y)


def global_avg_pool_forward(x):
    """ops.global_avg_pool_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.global_avg_pool_forward(x)
    x = as_f32("x", x, 4)
    return _tiled(Layer.global_avg_pool(*x.shape), "forward")(x)


def global_avg_pool_backward(x_or_shape, grad_y, *, input_activation=None):
    """ops.global_avg_pool_backward, tiled when an L1 budget is set (with
    ``input_activation``, x's tile masks each grad_x tile in L1)."""
    if _l1_budget is None:
        return ops.global_avg_pool_backward(x_or_shape, grad_y, input_activation=input_activation)
    if input_activation is None:
        shape = ops._nhwc_shape("x_or_shape", x_or_shape)
        return _tiled(Layer.global_avg_pool(*shape), "grad_input")(grad_y)
    ops._activation(input_activation, "input_activation")   # raises for an unknown name, as ops does
    if not isinstance(x_or_shape, np.ndarray):
        raise TypeError("x_or_shape must be the array x (the activation's output) when "
                        f"input_activation is set, got {type(x_or_shape).__name__}")
    x = as_f32("x_or_shape", x_or_shape, 4)
    layer = replace(Layer.global_avg_pool(*x.shape), input_activation=input_activation)
    return _tiled(layer, "grad_input")(grad_y, x)


def _affine_arrays(x, scale):
    """x checked as ops does, and the NHWC Layer of its [N, ..., C] shape
    (the pixels between N and C as rows of one column)."""
    x = as_f32("x", x, (2, 3, 4, 5))
    ops._affine_dims(x, scale)                        # raises naming scale, as ops does
    n, c = x.shape[0], x.shape[-1]
    rows = int(np.prod(x.shape[1:-1], dtype=np.int64))
    return x, Layer.channel_affine(n, rows, 1, c)


def channel_affine_forward(x, scale, shift):
    """ops.channel_affine_forward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.channel_affine_forward(x, scale, shift)
    x, layer = _affine_arrays(x, scale)
    shift = as_f32("shift", shift, 1)
    same_shape("shift", shift, "scale", np.shape(scale))
    return _tiled(layer, "forward")(x.reshape(layer.shapes()["x"]), scale, shift).reshape(x.shape)


def channel_affine_backward(x, scale, grad_y, *, need_grad_x: bool = True):
    """ops.channel_affine_backward, tiled when an L1 budget is set."""
    if _l1_budget is None:
        return ops.channel_affine_backward(x, scale, grad_y, need_grad_x=need_grad_x)
    x, layer = _affine_arrays(x, scale)
    grad_y = as_f32("grad_y", grad_y)
    same_shape("grad_y", grad_y, "x", x.shape)
    x4, gy4 = x.reshape(layer.shapes()["x"]), grad_y.reshape(layer.shapes()["x"])
    grad_x = _tiled(layer, "grad_input")(scale, gy4).reshape(x.shape) if need_grad_x else None
    grad_scale, grad_shift = _tiled(layer, "grad_weight")(x4, gy4)
    return grad_x, grad_scale, grad_shift
