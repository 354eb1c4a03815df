"""Fuzz the frozen-graph weight loader (pulptrain/models/_graphdef.py
parse_graphdef, then constants and weights_from_graph in
pulptrain/models/weights.py): the input is the GraphDef protobuf itself.
Anything but FormatError for a bad graph is a failure."""
import os
import sys

import atheris
import numpy  # noqa: F401  (imported uninstrumented: only pulptrain is traced)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

with atheris.instrument_imports(include=["pulptrain"]):
    from pulptrain.errors import FormatError
    from pulptrain.models import _graphdef, weights


def one_input(data: bytes) -> None:
    nodes = _graphdef.parse_graphdef(data)
    assert nodes and all(isinstance(n.name, str) and isinstance(n.op, str) for n in nodes)
    for name, value in _graphdef.constants(nodes).items():
        assert value.size <= _graphdef.MAX_TENSOR_ELEMENTS, (name, value.shape)
    weights.weights_from_graph(data)


if __name__ == "__main__":
    _harness.run(one_input, (FormatError,))
