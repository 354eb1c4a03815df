"""Reader for the IDX format of (Fashion-)MNIST.

Layout (all integers big-endian): two zero bytes, a type code (0x08 uint8,
0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
dimensions D, then D uint32 sizes, then the data in C order. Files may be
gzip-compressed (detected from the gzip magic, not the file name).
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from pulptrain.errors import FormatError

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 32          # numpy 1.x's limit; real IDX files have 1 to 4


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into a native-endian array."""
    if len(data) < 4:
        raise FormatError(f"{source}: {len(data)} bytes is too short for an IDX header (4 bytes)")
    if data[0] != 0 or data[1] != 0:
        raise FormatError(f"{source}: not an IDX file (magic starts {data[:2].hex()}, expected 0000)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        raise FormatError(f"{source}: unknown IDX type code 0x{type_code:02x}")
    if ndim == 0 or ndim > MAX_DIMS:
        raise FormatError(f"{source}: IDX header declares {ndim} dimensions (1..{MAX_DIMS} supported)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FormatError(f"{source}: truncated header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize     # Python ints: an int64 product could wrap
    present = len(data) - header
    if present < expected:
        raise FormatError(f"{source}: truncated: shape {shape} of {dtype.name} needs {expected} data bytes, "
                          f"found {present}")
    if present > expected:
        raise FormatError(f"{source}: {present - expected} unexpected bytes after the data of shape {shape}")
    try:
        array = np.frombuffer(data, dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)
    except ValueError as exc:   # e.g. a zero dimension beside dimensions numpy cannot index
        raise FormatError(f"{source}: shape {shape} cannot be represented ({exc})") from None
    return array.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not); FormatError when corrupt or truncated."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise FormatError(f"{path}: truncated or corrupt gzip data ({exc})") from exc
    return parse_idx(raw, str(path))


def write_idx(path, array: np.ndarray, compress: bool = True) -> None:
    """Write ``array`` as IDX (used to make test fixtures and small exports)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = np.asarray(array)
    code = codes.get(native.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {native.dtype}")
    header = bytes([0, 0, code, native.ndim]) + np.array(native.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(native, IDX_TYPES[code]).tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
