"""MobileNetV1 1.0 (TF-slim, ImageNet) split at a latent-replay (LR) layer.

Layer names follow the original Caffe MobileNet used by the Latent Replay /
AR1 code; each maps onto a TF-slim layer of the pretrained graph:

  Caffe name          TF-slim layer              stride  out ch  out HxW @128
  conv1               Conv2d_0 (3x3 conv)          2       32      64
  conv2_1/dw, /sep    Conv2d_1_depthwise, _pointwise 1     32, 64  64
  conv2_2/dw, /sep    Conv2d_2_*                   2      64, 128  32
  conv3_1/dw, /sep    Conv2d_3_*                   1     128, 128  32
  conv3_2/dw, /sep    Conv2d_4_*                   2     128, 256  16
  conv4_1/dw, /sep    Conv2d_5_*                   1     256, 256  16
  conv4_2/dw, /sep    Conv2d_6_*                   2     256, 512   8
  conv5_1 .. conv5_5  Conv2d_7_* .. Conv2d_11_*    1     512, 512   8
  conv5_6/dw, /sep    Conv2d_12_*                  2     512, 1024  4
  conv6/dw, /sep      Conv2d_13_*                  1    1024, 1024  4
  pool6               global average pool                  1024      1
  fc7                 Logits/Conv2d_1c_1x1 (1001 ImageNet logits)

so the default LR layer "conv5_4/dw" is TF Conv2d_10_depthwise (8x8x512 at
128x128 input), and the adaptive stage above it is conv5_4/sep, conv5_5,
conv5_6, conv6, pool6 and the classifier. "/pw" is accepted for "/sep", and
the TF names themselves are accepted too. Every conv is followed by its
(folded) BatchNorm and ReLU6; the LR activation is that ReLU6 output.

Input: NHWC RGB images, uint8 or float32 in [0, 1], scaled to [-1, 1] as
TF-slim was trained; TF "SAME" padding; ImageNet class = logit index - 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pulptrain._validate import positive_int
from pulptrain.models.weights import load_weights, tf_layers

_CAFFE_BLOCKS = ["conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv4_1", "conv4_2", "conv5_1",
                 "conv5_2", "conv5_3", "conv5_4", "conv5_5", "conv5_6", "conv6"]
POOL_LAYER = "pool6"
IMAGENET_LOGITS = 1001


@dataclass(frozen=True)
class LayerSpec:
    name: str          # Caffe / AR1 name, e.g. "conv5_4/dw"
    tf_name: str       # TF-slim name, e.g. "Conv2d_10_depthwise"
    kind: str          # "conv", "depthwise", "pointwise" or "pool"
    in_channels: int
    out_channels: int
    stride: int


def _build_layer_table() -> list[LayerSpec]:
    table = []
    for tf_name, kind, cin, cout, stride in tf_layers():
        if kind == "conv":
            name = "conv1"
        else:
            block = _CAFFE_BLOCKS[int(tf_name.split("_")[1]) - 1]
            name = f"{block}/{'dw' if kind == 'depthwise' else 'sep'}"
        table.append(LayerSpec(name, tf_name, kind, cin, cout, stride))
    table.append(LayerSpec(POOL_LAYER, "AvgPool_1a", "pool", 1024, 1024, 1))
    return table


LAYERS: list[LayerSpec] = _build_layer_table()
LR_LAYER_NAMES: list[str] = [spec.name for spec in LAYERS]


def layer_index(lr_layer: str) -> int:
    """Position of an LR layer (Caffe name, '/pw' alias or TF name)."""
    if not isinstance(lr_layer, str):
        raise TypeError(f"lr_layer must be a str, got {type(lr_layer).__name__}")
    key = lr_layer.strip()
    if key.endswith("/pw"):
        key = key[:-3] + "/sep"
    for i, spec in enumerate(LAYERS):
        if key in (spec.name, spec.tf_name):
            return i
    raise ValueError(f"lr_layer {lr_layer!r} is not a MobileNetV1 layer; choose one of "
                     f"{', '.join(LR_LAYER_NAMES)} (or the TF-slim names Conv2d_0 .. Conv2d_13_pointwise)")


def output_shape(lr_layer: str, input_size: int) -> tuple[int, ...]:
    """Shape of one latent (H, W, C), or (C,) after pool6."""
    index = layer_index(lr_layer)
    size = input_size
    for spec in LAYERS[:index + 1]:
        if spec.kind == "pool":
            return (spec.out_channels,)
        size = -(-size // spec.stride)
    return (size, size, LAYERS[index].out_channels)


def check_images(images, input_size: int) -> None:
    """NHWC RGB images of the model's input size: uint8, or float32 in [0, 1]."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy.ndarray, got {type(images).__name__}")
    if images.dtype not in (np.uint8, np.float32):
        raise TypeError(f"images must be uint8 or float32 in [0, 1], got {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != (input_size, input_size, 3):
        raise ValueError(f"images must have shape (N, {input_size}, {input_size}, 3) (NHWC RGB at the "
                         f"model's input_size), got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image")
    if images.dtype == np.float32 and not (np.isfinite(images).all() and images.min() >= 0.0
                                           and images.max() <= 1.0):
        raise ValueError("float32 images must hold finite values in [0, 1]")


def images_to_pixels(images, input_size: int) -> np.ndarray:
    """uint8 pixels of validated images (float32 rounded to 8 bits)."""
    check_images(images, input_size)
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    return np.rint(images * np.float32(255.0)).astype(np.uint8)


def images_to_input(images, input_size: int) -> np.ndarray:
    """TF-slim input of validated images: float32 NHWC in [-1, 1]."""
    check_images(images, input_size)
    if images.dtype == np.uint8:
        return images.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
    return np.ascontiguousarray(images * np.float32(2.0) - np.float32(1.0))


@dataclass
class Layer:
    """One pretrained layer: spec plus BN-folded float32 weights."""
    spec: LayerSpec
    weight: np.ndarray | None
    bias: np.ndarray | None


def _float_layer_forward(layer: Layer, x: np.ndarray) -> np.ndarray:
    from pulptrain import ops
    kind = layer.spec.kind
    if kind == "pool":
        return ops.global_avg_pool_forward(x)
    if kind == "conv":
        y = ops.conv2d_forward(x, layer.weight, layer.bias, layer.spec.stride, "same")
    elif kind == "depthwise":
        y = ops.depthwise_conv2d_forward(x, layer.weight, layer.bias, layer.spec.stride, "same")
    else:
        y = ops.pointwise_conv2d_forward(x, layer.weight, layer.bias)
    return ops.relu6_forward(y)


class FloatFrozenStage:
    """The pretrained layers up to and including the LR layer, run in FP32 on
    the pulptrain runtime.

    forward(images) takes NHWC RGB images (uint8, or float32 in [0, 1]) of
    shape (N, input_size, input_size, 3) and returns the LR activations,
    float32 (N, H, W, C) (or (N, 1024) at pool6)."""

    def __init__(self, layers: list[Layer], lr_layer: str, input_size: int):
        self.layers = layers
        self.lr_layer = lr_layer
        self.input_size = input_size
        self.output_shape = output_shape(lr_layer, input_size)

    def layer_outputs(self, images):
        """Yield (layer, float32 output) for every layer, input first scaled."""
        x = images_to_input(images, self.input_size)
        for layer in self.layers:
            x = _float_layer_forward(layer, x)
            yield layer, x

    def forward(self, images) -> np.ndarray:
        out = None
        for _, out in self.layer_outputs(images):
            pass
        return out

    __call__ = forward


def _layers(weights: dict[str, np.ndarray], specs: list[LayerSpec]) -> list[Layer]:
    out = []
    for spec in specs:
        if spec.kind == "pool":
            out.append(Layer(spec, None, None))
        else:
            out.append(Layer(spec, weights[f"{spec.tf_name}/w"], weights[f"{spec.tf_name}/b"]))
    return out


class FloatClassifier:
    """The pretrained layers after the LR layer plus the 1001-way ImageNet
    classifier, in FP32 on the pulptrain runtime: latents -> logits
    (ImageNet class = logit index - 1)."""

    def __init__(self, layers: list[Layer], weight: np.ndarray, bias: np.ndarray):
        self.layers = layers
        self.weight = weight
        self.bias = bias

    def forward(self, latents: np.ndarray) -> np.ndarray:
        from pulptrain import ops
        x = latents
        for layer in self.layers:
            x = _float_layer_forward(layer, x)
        if x.ndim == 4:
            x = ops.global_avg_pool_forward(x)
        return ops.linear_forward(x, self.weight, self.bias)

    __call__ = forward


def mobilenet_v1(lr_layer: str = "conv5_4/dw", input_size: int = 128, num_classes: int | None = None,
                 *, weights: dict[str, np.ndarray] | None = None, cache=None):
    """The ImageNet-pretrained MobileNetV1 1.0 split at ``lr_layer``.

    Returns (frozen, adaptive): ``frozen`` a FloatFrozenStage (quantize it to
    INT8 with pulptrain.quant.quantize_frozen_stage); ``adaptive`` the layers
    above the LR layer, initialised from the pretrained weights, with a new
    ``num_classes``-way classifier (a pulptrain.nn model), or with
    num_classes=None the pretrained 1001-way ImageNet classifier
    (a FloatClassifier). Weights come from load_weights(cache) unless given."""
    index = layer_index(lr_layer)
    input_size = positive_int("input_size", input_size, minimum=32)
    if num_classes is not None:
        num_classes = positive_int("num_classes", num_classes, minimum=2)
    if weights is None:
        weights = load_weights(cache)
    frozen = FloatFrozenStage(_layers(weights, LAYERS[:index + 1]), LAYERS[index].name, input_size)
    above = _layers(weights, LAYERS[index + 1:])
    if num_classes is None:
        return frozen, FloatClassifier(above, weights["Logits/w"], weights["Logits/b"])
    from pulptrain.models.adaptive import adaptive_model
    return frozen, adaptive_model(above, num_classes)
