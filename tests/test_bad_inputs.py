"""Bad-input sweep: every public function of pulptrain.ops (and its tiled
twins in pulptrain.tile, under an L1 budget), pulptrain.replay, pulptrain.plan
(and pulptrain.nn / pulptrain.quant when present) and the ``pulptrain``
command line, fed each kind of bad input.

A (function, bad input) pair passes when the call raises the documented
exception (TypeError for wrong types / dtypes, ValueError naming the argument
for wrong shapes and values, FormatError for bad files) with a message naming
the argument, or, for inputs the API accepts (non-contiguous arrays, which
are copied), returns what the contiguous call returns. Every call runs in
one worker subprocess, so a segfault or an abort fails the sweep (naming the
pair it died on) instead of killing pytest.

``python tests/test_bad_inputs.py`` runs the sweep alone and prints the count.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pulptrain import ops, plan  # noqa: E402
from pulptrain.errors import FormatError  # noqa: E402
from pulptrain.replay import LatentReplayStore  # noqa: E402

ACCEPT = "accept"   # expectation of an input the API takes (result compared with the plain call)


@dataclass
class Case:
    id: str
    call: object            # () -> result
    expect: object          # exception class (or tuple), or ACCEPT
    names: tuple = ()       # the message must contain one of these
    reference: object = None  # () -> result the ACCEPT call must equal


# ------------------------------------------------------------------ arrays
def f32(*shape):
    """Fixed values per shape: the same in a bad call and in its reference call."""
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def non_contiguous(a: np.ndarray) -> np.ndarray:
    """Same values, every axis strided."""
    wide = np.zeros(tuple(2 * d for d in a.shape), a.dtype)
    view = wide[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def array_cases(prefix, fn, build, arg, ndim=None, reshaped=None, partners=(), accepts_any_shape=False,
                in_place=False):
    """The bad inputs of one float32 array argument of fn(**build())."""
    names = (arg,) + tuple(partners)

    def with_value(make):
        def call():
            kwargs = build()
            kwargs[arg] = make(kwargs[arg])
            return fn(**kwargs)
        return call

    out = [
        Case(f"{prefix}:{arg}=list", with_value(lambda a: a.tolist()), TypeError, (arg,)),
        Case(f"{prefix}:{arg}=float64", with_value(lambda a: a.astype(np.float64)), TypeError, (arg,)),
        Case(f"{prefix}:{arg}=int32", with_value(lambda a: a.astype(np.int32)), TypeError, (arg,)),
        Case(f"{prefix}:{arg}=scalar", with_value(lambda a: np.float32(1.0)), TypeError, (arg,)),
        Case(f"{prefix}:{arg}=empty", with_value(lambda a: a[:0]), ValueError, names),
    ]
    if ndim is not None:
        out.append(Case(f"{prefix}:{arg}=ndim+1", with_value(lambda a: a[None]), ValueError, names))
        out.append(Case(f"{prefix}:{arg}=ndim-1", with_value(lambda a: a[0, ...]), ValueError, names))
    if reshaped is not None and not accepts_any_shape:
        out.append(Case(f"{prefix}:{arg}=wrong-shape", with_value(reshaped), ValueError, names))
    if in_place:
        out.append(Case(f"{prefix}:{arg}=non-contiguous", with_value(non_contiguous), ValueError, (arg,)))
        out.append(Case(f"{prefix}:{arg}=read-only", with_value(_read_only), ValueError, (arg,)))
    else:
        out.append(Case(f"{prefix}:{arg}=non-contiguous", with_value(non_contiguous), ACCEPT,
                        reference=lambda: fn(**build())))
    return out


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def grow_last(a):
    return np.concatenate([a, a[..., :1]], axis=-1)


def grow_first(a):
    return np.concatenate([a, a[:1]], axis=0)


def option_cases(prefix, fn, build, values):
    """(option, value, exception, names...) rows for non-array arguments."""
    out = []
    for opt, value, exc, *names in values:
        def call(opt=opt, value=value):
            kwargs = build()
            kwargs[opt] = value
            return fn(**kwargs)
        out.append(Case(f"{prefix}:{opt}={_short(value)}", call, exc, tuple(names) or (opt,)))
    return out


# ------------------------------------------------------------------ pulptrain.ops
WINDOW_OPTS = [("stride", 0, ValueError), ("stride", -1, ValueError), ("stride", "2", TypeError),
               ("stride", 1.5, TypeError), ("stride", (1, 2, 3), ValueError), ("stride", 2**40, ValueError),
               ("padding", -1, ValueError), ("padding", "full", ValueError), ("padding", (1, 2, 3), ValueError),
               ("padding", 1.5, TypeError), ("padding", 2**40, ValueError), ("padding", None, TypeError)]


def layer_cases(mod, prefix="", wrap=lambda fn: fn):
    """The convolution, linear and pooling layer functions of mod (pulptrain.ops, or
    pulptrain.tile under an L1 budget, whose functions take the same
    arguments), each call through wrap."""
    x4, w_conv, w_dw, w_pw = f32(2, 5, 5, 3), f32(4, 3, 3, 3), f32(3, 3, 3), f32(4, 3)
    x2, w_lin = f32(2, 6), f32(4, 6)
    cases = []

    def conv_fwd():
        return dict(x=x4.copy(), w=w_conv.copy(), b=f32(4), stride=1, padding=1)

    def conv_bwd():
        return dict(x=x4.copy(), w=w_conv.copy(), grad_y=np.ones((2, 5, 5, 4), np.float32), stride=1, padding=1)

    cases += array_cases(prefix + "conv2d_forward", wrap(mod.conv2d_forward), conv_fwd, "x", 4, grow_last, ("w",))
    cases += array_cases(prefix + "conv2d_forward", wrap(mod.conv2d_forward), conv_fwd, "w", 4, grow_last, ("x",))
    cases += array_cases(prefix + "conv2d_forward", wrap(mod.conv2d_forward), conv_fwd, "b", 1, grow_last)
    cases += option_cases(prefix + "conv2d_forward", wrap(mod.conv2d_forward), conv_fwd, WINDOW_OPTS)
    cases += [Case(prefix + "conv2d_forward:w=larger-than-input", lambda: wrap(mod.conv2d_forward)(x4, f32(4, 9, 9, 3), None),
                   ValueError, ("kernel",))]
    cases += array_cases(prefix + "conv2d_backward", wrap(mod.conv2d_backward), conv_bwd, "x", 4, grow_last, ("w",))
    cases += array_cases(prefix + "conv2d_backward", wrap(mod.conv2d_backward), conv_bwd, "grad_y", 4, grow_first)
    cases += option_cases(prefix + "conv2d_backward", wrap(mod.conv2d_backward), conv_bwd, WINDOW_OPTS[:6])

    def dw_fwd():
        return dict(x=x4.copy(), w=w_dw.copy(), b=f32(3), stride=2, padding="same")

    def dw_bwd():
        return dict(x=x4.copy(), w=w_dw.copy(), grad_y=np.ones((2, 3, 3, 3), np.float32), stride=2, padding="same")

    cases += array_cases(prefix + "depthwise_conv2d_forward", wrap(mod.depthwise_conv2d_forward), dw_fwd, "x", 4, grow_last, ("w",))
    cases += array_cases(prefix + "depthwise_conv2d_forward", wrap(mod.depthwise_conv2d_forward), dw_fwd, "w", 3, grow_last)
    cases += array_cases(prefix + "depthwise_conv2d_forward", wrap(mod.depthwise_conv2d_forward), dw_fwd, "b", 1, grow_last)
    cases += option_cases(prefix + "depthwise_conv2d_forward", wrap(mod.depthwise_conv2d_forward), dw_fwd, WINDOW_OPTS)
    cases += array_cases(prefix + "depthwise_conv2d_backward", wrap(mod.depthwise_conv2d_backward), dw_bwd, "grad_y", 4, grow_first)
    cases += array_cases(prefix + "depthwise_conv2d_backward", wrap(mod.depthwise_conv2d_backward), dw_bwd, "w", 3, grow_last)

    def pw_fwd():
        return dict(x=x4.copy(), w=w_pw.copy(), b=None)

    def pw_bwd():
        return dict(x=x4.copy(), w=w_pw.copy(), grad_y=np.ones((2, 5, 5, 4), np.float32))

    cases += array_cases(prefix + "pointwise_conv2d_forward", wrap(mod.pointwise_conv2d_forward), pw_fwd, "x", 4, grow_last, ("w",))
    cases += array_cases(prefix + "pointwise_conv2d_forward", wrap(mod.pointwise_conv2d_forward), pw_fwd, "w", 2, grow_last, ("x",))
    cases += array_cases(prefix + "pointwise_conv2d_backward", wrap(mod.pointwise_conv2d_backward), pw_bwd, "grad_y", 4, grow_last)

    def lin_fwd():
        return dict(x=x2.copy(), w=w_lin.copy(), b=f32(4))

    def lin_bwd():
        return dict(x=x2.copy(), w=w_lin.copy(), grad_y=np.ones((2, 4), np.float32))

    cases += array_cases(prefix + "linear_forward", wrap(mod.linear_forward), lin_fwd, "x", 2, grow_last, ("w",))
    cases += array_cases(prefix + "linear_forward", wrap(mod.linear_forward), lin_fwd, "w", 2, grow_last, ("x",))
    cases += array_cases(prefix + "linear_forward", wrap(mod.linear_forward), lin_fwd, "b", 1, grow_last)
    cases += array_cases(prefix + "linear_backward", wrap(mod.linear_backward), lin_bwd, "grad_y", 2, grow_last)
    cases += array_cases(prefix + "linear_backward", wrap(mod.linear_backward), lin_bwd, "x", 2, grow_first, ("grad_y",))

    def pool_fwd():
        return dict(x=x4.copy(), kernel_size=2, stride=None)

    def pool_bwd():
        return dict(x_shape_or_x=(2, 5, 5, 3), grad_y=np.ones((2, 2, 2, 3), np.float32), kernel_size=2)

    pool_opts = [("kernel_size", 0, ValueError), ("kernel_size", 6, ValueError), ("kernel_size", "2", TypeError),
                 ("kernel_size", 2**40, ValueError), ("kernel_size", (2, 2, 2), ValueError),
                 ("stride", 0, ValueError), ("stride", 2**40, ValueError)]
    cases += array_cases(prefix + "avg_pool2d_forward", wrap(mod.avg_pool2d_forward), pool_fwd, "x", 4)
    cases += option_cases(prefix + "avg_pool2d_forward", wrap(mod.avg_pool2d_forward), pool_fwd, pool_opts)
    cases += array_cases(prefix + "avg_pool2d_backward", wrap(mod.avg_pool2d_backward), pool_bwd, "grad_y", 4, grow_first)
    cases += option_cases(prefix + "avg_pool2d_backward", wrap(mod.avg_pool2d_backward), pool_bwd, pool_opts + [
        ("x_shape_or_x", (2, 5, 5), ValueError), ("x_shape_or_x", (2, 0, 5, 3), ValueError),
        ("x_shape_or_x", "2553", TypeError), ("x_shape_or_x", (2, 5.0, 5, 3), TypeError),
        ("x_shape_or_x", (2, 2**40, 5, 3), ValueError, "x_shape_or_x", "grad_y")])

    cases += array_cases(prefix + "global_avg_pool_forward", wrap(mod.global_avg_pool_forward), lambda: dict(x=x4.copy()), "x", 4)

    def gap_bwd():
        return dict(x_or_shape=(2, 5, 5, 3), grad_y=np.ones((2, 3), np.float32))

    cases += array_cases(prefix + "global_avg_pool_backward", wrap(mod.global_avg_pool_backward), gap_bwd, "grad_y", 2, grow_last)
    cases += option_cases(prefix + "global_avg_pool_backward", wrap(mod.global_avg_pool_backward), gap_bwd, [
        ("x_or_shape", (2, 5, 5, 3, 1), ValueError), ("x_or_shape", (-2, 5, 5, 3), ValueError),
        ("x_or_shape", None, TypeError), ("input_activation", "tanh", ValueError)])

    def gap_bwd_masked():
        return dict(x_or_shape=x4.copy(), grad_y=np.ones((x4.shape[0], x4.shape[3]), np.float32),
                    input_activation="relu6")

    cases += array_cases(prefix + "global_avg_pool_backward masked", wrap(mod.global_avg_pool_backward),
                         gap_bwd_masked, "x_or_shape", 4)


    def aff_fwd():
        return dict(x=x4.copy(), scale=f32(3), shift=f32(3))

    def aff_bwd():
        return dict(x=x4.copy(), scale=f32(3), grad_y=x4.copy())

    cases += array_cases(prefix + "channel_affine_forward", wrap(mod.channel_affine_forward), aff_fwd, "x", None, grow_last, ("scale",))
    cases += [Case(prefix + "channel_affine_forward:x=1-d", lambda: wrap(mod.channel_affine_forward)(
        np.ones(3, np.float32), np.ones(3, np.float32), np.ones(3, np.float32)), ValueError, ("x",))]
    cases += array_cases(prefix + "channel_affine_forward", wrap(mod.channel_affine_forward), aff_fwd, "scale", 1, grow_last)
    cases += array_cases(prefix + "channel_affine_forward", wrap(mod.channel_affine_forward), aff_fwd, "shift", 1, grow_last)
    cases += array_cases(prefix + "channel_affine_backward", wrap(mod.channel_affine_backward), aff_bwd, "grad_y", None, grow_last)
    return cases


def under_budget(fn, l1_bytes=64 * 1024):
    """fn run inside ``with pulptrain.tile.l1_budget(l1_bytes)`` (the tiled path)."""
    from pulptrain import tile

    def call(*args, **kwargs):
        with tile.l1_budget(l1_bytes):
            return fn(*args, **kwargs)
    return call


def tile_cases():
    from pulptrain import tile
    return layer_cases(tile, "tile.", under_budget)


def ops_cases():
    x4 = f32(2, 5, 5, 3)
    cases = layer_cases(ops)

    for name in ("relu_forward", "relu6_forward"):
        cases += array_cases(name, getattr(ops, name), lambda: dict(x=x4.copy()), "x", None, accepts_any_shape=True)
    for name in ("relu_backward", "relu6_backward"):
        build = (lambda: dict(x_or_y=x4.copy(), grad_y=x4.copy()))
        cases += array_cases(name, getattr(ops, name), build, "grad_y", None, grow_last, ("x_or_y",))
        cases += array_cases(name, getattr(ops, name), build, "x_or_y", None, grow_last, ("grad_y",))

    def xent():
        return dict(logits=f32(4, 5), labels=np.array([0, 4, 2, 1]))

    label_opts = [("labels", np.array([0, 5, 2, 1]), ValueError), ("labels", np.array([0, -1, 2, 1]), ValueError),
                  ("labels", np.array([0, 2**40, 2, 1]), ValueError), ("labels", np.array([0., 1, 2, 1]), TypeError),
                  ("labels", np.array([0, 1, 2]), ValueError), ("labels", [0, 1, 2, 3], TypeError),
                  ("labels", np.zeros((4, 1), np.int64), ValueError)]
    for name in ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward"):
        cases += array_cases(name, getattr(ops, name), xent, "logits", 2, grow_first, ("labels",))
        cases += option_cases(name, getattr(ops, name), xent, label_opts)

    def sgd():
        return dict(param=f32(3, 4), grad=f32(3, 4), velocity=np.zeros((3, 4), np.float32), lr=0.1)

    cases += array_cases("sgd_step", ops.sgd_step, sgd, "param", None, grow_last, ("grad",), in_place=True)
    cases += array_cases("sgd_step", ops.sgd_step, sgd, "velocity", None, grow_last, in_place=True)
    cases += array_cases("sgd_step", ops.sgd_step, sgd, "grad", None, grow_last)
    cases += option_cases("sgd_step", ops.sgd_step, sgd, [
        ("lr", float("nan"), ValueError), ("lr", float("inf"), ValueError), ("lr", -0.1, ValueError),
        ("lr", "0.1", TypeError), ("lr", None, TypeError), ("momentum", float("nan"), ValueError),
        ("momentum", -1.0, ValueError), ("weight_decay", float("-inf"), ValueError),
        ("weight_decay", True, TypeError)])

    def shared_buffers():
        p = np.zeros((3, 4), np.float32)
        return ops.sgd_step(p, p.copy(), p, 0.1)
    cases.append(Case("sgd_step:velocity=param", shared_buffers, ValueError, ("velocity",)))
    return cases


# ------------------------------------------------------------------ pulptrain.replay
def replay_cases():
    rng = np.random.default_rng(1)
    shape = (2, 2, 3)

    def store(**kw):
        args = dict(capacity=6, shape=shape, bits=4, value_range=(0.0, 6.0), num_classes=3)
        args.update(kw)
        return LatentReplayStore(**args)

    def filled():
        s = store()
        s.insert(np.abs(f32(3, *shape)), np.array([0, 1, 2]))
        return s

    def new(kwargs):
        return lambda: store(**kwargs)

    cases = []
    for opt, value, exc, *names in [
            ("capacity", 0, ValueError), ("capacity", -3, ValueError), ("capacity", 2**41, ValueError),
            ("capacity", "6", TypeError), ("capacity", 6.0, TypeError),
            ("shape", (), ValueError), ("shape", (2, 0, 3), ValueError, "shape"), ("shape", (2, -1), ValueError),
            ("shape", "abc", ValueError), ("shape", (1,) * 9, ValueError), ("shape", (2, 2.5), TypeError),
            ("bits", 0, ValueError), ("bits", 9, ValueError), ("bits", 12, ValueError), ("bits", "fp8", ValueError),
            ("bits", True, TypeError), ("bits", 4.0, TypeError),
            ("granularity", "pixel", ValueError), ("policy", "fifo", ValueError),
            ("seed", -1, ValueError), ("seed", 2**64, ValueError), ("seed", 1.5, ValueError),
            ("num_classes", 0, ValueError), ("num_classes", "3", TypeError),
            ("value_range", (6.0, 0.0), ValueError), ("value_range", (0.0, float("nan")), ValueError),
            ("value_range", (0.0, float("inf")), ValueError), ("value_range", (0.0,), ValueError),
            ("calibration", np.full((2,) + shape, np.nan, np.float32), ValueError, "calibration", "data"),
            ("int8_params", (np.float32(-1.0), 0), ValueError, "int8_params", "scale")]:
        kwargs = {opt: value}
        if opt in ("calibration", "int8_params"):
            kwargs["value_range"] = None
        cases.append(Case(f"LatentReplayStore:{opt}={_short(value)}", new(kwargs), exc, tuple(names) or (opt,)))
    cases.append(Case("LatentReplayStore:value_range+calibration", new(dict(
        calibration=np.ones((1,) + shape, np.float32))), ValueError, ("value_range",)))

    good = rng.uniform(0, 6, (2,) + shape).astype(np.float32)

    def method(name, *args, **kwargs):
        return lambda: getattr(filled(), name)(*args, **kwargs)

    nan = good.copy()
    nan[1, 0, 0, 0] = np.nan
    inf = good.copy()
    inf[0, 1, 1, 2] = -np.inf
    for mname in ("insert", "update"):
        extra = {"batch_index": 1} if mname == "update" else {}
        base = dict(latents=good, labels=np.array([0, 1]), **extra)
        for arg, value, exc, *names in [
                ("latents", good.astype(np.float64), TypeError), ("latents", good.tolist(), TypeError),
                ("latents", good[:, :, :, :2], ValueError), ("latents", good[0], ValueError),
                ("latents", nan, ValueError), ("latents", inf, ValueError),
                ("labels", np.array([0, 3]), ValueError), ("labels", np.array([0, -1]), ValueError),
                ("labels", np.array([0.0, 1.0]), TypeError), ("labels", np.array([0]), ValueError),
                ("labels", "01", TypeError)]:
            kw = dict(base, **{arg: value})
            cases.append(Case(f"{mname}:{arg}={_short(value)}", method(mname, **kw), exc, tuple(names) or (arg,)))
        cases.append(Case(f"{mname}:non-contiguous", method(mname, **dict(base, latents=non_contiguous(good))),
                          ACCEPT, reference=method(mname, **base)))
    for arg, value, exc in [("slots", np.array([0, 0]), ValueError), ("slots", np.array([0, 6]), ValueError),
                            ("slots", np.array([-1, 3]), ValueError), ("slots", np.array([0.0, 1.0]), TypeError),
                            ("slots", np.array([3]), ValueError), ("batch_index", -2, ValueError),
                            ("batch_index", 2**31, ValueError), ("batch_index", 1.0, TypeError)]:
        kw = dict(latents=good, labels=np.array([0, 1]), slots=np.array([3, 4]))
        kw[arg] = value
        cases.append(Case(f"insert:{arg}={_short(value)}", method("insert", **kw), exc, (arg,)))
    for arg, value, exc in [("batch_index", -1, ValueError), ("batch_index", "1", TypeError),
                            ("rng", 5, TypeError), ("rng", np.random.RandomState(0), TypeError)]:
        kw = dict(latents=good, labels=np.array([0, 1]), batch_index=1)
        kw[arg] = value
        cases.append(Case(f"update:{arg}={_short(value)}", method("update", **kw), exc, (arg,)))
    codes = rng.integers(0, 256, (2,) + shape).astype(np.uint8)
    base = dict(codes=codes, scale=np.float32(0.03), zero_point=0, labels=np.array([0, 1]))
    for arg, value, exc in [("codes", codes.astype(np.int16), TypeError), ("codes", codes[:, :1], ValueError),
                            ("scale", np.float32(0.0), ValueError), ("scale", np.float32(np.nan), ValueError),
                            ("scale", np.float32(np.inf), ValueError), ("zero_point", 300, ValueError),
                            ("labels", np.array([0, 7]), ValueError)]:
        kw = dict(base, **{arg: value})
        cases.append(Case(f"insert_codes:{arg}={_short(value)}", method("insert_codes", **kw), exc, (arg,)))
    cases.append(Case("insert_codes:fp32-store", lambda: store(bits="fp32", value_range=None).insert_codes(**base),
                      ValueError, ("bits", "quantized")))
    for args, exc, names in [((np.array([0, 5]),), ValueError, ("slots", "empty")),
                             ((np.array([0, 6]),), ValueError, ("slots",)), ((np.array([[0]]),), ValueError, ("slots",)),
                             ((2**63 - 1,), ValueError, ("slots",)), ((np.array([0.5]),), TypeError, ("slots",))]:
        cases.append(Case(f"gather:slots={_short(args[0])}", method("gather", *args), exc, names))
    out = np.zeros((2,) + shape, np.float32)
    for value, exc in [(out.astype(np.float64), TypeError), (out[:1], ValueError), (non_contiguous(out), ValueError),
                       (_read_only(out), ValueError), (out.tolist(), TypeError)]:
        cases.append(Case(f"gather_into:out={_short(value)}", method("gather_into", np.array([0, 1]), value), exc,
                          ("out",)))
    for value, exc in [(-1, ValueError), (4, ValueError), (2**62, ValueError), (1.0, TypeError), (None, TypeError)]:
        cases.append(Case(f"sample:k={value!r}", method("sample", value), exc, ("k",)))
    for value, exc in [(nan, ValueError), (good[:, :1], ValueError), (good.astype(np.float16), TypeError)]:
        cases.append(Case(f"quantize_roundtrip:x={_short(value)}", method("quantize_roundtrip", value), exc, ("x",)))
    cases.append(Case("calibrate:non-empty-store", method("calibrate", good), ValueError, ("store", "latents")))
    cases.append(Case("calibrate:data+value_range", lambda: store(value_range=None).calibrate(good, value_range=(0, 1)),
                      ValueError, ("data", "value_range")))
    cases.append(Case("calibrate:fp16-store", lambda: store(bits="fp16", value_range=None).calibrate(good),
                      ValueError, ("bits", "calibrate")))
    cases.append(Case("insert:uncalibrated", lambda: store(value_range=None).insert(good, np.array([0, 1])),
                      ValueError, ("calibrat",)))

    def load(data: bytes):
        def call():
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "s.lrs")
                with open(path, "wb") as f:
                    f.write(data)
                return LatentReplayStore.load(path)
        return call
    cases += [Case("load:empty-file", load(b""), FormatError, ("truncated",)),
              Case("load:foreign-file", load(b"\x89PNG\r\n\x1a\n" + bytes(40)), FormatError, ("not a pulptrain",)),
              Case("load:missing-file", lambda: LatentReplayStore.load("/nonexistent/s.lrs"), FileNotFoundError,
                   ("s.lrs",))]
    return cases


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        flags = "" if value.flags.c_contiguous else ",strided"
        flags += "" if value.flags.writeable else ",read-only"
        if value.dtype.kind == "f":
            flags += ",nan" if np.isnan(value).any() else ",inf" if np.isinf(value).any() else ""
        if value.size <= 4:
            return f"{value.dtype}{value.tolist()}{flags}"
        return f"{value.dtype}{list(value.shape)}{flags}"
    if not isinstance(value, (int, float, str, tuple, list, type(None), np.generic)):
        return type(value).__name__          # a repr may hold an address, different in the worker
    if isinstance(value, list) and len(repr(value)) > 30:
        return f"list[{len(value)}]"
    return repr(value)[:30]


# ------------------------------------------------------------------ pulptrain.plan
def plan_cases():
    cases = []
    for opt, value, exc, *names in [
            ("bits", 9, ValueError), ("bits", 0, ValueError), ("bits", "8", TypeError), ("bits", 8.0, TypeError),
            ("lr_layer", "nope", ValueError), ("lr_layer", 5, TypeError, "lr_layer"), ("backbone", "resnet", ValueError),
            ("input_size", 0, ValueError), ("input_size", 16, ValueError), ("input_size", "128", TypeError),
            ("num_classes", 0, ValueError), ("lr_count", -1, ValueError), ("batch_size", 0, ValueError),
            ("epochs", 0, ValueError), ("micro_batch", 1000, ValueError), ("new_samples", -5, ValueError),
            ("update_rule", "adam", ValueError), ("lifetime_event", "year", ValueError),
            ("vega_kernels", "avx", ValueError), ("momentum", float("nan"), ValueError), ("momentum", 1.0, ValueError),
            ("momentum", "0.9", TypeError), ("vega_mhz", 0.0, ValueError), ("vega_mhz", float("inf"), ValueError),
            ("stm32_mhz", float("nan"), ValueError), ("l1_bytes", 0, ValueError), ("l2_bytes", 1.5, TypeError),
            ("mram_bytes", -1, ValueError), ("no_such_field", 1, TypeError)]:
        cases.append(Case(f"plan:{opt}={_short(value)}", lambda opt=opt, value=value: plan.plan(**{opt: value}), exc,
                          tuple(names) or (opt,)))

    def bad_params_file(text):
        def call():
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "p.json")
                with open(path, "w") as f:
                    f.write(text)
                return plan.plan(params=path)
        return call
    cases += [Case("plan:params=missing-file", lambda: plan.plan(params="/nonexistent/p.json"), FileNotFoundError,
                   ("p.json",)),
              Case("plan:params=not-json", bad_params_file("{nope"), ValueError, ("p.json", "JSON", "line")),
              Case("sweep_lr_layers:lr_layers=[nope]", lambda: plan.sweep_lr_layers(lr_layers=["nope"]), ValueError,
                   ("lr_layer",)),
              Case("compare_allocations:unknown-key", lambda: plan.compare_allocations(plan.plan(), {"nope": 1}),
                   KeyError, ("nope",))]
    for args, exc, names in [((-1, 10, 8), ValueError, ("count",)), ((10, 0, 8), ValueError, ("elements",)),
                             ((10, 10, 9), ValueError, ("bits",)), ((10, 10, "8"), TypeError, ("bits",))]:
        cases.append(Case(f"lr_store_bytes:{args!r}", lambda args=args: plan.lr_store_bytes(*args), exc, names))
    return cases


# ------------------------------------------------------------------ pulptrain.nn
def nn_cases():
    try:
        from pulptrain import nn
    except ImportError:
        return []
    cases = []
    for ctor, kwargs, exc, names in [
            (nn.Conv2d, dict(in_c=0, out_c=4, kernel_size=3), ValueError, ("in_c",)),
            (nn.Conv2d, dict(in_c=3, out_c="4", kernel_size=3), TypeError, ("out_c",)),
            (nn.Conv2d, dict(in_c=3, out_c=4, kernel_size=0), ValueError, ("kernel_size",)),
            (nn.Conv2d, dict(in_c=3, out_c=4, kernel_size=3, stride=0), ValueError, ("stride",)),
            (nn.Conv2d, dict(in_c=3, out_c=4, kernel_size=3, rng="seed"), TypeError, ("rng",)),
            (nn.DepthwiseConv2d, dict(channels=-1, kernel_size=3), ValueError, ("channels",)),
            (nn.DepthwiseConv2d, dict(channels=3, kernel_size=(3, 3, 3)), ValueError, ("kernel_size",)),
            (nn.PointwiseConv2d, dict(in_c=3, out_c=0), ValueError, ("out_c",)),
            (nn.Linear, dict(in_f=2.5, out_f=3), TypeError, ("in_f",)),
            (nn.ChannelAffine, dict(c=0), ValueError, ("c",)),
            (nn.AvgPool2d, dict(kernel_size=0), ValueError, ("kernel_size",)),
            (nn.AvgPool2d, dict(kernel_size=2, stride=-1), ValueError, ("stride",)),
            (nn.Sequential, dict(), ValueError, ("layer",)),
            (nn.manual_seed, dict(seed=-1), ValueError, ("seed",))]:
        cases.append(Case(f"nn.{ctor.__name__}:{_kwargs_id(kwargs)}", lambda c=ctor, k=kwargs: c(**k), exc, names))
    cases.append(Case("nn.Sequential:not-a-module", lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, ("layer",)))
    cases.append(Case("nn.Sequential:duplicate-name", lambda: nn.Sequential(("a", nn.ReLU()), ("a", nn.ReLU())),
                      ValueError, ("names",)))
    x4, x2 = f32(2, 5, 5, 3), f32(2, 6)
    layers = {"Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1, rng=0), x4),
              "DepthwiseConv2d": (lambda: nn.DepthwiseConv2d(3, 3, padding="same", rng=0), x4),
              "PointwiseConv2d": (lambda: nn.PointwiseConv2d(3, 4, rng=0), x4),
              "Linear": (lambda: nn.Linear(6, 4, rng=0), x2),
              "ChannelAffine": (lambda: nn.ChannelAffine(3), x4),
              "AvgPool2d": (lambda: nn.AvgPool2d(2), x4),
              "GlobalAvgPool": (lambda: nn.GlobalAvgPool(), x4),
              "ReLU6": (lambda: nn.ReLU6(), x4),
              "Flatten": (lambda: nn.Flatten(), x4)}
    for name, (make, x) in layers.items():
        for label, bad, exc in [("float64", x.astype(np.float64), TypeError), ("list", x.tolist(), TypeError),
                                ("wrong-channels", grow_last(x), ValueError), ("scalar", np.float32(1), TypeError),
                                ("0-d", np.array(1, np.float32), ValueError), ("empty", x[:0], ValueError)]:
            if label == "wrong-channels" and name in ("ReLU6", "ChannelAffine", "AvgPool2d", "GlobalAvgPool", "Flatten"):
                continue      # any channel count is right for these
            if label == "0-d" and name == "ReLU6":
                continue      # activations take any shape, 0-d included
            cases.append(Case(f"nn.{name}.forward:x={label}", lambda m=make, b=bad: m().forward(b), exc, ("x",)))
        cases.append(Case(f"nn.{name}.backward:before-forward", lambda m=make, x=x: m().backward(x), RuntimeError,
                          ("before forward",)))

        def backward_bad(make=make, x=x):
            layer = make()
            y = layer.forward(x)
            return layer.backward(grow_first(y))
        cases.append(Case(f"nn.{name}.backward:grad_y=wrong-shape", backward_bad, ValueError, ("grad_y", "shape")))
    loss = nn.SoftmaxCrossEntropy
    cases += [Case("nn.SoftmaxCrossEntropy.forward:labels=out-of-range",
                   lambda: loss().forward(f32(2, 3), np.array([0, 3])), ValueError, ("labels",)),
              Case("nn.SoftmaxCrossEntropy.backward:before-forward", lambda: loss().backward(), RuntimeError,
                   ("before forward",)),
              Case("nn.SoftmaxCrossEntropy.backward:grad_loss=nan", lambda: _loss_then(loss(), float("nan")),
                   ValueError, ("grad_loss",))]
    model = lambda: nn.Sequential(nn.Linear(6, 4, rng=0), nn.ReLU())  # noqa: E731
    for kwargs, exc, names in [(dict(lr=-1.0), ValueError, ("lr",)), (dict(lr=float("nan")), ValueError, ("lr",)),
                               (dict(lr=0.1, momentum=float("inf")), ValueError, ("momentum",)),
                               (dict(lr="0.1"), TypeError, ("lr",)),
                               (dict(lr=0.1, weight_decay=-1e-4), ValueError, ("weight_decay",))]:
        cases.append(Case(f"nn.SGD:{_kwargs_id(kwargs)}", lambda k=kwargs: nn.SGD(model(), **k), exc, names))
    cases += [Case("nn.SGD:params=[]", lambda: nn.SGD([], 0.1), TypeError, ("params",)),
              Case("nn.SGD:params=arrays", lambda: nn.SGD([np.zeros(3, np.float32)], 0.1), TypeError, ("params",))]

    def sgd_state(change):
        def call():
            opt = nn.SGD(model(), 0.1)
            state = opt.state_dict()
            change(state)
            return opt.load_state_dict(state)
        return call
    cases += [Case("nn.SGD.load_state_dict:velocity-count", sgd_state(lambda s: s["velocity"].pop()), ValueError,
                   ("velocity",)),
              Case("nn.SGD.load_state_dict:velocity-shape",
                   sgd_state(lambda s: s["velocity"].__setitem__(0, np.zeros(3, np.float32))), ValueError,
                   ("velocity[0]",)),
              Case("nn.SGD.load_state_dict:velocity-dtype",
                   sgd_state(lambda s: s["velocity"].__setitem__(0, s["velocity"][0].astype(np.float64))),
                   TypeError, ("velocity[0]",)),
              Case("nn.SGD.load_state_dict:lr=inf", sgd_state(lambda s: s.__setitem__("lr", float("inf"))),
                   ValueError, ("lr",))]

    def module_state(change, strict=True):
        def call():
            m = model()
            state = m.state_dict()
            change(state)
            return m.load_state_dict(state, strict=strict)
        return call
    cases += [Case("nn.Module.load_state_dict:missing", module_state(lambda s: s.popitem()), KeyError, ("missing",)),
              Case("nn.Module.load_state_dict:unexpected", module_state(lambda s: s.__setitem__("x", 1)), KeyError,
                   ("unexpected",)),
              Case("nn.Module.load_state_dict:shape", module_state(
                  lambda s: s.__setitem__("0.bias", np.zeros(5, np.float32))), ValueError, ("0.bias",)),
              Case("nn.Module.load_state_dict:dtype", module_state(
                  lambda s: s.__setitem__("0.bias", np.zeros(4, np.float64))), TypeError, ("0.bias",))]
    return cases


def _loss_then(loss, grad_loss):
    loss.forward(f32(2, 3), np.array([0, 1]))
    return loss.backward(grad_loss)


def _kwargs_id(kwargs) -> str:
    return ",".join(f"{k}={_short(v)}" for k, v in kwargs.items()) or "no-args"


# ------------------------------------------------------------------ pulptrain.quant
def quant_cases():
    try:
        from types import SimpleNamespace

        from pulptrain import quant
        from pulptrain.models.mobilenet import FloatFrozenStage
    except ImportError:
        return []
    cases = []
    for value, exc in [([0.0], ValueError), ([-0.5], ValueError), ([float("nan")], ValueError),
                       ([float("inf")], ValueError), ([2.0**31], ValueError), (["x"], ValueError)]:
        cases.append(Case(f"quant.quantize_multiplier:real={value!r}", lambda v=value: quant.quantize_multiplier(v),
                          exc, ("requantization", "factor", "real", "could not convert")))
    # Validation runs before any layer: stages without layers are enough here.
    int8 = quant.Int8FrozenStage([SimpleNamespace(out_scale=0.02)], "conv5_4/dw", 128)
    frozen = FloatFrozenStage([], "conv5_4/dw", 128)
    good = np.zeros((1, 128, 128, 3), np.uint8)
    bad_images = [("float64", good.astype(np.float64), TypeError), ("list", good.tolist(), TypeError),
                  ("size-96", np.zeros((1, 96, 96, 3), np.uint8), ValueError),
                  ("gray", np.zeros((1, 128, 128, 1), np.uint8), ValueError),
                  ("3-d", good[0], ValueError), ("empty", good[:0], ValueError),
                  ("float-nan", np.full((1, 128, 128, 3), np.nan, np.float32), ValueError),
                  ("float-above-1", np.full((1, 128, 128, 3), 2.0, np.float32), ValueError)]
    for label, images, exc in bad_images:
        cases.append(Case(f"quant.Int8FrozenStage.forward:images={label}", lambda im=images: int8.forward(im), exc,
                          ("images",)))
        cases.append(Case(f"quant.quantize_frozen_stage:calibration_images={label}",
                          lambda im=images: quant.quantize_frozen_stage(frozen, im), exc,
                          ("images", "calibration_images")))
    cases += [Case("quant.quantize_frozen_stage:frozen=int8", lambda: quant.quantize_frozen_stage(int8, good),
                   TypeError, ("frozen",)),
              Case("quant.quantize_frozen_stage:calibration_images=None",
                   lambda: quant.quantize_frozen_stage(frozen, None), ValueError, ("calibration_images",)),
              Case("quant.quantize_frozen_stage:percentile=10", lambda: quant.quantize_frozen_stage(
                  frozen, good, percentile=10.0), ValueError, ("percentile",)),
              Case("quant.quantize_frozen_stage:percentile=nan", lambda: quant.quantize_frozen_stage(
                  frozen, good, percentile=float("nan")), ValueError, ("percentile",)),
              Case("quant.quantize_frozen_stage:batch=0", lambda: quant.quantize_frozen_stage(frozen, good, batch=0),
                   ValueError, ("batch",)),
              Case("quant.Int8FrozenStage:batch_chunk=0", lambda: quant.Int8FrozenStage(
                  [SimpleNamespace(out_scale=0.02)], "conv5_4/dw", 128, batch_chunk=0), ValueError, ("batch_chunk",))]
    return cases


# ------------------------------------------------------------------ the CLI
CLI_CASES = [
    (["run", "--scenario", "nope"], ("scenario",)),
    (["run", "--bits", "9"], ("bits",)),
    (["run", "--bits", "fp8"], ("bits",)),
    (["run", "--lr-layer", "nope"], ("lr_layer", "lr-layer", "LR layer")),
    (["--threads", "0", "run"], ("threads",)),
    (["--threads", "many", "run"], ("threads",)),
    (["run", "--lr-count", "0"], ("lr_count", "lr-count")),
    (["run", "--batches", "0"], ("batches",)),
    (["run", "--epochs", "0"], ("epochs",)),
    (["run", "--lr", "nan"], ("lr",)),
    (["run", "--minibatch", "0"], ("minibatch",)),
    (["run", "--eval-every", "0"], ("eval_every", "eval-every")),
    (["run", "--level", "pixel"], ("level",)),
    (["run", "--resume"], ("resume", "checkpoint")),
    (["plan", "--bits", "9"], ("bits",)),
    (["plan", "--bits", "eight"], ("bits",)),
    (["plan", "--lr-layer", "nope"], ("lr_layer", "lr-layer")),
    (["plan", "--lr-count", "-5"], ("lr_count", "lr-count")),
    (["plan", "--input-size", "0"], ("input_size", "input-size")),
    (["plan", "--momentum", "nan"], ("momentum",)),
    (["plan", "--update-rule", "adam"], ("update-rule", "update_rule")),
    (["plan", "--params", "/nonexistent/p.json"], ("p.json",)),
    (["plan", "--vega-mhz", "-1"], ("vega_mhz", "vega-mhz")),
    (["nope"], ("nope", "COMMAND", "command")),
]
# run checks its options before it loads any model, but needs the model package.
try:
    import pulptrain.models  # noqa: F401
    HAVE_MODELS = True
except ImportError:
    HAVE_MODELS = False


def cli_cases():
    return [c for c in CLI_CASES if HAVE_MODELS or c[0][0] != "run"]


def run_cli_cases() -> dict:
    """Each command line in its own `python -m pulptrain` process, a few at a
    time; pass: exit status 2, the option named on stderr, no traceback."""
    results = {}
    pending = list(cli_cases())
    running = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    while pending or running:
        while pending and len(running) < 4:
            argv, names = pending.pop(0)
            proc = subprocess.Popen([sys.executable, "-m", "pulptrain", *argv, "--quiet"
                                     if argv[-1] == "run" or argv[0] == "run" else "--json"],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            running.append((argv, names, proc))
        argv, names, proc = running.pop(0)
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        key = "cli:" + " ".join(argv)
        ok = proc.returncode == 2 and "Traceback" not in err and any(n in err for n in names)
        results[key] = {"ok": ok, "detail": f"exit {proc.returncode}; stderr: {err.strip()[-400:]}"}
    return results


# ------------------------------------------------------------------ worker
def all_cases():
    cases = ops_cases() + tile_cases() + replay_cases() + plan_cases() + nn_cases() + quant_cases()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    return cases


def _same(a, b) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def check(case: Case) -> tuple[bool, str]:
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            result = case.call()
    except Exception as exc:  # the sweep's subject: which exception, with what message
        if case.expect is ACCEPT:
            return False, f"accepted input raised {type(exc).__name__}: {exc}"
        if not isinstance(exc, case.expect):
            return False, f"raised {type(exc).__name__}: {exc} (expected {case.expect.__name__})"
        message = str(exc)
        if case.names and not any(n in message for n in case.names):
            return False, f"message does not name {' / '.join(case.names)}: {message}"
        return True, f"{type(exc).__name__}: {message}"
    if case.expect is not ACCEPT:
        return False, f"no exception (expected {case.expect.__name__})"
    return (True, "accepted") if _same(result, case.reference()) else (False, "accepted but result differs")


def worker() -> None:
    """Run every in-process case; one JSON line per case on stdout. The id is
    written to stderr first, so a crash names its case."""
    for case in all_cases():
        print(f"running {case.id}", file=sys.stderr, flush=True)
        ok, detail = check(case)
        print(json.dumps({"id": case.id, "ok": ok, "detail": detail}), flush=True)


def run_worker() -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    results = {}
    for line in proc.stdout.splitlines():
        entry = json.loads(line)
        results[entry["id"]] = entry
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.startswith("running ")]
        results["__crash__"] = {"ok": False, "detail": f"worker exited with {proc.returncode} while "
                                f"{last[-1] if last else 'starting'}: {proc.stderr[-2000:]}"}
    return results


# ------------------------------------------------------------------ pytest
@pytest.fixture(scope="module")
def results():
    out = run_worker()
    out.update(run_cli_cases())
    return out


CASE_IDS = [c.id for c in all_cases()]
CLI_IDS = ["cli:" + " ".join(argv) for argv, _ in cli_cases()]


def test_worker_did_not_crash(results):
    assert "__crash__" not in results, results.get("__crash__", {}).get("detail")


@pytest.mark.parametrize("case_id", CASE_IDS + CLI_IDS)
def test_bad_input(results, case_id):
    assert case_id in results, f"{case_id}: no result (worker crashed before it?)"
    assert results[case_id]["ok"], f"{case_id}: {results[case_id]['detail']}"


def test_pair_count(results):
    n = len(CASE_IDS) + len(CLI_IDS)
    print(f"bad-input sweep: {n} (function, bad input) pairs, "
          f"{sum(r['ok'] for k, r in results.items() if k != '__crash__')} handled")
    assert n >= 300


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        worker()
        sys.exit(0)
    res = run_worker()
    res.update(run_cli_cases())
    bad = {k: v for k, v in res.items() if not v["ok"]}
    for k, v in bad.items():
        print(f"FAIL {k}: {v['detail']}")
    print(f"bad-input sweep: {len(CASE_IDS) + len(CLI_IDS)} (function, bad input) pairs, "
          f"{len(res) - len(bad)} handled, {len(bad)} not")
    sys.exit(1 if bad else 0)
