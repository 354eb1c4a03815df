"""The adaptive stage: the pretrained layers above the LR layer as a
trainable pulptrain.nn model, plus a new classifier.

Layer names follow the Caffe / AR1 naming ("conv5_4/sep", "conv5_5/dw", ...,
"pool6", "fc7"), so parameters read "conv5_5/dw.weight", "fc7.bias". Each
convolution's ReLU6 is fused into it (bitwise the same as a separate layer).
BatchNorm is folded into the convolutions (its statistics are those of
ImageNet; the original code's Batch Renormalization is not reproduced).
"""
from __future__ import annotations

import math

import numpy as np

from pulptrain import nn

CLASSIFIER = "fc7"


class AdaptiveStage(nn.Sequential):
    """A named Sequential whose last layer, ``fc7``, is the new classifier."""

    def reset_classifier(self, seed: int) -> None:
        """Redraw fc7: He-normal weights from ``seed``, zero bias."""
        fc = self[CLASSIFIER]
        rng = np.random.default_rng(seed)
        fan_in = fc.weight.data.shape[1]
        fc.weight.data[...] = rng.standard_normal(fc.weight.data.shape) * math.sqrt(2.0 / fan_in)
        fc.bias.data[...] = 0.0


def adaptive_model(layers, num_classes: int, seed: int = 0) -> AdaptiveStage:
    """layers: pulptrain.models.mobilenet.Layer list above the LR layer."""
    named = []
    for layer in layers:
        spec = layer.spec
        if spec.kind == "pool":
            named.append((spec.name, nn.GlobalAvgPool()))
            continue
        if spec.kind == "depthwise":
            module = nn.DepthwiseConv2d(spec.in_channels, 3, spec.stride, "same", activation="relu6")
        elif spec.kind == "pointwise":
            module = nn.PointwiseConv2d(spec.in_channels, spec.out_channels, activation="relu6")
        else:
            module = nn.Conv2d(spec.in_channels, spec.out_channels, 3, spec.stride, "same")
        module.weight.data[...] = layer.weight
        module.bias.data[...] = layer.bias
        named.append((spec.name, module))
        if spec.kind not in ("depthwise", "pointwise"):
            named.append((f"{spec.name}/relu", nn.ReLU6()))
    if layers and layers[-1].spec.kind != "pool":   # an empty list: the LR layer is pool6 itself
        named.append(("pool6", nn.GlobalAvgPool()))
    in_features = layers[-1].spec.out_channels if layers else 1024
    named.append((CLASSIFIER, nn.Linear(in_features, num_classes)))
    model = AdaptiveStage(*named)
    model.reset_classifier(seed)
    return model
