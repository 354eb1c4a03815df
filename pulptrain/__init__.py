"""pulptrain: on-device continual learning with quantized latent replays.

A portable C runtime (FP32 forward/backward training kernels, INT8 frozen-stage
kernels, a quantized latent-replay store) driven from Python."""
from pulptrain._core import C_VERSION as _C_VERSION
from pulptrain._threads import get_num_threads, set_num_threads
from pulptrain.errors import FormatError, PulptrainError, StatusError

__version__ = "0.1.0"
assert _C_VERSION == __version__, "C runtime and Python package versions differ"

__all__ = ["__version__", "set_num_threads", "get_num_threads",
           "PulptrainError", "StatusError", "FormatError"]
