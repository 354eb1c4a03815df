"""Post-training INT8 quantization of the frozen stage and its integer-only
execution on the C runtime (csrc/qkernels).

Scheme (what quantize_frozen_stage computes; the C header pt_qkernels.h
gives the kernel arithmetic):
- input pixels are used exactly: v = 2p - 255, i.e. TF-slim's [-1, 1] input
  in units of 1/255;
- weights: int8, symmetric, one scale per output channel (max |w| / 127);
- activations: uint8 codes with zero point 0 and one scale per tensor,
  scale = min(6, calibrated top) / 255, the top taken over a calibration set
  of real images (a percentile of the FP32 activations, 100 = the maximum);
  ReLU6 is the clamp of the code to [0, 255];
- bias: int32 in units of in_scale * w_scale[c];
- requantization: the real factor in_scale * w_scale[c] / out_scale as a
  multiplier in [2^30, 2^31) and a right shift, rounding half up;
- pool6 (if it is the LR layer): integer mean of the codes, rounding half up.

The LR-layer output is the uint8 code with its scale and zero point, ready
for the latent-replay store without a float round trip.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pulptrain import _alloc, _quant
from pulptrain._threads import get_num_threads
from pulptrain._validate import conv_padding, finite_float, positive_int
from pulptrain.models.mobilenet import (FloatFrozenStage, LayerSpec, check_images, images_to_input,
                                        images_to_pixels, output_shape)

__all__ = ["quantize_frozen_stage", "Int8FrozenStage", "QuantLayer", "quantize_multiplier",
           "kernel_isa"]

_KINDS = {"conv": 0, "depthwise": 1, "pointwise": 2}
_INPUT_SCALE = 1.0 / 255.0        # real value of one unit of v = 2p - 255
_RELU6_TOP = 6.0
_HIST_BINS = 6000


def kernel_isa() -> str:
    """The instruction-set path the INT8 kernels take on this machine."""
    return _quant.isa()


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive real factors -> (multiplier int32 in [2^30, 2^31), shift in
    [1, 62]) with real ~= multiplier / 2^shift. Factors below 2^-32 are
    represented as 2^-32 (their outputs round to 0 anyway)."""
    real = np.asarray(real, dtype=np.float64)
    if not (np.isfinite(real).all() and (real > 0).all()):
        raise ValueError("requantization factors must be finite and positive")
    mantissa, exponent = np.frexp(real)                  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    multiplier = np.rint(mantissa * 2.0**31).astype(np.int64)
    carry = multiplier == 2**31
    multiplier[carry] //= 2
    exponent = exponent + carry
    shift = 31 - exponent.astype(np.int64)
    if (shift < 1).any():
        raise ValueError(f"a requantization factor {real.max():.3g} is >= 2^30: scales are inconsistent")
    tiny = shift > 62
    multiplier[tiny], shift[tiny] = 2**30, 62
    return multiplier.astype(np.int32), shift.astype(np.int32)


@dataclass
class QuantLayer:
    """One integer layer: weights int8 (pulptrain layout), per-channel
    requantization, input / output activation scales."""
    spec: LayerSpec
    weight: np.ndarray | None          # int8; None for pool6
    weight_scale: np.ndarray | None    # float64 [Cout]
    bias: np.ndarray | None            # int32 [Cout]
    multiplier: np.ndarray | None      # int32 [Cout]
    shift: np.ndarray | None           # int32 [Cout]
    in_scale: float
    out_scale: float
    act_max: int = 255
    packed: np.ndarray | None = None   # pointwise weights packed for the fast kernel


_BIAS_LIMIT = 2.0**29   # |bias| in accumulator units, leaving room for the products


def _weight_scales(spec: LayerSpec, w: np.ndarray, b: np.ndarray, in_scale: float) -> np.ndarray:
    """max |w| / 127 per output channel, raised where needed so that the bias
    fits the accumulator (channels whose weights are ~0 and whose output is
    their bias, as BatchNorm folding leaves a few)."""
    axes = {"conv": (1, 2, 3), "depthwise": (0, 1), "pointwise": (1,)}[spec.kind]
    scale = np.abs(w.astype(np.float64)).max(axis=axes) / 127.0
    scale = np.maximum(scale, np.abs(b.astype(np.float64)) / (in_scale * _BIAS_LIMIT))
    return np.where(scale > 0, scale, 1.0)


def _weight_error_shift(spec: LayerSpec, weight_error: np.ndarray, input_mean: np.ndarray) -> np.ndarray:
    """Expected output shift (weight_error applied to the mean input), per
    output channel."""
    if spec.kind == "conv":
        return np.einsum("okhc,c->o", weight_error, input_mean)
    if spec.kind == "depthwise":
        return weight_error.sum(axis=(0, 1)) * input_mean
    return weight_error @ input_mean


def _quantize_layer(layer, in_scale: float, out_scale: float, input_mean: np.ndarray | None) -> QuantLayer:
    spec = layer.spec
    if spec.kind == "pool":
        return QuantLayer(spec, None, None, None, None, None, in_scale, in_scale)
    w_scale = _weight_scales(spec, layer.weight, layer.bias, in_scale)
    shape = {"conv": (-1, 1, 1, 1), "depthwise": (1, 1, -1), "pointwise": (-1, 1)}[spec.kind]
    w_q = np.clip(np.rint(layer.weight / w_scale.reshape(shape)), -127, 127).astype(np.int8)
    bias = layer.bias.astype(np.float64)
    if input_mean is not None:
        # bias correction: remove the mean output shift that rounding the
        # weights causes on inputs like the calibration images
        weight_error = w_q * w_scale.reshape(shape) - layer.weight.astype(np.float64)
        bias = bias - _weight_error_shift(spec, weight_error, input_mean)
    acc_scale = in_scale * w_scale
    bias = np.rint(bias / acc_scale)
    multiplier, shift = quantize_multiplier(acc_scale / out_scale)
    q = QuantLayer(spec, np.ascontiguousarray(w_q), w_scale, bias.astype(np.int32), multiplier, shift,
                   in_scale, out_scale)
    if spec.kind == "pointwise":
        q.packed = _quant.pointwise_pack(w_q.reshape(-1), spec.in_channels, spec.out_channels)
    return q


class Int8FrozenStage:
    """The frozen stage in integer arithmetic (uint8 activations, int8 weights).

    forward_codes(images) -> (codes uint8 (N, H, W, C) or (N, C), scale, zero_point)
    forward(images)       -> float32 latents = codes * scale
    images: NHWC RGB, uint8 or float32 in [0, 1] (rounded to 8-bit pixels)."""

    def __init__(self, layers: list[QuantLayer], lr_layer: str, input_size: int, batch_chunk: int = 8):
        self.layers = layers
        self.lr_layer = lr_layer
        self.input_size = input_size
        self.output_shape = output_shape(lr_layer, input_size)
        self.scale = float(layers[-1].out_scale)
        self.zero_point = 0
        self.batch_chunk = positive_int("batch_chunk", batch_chunk)

    def run_layer(self, layer: QuantLayer, x: np.ndarray, *, ref: bool = False) -> np.ndarray:
        """One integer layer on uint8 NHWC input (pixels for the first)."""
        spec = layer.spec
        n, h, w, c = x.shape
        if spec.kind == "pool":
            total = x.reshape(n, h * w, c).sum(axis=1, dtype=np.int64)
            return ((total + (h * w) // 2) // (h * w)).astype(np.uint8)
        k = 1 if spec.kind == "pointwise" else 3
        stride = (spec.stride, spec.stride)
        pads = conv_padding("same", (h, w), (k, k), stride) if k > 1 else (0, 0, 0, 0)
        oh, ow = -(-h // spec.stride), -(-w // spec.stride)
        y = _alloc.empty((n, oh, ow, spec.out_channels), dtype=np.uint8)
        weights = layer.packed if (spec.kind == "pointwise" and not ref) else layer.weight.reshape(-1)
        _quant.conv_forward(_KINDS[spec.kind], x.reshape(-1), (n, h, w, c), spec.out_channels, (k, k),
                            stride, pads, weights, layer.bias, layer.multiplier, layer.shift,
                            layer.act_max, spec.kind == "conv", y.reshape(-1), get_num_threads(), ref)
        return y

    def forward_codes(self, images, *, ref: bool = False):
        pixels = images_to_pixels(images, self.input_size)
        chunks = []
        for start in range(0, pixels.shape[0], self.batch_chunk):
            x = pixels[start:start + self.batch_chunk]
            for layer in self.layers:
                x = self.run_layer(layer, x, ref=ref)
            chunks.append(x)
        codes = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        return codes, self.scale, self.zero_point

    def forward(self, images) -> np.ndarray:
        codes, scale, _ = self.forward_codes(images)
        return codes.astype(np.float32) * np.float32(scale)

    __call__ = forward


def quantize_frozen_stage(frozen: FloatFrozenStage, calibration_images, *, percentile: float = 99.99,
                          bias_correction: bool = True, batch: int = 16) -> Int8FrozenStage:
    """Post-training INT8 quantization of a FloatFrozenStage.

    calibration_images: real images (NHWC, uint8 or float32 in [0, 1]) at the
    stage's input size; each activation scale is the ``percentile`` of that
    layer's FP32 outputs over them (capped by ReLU6's 6). With
    ``bias_correction`` each bias absorbs the mean output shift that rounding
    the weights causes on the calibration activations (Nagel et al., ICCV
    2019, "Data-Free Quantization", empirical variant)."""
    if not isinstance(frozen, FloatFrozenStage):
        raise TypeError(f"frozen must be a FloatFrozenStage, got {type(frozen).__name__}")
    if calibration_images is None or (isinstance(calibration_images, np.ndarray)
                                      and calibration_images.ndim == 4 and calibration_images.shape[0] == 0):
        raise ValueError("calibration_images must hold at least one real image: activation scales are "
                         "calibrated on them")
    check_images(calibration_images, frozen.input_size)
    percentile = finite_float("percentile", percentile)
    if not 50.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must lie in [50, 100], got {percentile}")
    batch = positive_int("batch", batch)
    # ReLU6 outputs lie in [0, 6]: a fine histogram per layer gives the
    # percentile over any number of images in constant memory.
    edges = np.linspace(0.0, _RELU6_TOP, _HIST_BINS + 1)
    hists = np.zeros((len(frozen.layers), _HIST_BINS), dtype=np.int64)
    # channel sums of every layer's input (the first: the [-1, 1] image)
    input_sums = [np.zeros(layer.spec.in_channels) for layer in frozen.layers]
    pixels_seen = [0] * len(frozen.layers)
    for start in range(0, calibration_images.shape[0], batch):
        chunk = calibration_images[start:start + batch]
        x = images_to_input(chunk, frozen.input_size)
        for i, (_, out) in enumerate(frozen.layer_outputs(chunk)):
            input_sums[i] += x.reshape(-1, x.shape[-1]).sum(axis=0, dtype=np.float64)
            pixels_seen[i] += x.size // x.shape[-1]
            hists[i] += np.histogram(out, bins=edges)[0]
            x = out
    layers, in_scale = [], _INPUT_SCALE
    for layer, hist, sums, seen in zip(frozen.layers, hists, input_sums, pixels_seen):
        cumulative = np.cumsum(hist)
        nonzero = np.nonzero(hist)[0]
        if nonzero.size == 0 or edges[nonzero[-1] + 1] <= 0:
            top = _RELU6_TOP
        else:
            bin_index = int(np.searchsorted(cumulative, cumulative[-1] * percentile / 100.0))
            top = float(edges[min(bin_index, nonzero[-1]) + 1])
        q = _quantize_layer(layer, in_scale, top / 255.0, sums / seen if bias_correction else None)
        layers.append(q)
        in_scale = q.out_scale
    return Int8FrozenStage(layers, frozen.lr_layer, frozen.input_size)
