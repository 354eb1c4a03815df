"""Pretrained backbones: MobileNetV1 1.0 (ImageNet) split at a latent-replay layer."""
from pulptrain.models.mobilenet import (LAYERS, LR_LAYER_NAMES, FloatClassifier, FloatFrozenStage,
                                        layer_index, mobilenet_v1, output_shape)
from pulptrain.models.weights import WeightsUnavailableError, load_weights

__all__ = ["mobilenet_v1", "FloatFrozenStage", "FloatClassifier", "LAYERS", "LR_LAYER_NAMES",
           "layer_index", "output_shape", "load_weights", "WeightsUnavailableError"]
