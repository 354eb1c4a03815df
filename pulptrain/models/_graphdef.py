"""A small reader of TensorFlow frozen graphs (GraphDef protobuf wire format).

Only what a frozen inference graph needs: the nodes (name, op, inputs) and
their constant tensors. No protobuf or tensorflow dependency. Every read is
bounds-checked; corrupt or truncated input raises FormatError, never
IndexError or a silent short read.

Messages read (field numbers from tensorflow/core/framework/*.proto):
  GraphDef       1: node (NodeDef, repeated)
  NodeDef        1: name  2: op  3: input (repeated)  5: attr (map<string, AttrValue>)
  AttrValue      8: tensor (TensorProto)  (other kinds are skipped)
  TensorProto    1: dtype  2: tensor_shape  4: tensor_content  5: float_val
                 6: double_val  7: int_val  10: int64_val
  TensorShapeProto  2: dim (repeated; 1: size)  3: unknown_rank
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from pulptrain.errors import FormatError

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5

# TensorFlow DataType enum -> numpy dtype (the kinds a weight graph holds).
TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16,
             6: np.int8, 9: np.int64, 10: np.bool_}

# A weight tensor larger than this is not a MobileNet weight; it guards against
# a corrupt shape asking for an absurd allocation.
MAX_TENSOR_ELEMENTS = 1 << 24


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    tensor: np.ndarray | None = None      # the "value" attribute of a Const node


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise FormatError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise FormatError(f"varint longer than 10 bytes at byte {pos}")


def iter_fields(buf: memoryview, start: int, end: int):
    """Yield (field_number, wire_type, value) of one message in buf[start:end].

    value is an int for varints, a (begin, end) span for length-delimited
    fields and raw bytes for fixed32/fixed64."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FormatError(f"field number 0 at byte {pos}")
        if wire == WIRE_VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire == WIRE_LEN:
            length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise FormatError(f"field {number} of {length} bytes overruns its message "
                                  f"(byte {pos}, {end - pos} left)")
            value = (pos, pos + length)
            pos += length
        elif wire in (WIRE_FIXED32, WIRE_FIXED64):
            size = 4 if wire == WIRE_FIXED32 else 8
            if size > end - pos:
                raise FormatError(f"truncated fixed{size * 8} field {number} at byte {pos}")
            value = bytes(buf[pos:pos + size])
            pos += size
        else:
            raise FormatError(f"unsupported wire type {wire} (field {number}) at byte {pos}")
        yield number, wire, value


def _text(buf: memoryview, span, what: str) -> str:
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} is not valid UTF-8") from exc


def _expect(wire: int, wanted: int, what: str) -> None:
    if wire != wanted:
        raise FormatError(f"{what} has wire type {wire}, expected {wanted}")


def _shape(buf: memoryview, span) -> tuple[int, ...]:
    dims = []
    for number, wire, value in iter_fields(buf, *span):
        if number == 2:
            _expect(wire, WIRE_LEN, "TensorShapeProto.dim")
            size = 0
            for n2, w2, v2 in iter_fields(buf, *value):
                if n2 == 1:
                    _expect(w2, WIRE_VARINT, "Dim.size")
                    size = v2 - (1 << 64) if v2 >= 1 << 63 else v2
            if size < 0:
                raise FormatError(f"tensor dimension {size} is negative or unknown")
            dims.append(size)
        elif number == 3 and value:
            raise FormatError("tensor shape has unknown rank")
    return tuple(dims)


def _packed(buf: memoryview, wire: int, value, fmt: str, size: int, what: str) -> list:
    if wire == WIRE_LEN:
        begin, stop = value
        if (stop - begin) % size:
            raise FormatError(f"packed {what} of {stop - begin} bytes is not a multiple of {size}")
        return list(struct.unpack(f"<{(stop - begin) // size}{fmt}", buf[begin:stop]))
    if fmt in "fd":
        _expect(wire, WIRE_FIXED32 if size == 4 else WIRE_FIXED64, what)
        return [struct.unpack("<" + fmt, value)[0]]
    _expect(wire, WIRE_VARINT, what)
    return [value]


def _varints(buf: memoryview, wire: int, value, what: str) -> list[int]:
    if wire == WIRE_VARINT:
        return [value]
    _expect(wire, WIRE_LEN, what)
    out, pos = [], value[0]
    while pos < value[1]:
        v, pos = _varint(buf, pos, value[1])
        out.append(v)
    return out


def parse_tensor(buf: memoryview, span) -> np.ndarray | None:
    """Decode a TensorProto into a numpy array (little-endian content); None
    for a dtype that holds no numbers (strings, resources)."""
    dtype_code, shape, content, values = None, (), None, []
    for number, wire, value in iter_fields(buf, *span):
        if number == 1:
            _expect(wire, WIRE_VARINT, "TensorProto.dtype")
            dtype_code = value
        elif number == 2:
            _expect(wire, WIRE_LEN, "TensorProto.tensor_shape")
            shape = _shape(buf, value)
        elif number == 4:
            _expect(wire, WIRE_LEN, "TensorProto.tensor_content")
            content = value
        elif number == 5:
            values += _packed(buf, wire, value, "f", 4, "float_val")
        elif number == 6:
            values += _packed(buf, wire, value, "d", 8, "double_val")
        elif number in (7, 10):
            raw = _varints(buf, wire, value, "int_val")
            bits = 32 if number == 7 else 64
            values += [v - (1 << 64) if v >= 1 << 63 else v for v in raw] if bits == 64 else \
                      [((v & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 for v in raw]
    if dtype_code is None:
        raise FormatError("a tensor has no dtype")
    if dtype_code not in TF_DTYPES:
        return None            # strings, resources, ...: not weights, left out
    dtype = np.dtype(TF_DTYPES[dtype_code]).newbyteorder("<")
    count = 1
    for d in shape:
        count *= d
        if count > MAX_TENSOR_ELEMENTS:
            raise FormatError(f"tensor of shape {shape} is implausibly large")
    if content is not None:
        nbytes = content[1] - content[0]
        if nbytes != count * dtype.itemsize:
            raise FormatError(f"tensor_content has {nbytes} bytes, shape {shape} of "
                              f"{dtype.name} needs {count * dtype.itemsize}")
        array = np.frombuffer(buf[content[0]:content[1]], dtype=dtype).copy()
    elif len(values) == count or len(values) == 1 or (not values and count == 0):
        # TensorFlow stores a constant filled with one value as that one value.
        try:
            array = (np.array(values, dtype=dtype) if len(values) == count
                     else np.full(count, values[0] if values else 0, dtype=dtype))
        except (OverflowError, ValueError) as exc:     # e.g. 300 for uint8, NaN for int32
            raise FormatError(f"tensor values do not fit {dtype.name}: {exc}") from None
    else:
        raise FormatError(f"tensor of shape {shape} has {len(values)} values")
    return array.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def parse_node(buf: memoryview, span) -> Node:
    name = op = None
    inputs: list[str] = []
    tensor = None
    for number, wire, value in iter_fields(buf, *span):
        if number in (1, 2, 3):
            _expect(wire, WIRE_LEN, "NodeDef string field")
            text = _text(buf, value, "node string")
            if number == 1:
                name = text
            elif number == 2:
                op = text
            else:
                inputs.append(text)
        elif number == 5:
            _expect(wire, WIRE_LEN, "NodeDef.attr")
            key, attr_span = None, None
            for n2, w2, v2 in iter_fields(buf, *value):
                if n2 == 1:
                    _expect(w2, WIRE_LEN, "attr key")
                    key = _text(buf, v2, "attr key")
                elif n2 == 2:
                    _expect(w2, WIRE_LEN, "attr value")
                    attr_span = v2
            if key == "value" and attr_span is not None:
                for n3, w3, v3 in iter_fields(buf, *attr_span):
                    if n3 == 8:
                        _expect(w3, WIRE_LEN, "AttrValue.tensor")
                        tensor = parse_tensor(buf, v3)
    if name is None or op is None:
        raise FormatError("a node has no name or no op")
    return Node(name, op, inputs, tensor)


def parse_graphdef(data: bytes) -> list[Node]:
    """Parse a serialized GraphDef; returns its nodes in file order."""
    buf = memoryview(data)
    nodes = []
    for number, wire, value in iter_fields(buf, 0, len(buf)):
        if number == 1:
            _expect(wire, WIRE_LEN, "GraphDef.node")
            nodes.append(parse_node(buf, value))
    if not nodes:
        raise FormatError("the graph has no nodes")
    return nodes


def constants(nodes: list[Node]) -> dict[str, np.ndarray]:
    """name -> value of every Const node."""
    return {n.name: n.tensor for n in nodes if n.op == "Const" and n.tensor is not None}
