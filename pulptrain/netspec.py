"""Layer tables (shapes, parameters, MAC counts) computed from a network's definition.

Used by the planner (``pulptrain.plan``); independent of the trained weights.
Shapes are (H, W, C), NHWC per sample. Padding is TensorFlow "SAME" (the
pretrained TF-slim MobileNetV1), so a stride-s window op maps H to ceil(H / s).
"""
from __future__ import annotations

from dataclasses import dataclass

# MobileNetV1: conv1 (3x3, stride 2, 32 channels), then 13 depthwise-separable
# blocks given as (Caffe block name, depthwise stride, pointwise output channels).
MOBILENET_V1_BLOCKS = (
    ("conv2_1", 1, 64), ("conv2_2", 2, 128), ("conv3_1", 1, 128), ("conv3_2", 2, 256),
    ("conv4_1", 1, 256), ("conv4_2", 2, 512), ("conv5_1", 1, 512), ("conv5_2", 1, 512),
    ("conv5_3", 1, 512), ("conv5_4", 1, 512), ("conv5_5", 1, 512), ("conv5_6", 2, 1024),
    ("conv6", 1, 1024),
)
# The classifier of the latent-replay Caffe models (ar1*): a linear layer after pool6.
CLASSIFIER_NAME = "mid_fc7"
BACKBONES = ("mobilenet_v1_1.0",)
# Layer kinds; the planner's per-kernel throughput tables use the same keys.
KINDS = ("conv", "dw", "pw", "pool", "linear")


@dataclass(frozen=True)
class Layer:
    """One layer. ``weights`` and ``bias`` are parameter counts (0 for pooling).

    MAC counts are per sample. A pooling layer counts one add per input
    element (forward) and one per input element (gradient)."""
    name: str
    kind: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    stride: int = 1
    relu6: bool = False

    @property
    def in_elements(self) -> int:
        h, w, c = self.in_shape
        return h * w * c

    @property
    def out_elements(self) -> int:
        h, w, c = self.out_shape
        return h * w * c

    @property
    def weights(self) -> int:
        cin, cout, k = self.in_shape[2], self.out_shape[2], self.kernel
        return {"conv": k * k * cin * cout, "dw": k * k * cin, "pw": cin * cout,
                "linear": cin * cout, "pool": 0}[self.kind]

    @property
    def bias(self) -> int:
        return 0 if self.kind == "pool" else self.out_shape[2]

    @property
    def params(self) -> int:
        return self.weights + self.bias

    @property
    def macs_forward(self) -> int:
        """Multiply-accumulates of the forward pass (pool: adds)."""
        ho, wo, cout = self.out_shape
        cin, k = self.in_shape[2], self.kernel
        return {"conv": ho * wo * cout * k * k * cin, "dw": ho * wo * cout * k * k,
                "pw": ho * wo * cout * cin, "linear": cin * cout,
                "pool": self.in_elements}[self.kind]

    @property
    def macs_grad_input(self) -> int:
        """The gradient w.r.t. the input is the transposed operation: same count."""
        return self.macs_forward

    @property
    def macs_grad_weight(self) -> int:
        """Every forward product contributes once to a weight gradient (pool: none)."""
        return 0 if self.kind == "pool" else self.macs_forward


def _window_out(size: int, stride: int) -> int:
    return -(-size // stride)


def mobilenet_v1(input_size: int = 128, num_classes: int = 50) -> list[Layer]:
    """MobileNetV1 1.0 layers with Caffe names, ending with pool6 and the classifier."""
    h = _window_out(input_size, 2)
    layers = [Layer("conv1", "conv", (input_size, input_size, 3), (h, h, 32), 3, 2, True)]
    c = 32
    for block, stride, cout in MOBILENET_V1_BLOCKS:
        ho = _window_out(h, stride)
        layers.append(Layer(f"{block}/dw", "dw", (h, h, c), (ho, ho, c), 3, stride, True))
        layers.append(Layer(f"{block}/pw", "pw", (ho, ho, c), (ho, ho, cout), 1, 1, True))
        h, c = ho, cout
    layers.append(Layer("pool6", "pool", (h, h, c), (1, 1, c), h, h))
    layers.append(Layer(CLASSIFIER_NAME, "linear", (1, 1, c), (1, 1, num_classes)))
    return layers


def build(backbone: str, input_size: int, num_classes: int) -> list[Layer]:
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    return mobilenet_v1(input_size, num_classes)


def lr_layer_names(layers: list[Layer]) -> list[str]:
    """Layers whose output can be the latent-replay layer (all but the classifier)."""
    return [layer.name for layer in layers[:-1]]


def split(layers: list[Layer], lr_layer: str) -> tuple[list[Layer], list[Layer]]:
    """(frozen stage up to and including ``lr_layer``, adaptive stage above it)."""
    names = lr_layer_names(layers)
    if lr_layer not in names:
        raise ValueError(f"lr_layer {lr_layer!r} does not exist; choose one of: {', '.join(names)}")
    cut = names.index(lr_layer) + 1
    return layers[:cut], layers[cut:]
