"""Inputs the fuzz targets (tests/fuzz/) found that raised something other
than FormatError, kept as regression tests; each lives in the target's seed
corpus too."""
import os

import pytest

from pulptrain.errors import FormatError
from pulptrain.models import _graphdef
from pulptrain.scenarios import idx

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "corpus")


def test_idx_dims_whose_int64_product_wraps_to_zero():
    data = bytes([0, 0, 8, 3]) + (2**31).to_bytes(4, "big") * 2 + (4).to_bytes(4, "big")
    with pytest.raises(FormatError, match="truncated"):
        idx.parse_idx(data)


def test_idx_zero_dim_beside_dims_numpy_cannot_hold():
    # one zero dimension makes the declared size 0 bytes; numpy still refuses the shape
    dims = [65535, 2**32 - 1, 2**24, 0] + [2**32 - 1] * 12 + [2**32 - 2**16]
    data = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    with pytest.raises(FormatError, match="cannot be represented"):
        idx.parse_idx(data)


def test_idx_more_dims_than_numpy_supports():
    data = bytes([0, 0, 8, 40]) + (1).to_bytes(4, "big") * 40 + b"\x00"
    with pytest.raises(FormatError, match="40 dimensions"):
        idx.parse_idx(data)


def test_idx_dims_whose_int64_product_goes_negative():
    data = bytes([0, 0, 8, 2]) + (2**32 - 1).to_bytes(4, "big") * 2
    with pytest.raises(FormatError, match="truncated"):
        idx.parse_idx(data)


def test_graphdef_int_val_too_large_for_its_dtype():
    with open(os.path.join(CORPUS, "graphdef", "int_val_overflow"), "rb") as f:
        data = f.read()
    with pytest.raises(FormatError, match="do not fit"):
        _graphdef.parse_graphdef(data)


@pytest.mark.parametrize("value,dtype", [(300, 4), (-1, 4), (1 << 40, 3)])
def test_graphdef_fill_value_outside_dtype(value, dtype):
    def field(number, payload):
        def varint(v):
            out = bytearray()
            while True:
                byte, v = v & 0x7F, v >> 7
                out.append(byte | (0x80 if v else 0))
                if not v:
                    return bytes(out)
        if isinstance(payload, int):
            return varint(number << 3) + varint(payload)
        return varint(number << 3 | 2) + varint(len(payload)) + payload
    tensor = field(1, dtype) + field(2, field(2, field(1, 3))) + field(10, value % (1 << 64))
    attr = field(1, b"value") + field(2, field(8, tensor))
    graph = field(1, field(1, b"c") + field(2, b"Const") + field(5, attr))
    with pytest.raises(FormatError, match="do not fit"):
        _graphdef.parse_graphdef(graph)
