"""On-disk format of the latent-replay store, crash-safe writing and a
bounds-checked reader (every length is checked against the file before it is
used, so a truncated, corrupted or foreign file raises FormatError and never
allocates what its header claims).

Layout (little-endian):
    offset 0   8 bytes  magic b"PTREPLAY"
           8   u32      format version (1)
          12   u32      J: length of the JSON header
          16   J bytes  JSON header (UTF-8): capacity, shape, bits, granularity,
                        policy, policy_state, rng_state, num_classes, int8_source,
                        payload_bytes, param_count
               f32[P]   scale        (P = param_count; 0 for fp16 / fp32 stores
               i32[P]   zero_point    and stores not calibrated yet)
               i32[M]   labels       (M = capacity; -1 marks an empty slot)
               i32[M]   batch index of each slot (-1: none)
               u8[B]    payload      (B = payload_bytes: packed codes; fp16 values
                        little-endian; fp32 values in the host byte order, little-endian
                        on every supported target)
          end  u32      CRC-32 (zlib) of every byte before it
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib

import numpy as np

from pulptrain.errors import FormatError

MAGIC = b"PTREPLAY"
VERSION = 1
_PREFIX = struct.Struct("<8sII")
_CRC = struct.Struct("<I")
MAX_HEADER_BYTES = 1 << 20
assert _PREFIX.size == 16 and _CRC.size == 4


def write_atomic(path: str, chunks) -> None:
    """Write chunks + CRC-32 to a temporary file in path's directory, fsync it,
    rename it over path and fsync the directory: after a crash at any moment
    path holds either the old or the new file, complete. Temporary files left
    by earlier, interrupted saves to the same path are removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); keep the mode of the file
            # being replaced, or give a new one the usual rw-r--r--.
            try:
                mode = os.stat(path).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
            os.fchmod(f.fileno(), mode)
            crc = 0
            for chunk in chunks:
                f.write(chunk)
                crc = zlib.crc32(chunk, crc)
            f.write(_CRC.pack(crc))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _remove_stale_temporaries(directory, os.path.basename(path))
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Temporary files of earlier saves to the same path that were killed
    before their rename (one writer per path is assumed)."""
    prefix = "." + name + "."
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def encode(header: dict, arrays: list[np.ndarray]) -> list:
    """The chunks of a store file (without the trailing CRC)."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    chunks = [_PREFIX.pack(MAGIC, VERSION, len(text)), text]
    for a in arrays:
        chunks.append(memoryview(np.ascontiguousarray(a)).cast("B"))
    return chunks


def read(path: str) -> tuple[dict, memoryview]:
    """(header, body) of a store file whose magic, version, sizes and CRC are
    right; body holds the bytes after the JSON header, CRC excluded. The
    caller checks the header's fields and slices the body with check_body."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise FormatError(f"{path}: truncated: {size} bytes is shorter than the "
                              f"{_PREFIX.size}-byte prefix of a replay store file")
        magic, version, header_len = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise FormatError(f"{path}: not a pulptrain replay store (magic {magic!r}, expected {MAGIC!r})")
        if version != VERSION:
            raise FormatError(f"{path}: unsupported replay store format version {version} "
                              f"(this build reads version {VERSION})")
        if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len + _CRC.size > size:
            raise FormatError(f"{path}: truncated or corrupted: header length {header_len} "
                              f"does not fit in a {size}-byte file")
        data = f.read()
    if len(data) != size - _PREFIX.size:
        raise FormatError(f"{path}: file changed while it was read")
    try:
        header = json.loads(bytes(data[:header_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{path}: corrupted header: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: corrupted header: not a JSON object")
    body = memoryview(data)[header_len:len(data) - _CRC.size]
    expected = _body_bytes(path, header)
    if len(body) < expected:
        raise FormatError(f"{path}: truncated: the header announces {expected} data bytes, "
                          f"the file holds {len(body)}")
    if len(body) > expected:
        raise FormatError(f"{path}: corrupted: {len(body) - expected} unexpected bytes after the data")
    (stored_crc,) = _CRC.unpack(data[len(data) - _CRC.size:])
    crc = zlib.crc32(memoryview(data)[:len(data) - _CRC.size], zlib.crc32(prefix))
    if crc != stored_crc:
        raise FormatError(f"{path}: checksum mismatch (CRC-32 {crc:#010x}, stored {stored_crc:#010x}): "
                          f"the file is corrupted")
    return header, body


def _field_int(path: str, header: dict, name: str, lo: int, hi: int) -> int:
    v = header.get(name)
    if type(v) is not int or not lo <= v <= hi:
        raise FormatError(f"{path}: corrupted header: {name} must be an int in [{lo}, {hi}], got {v!r}")
    return v


def _body_bytes(path: str, header: dict) -> int:
    """Data bytes the header announces, from fields checked for type and range."""
    capacity = _field_int(path, header, "capacity", 1, 1 << 40)
    params = _field_int(path, header, "param_count", 0, 1 << 24)
    payload = _field_int(path, header, "payload_bytes", 1, 1 << 50)
    return 8 * params + 8 * capacity + payload


def split_body(body: memoryview, header: dict) -> dict[str, np.ndarray]:
    """Slice the checked body into its arrays (copies, native byte order)."""
    capacity = header["capacity"]
    params = header["param_count"]
    out = {}
    offset = 0
    for name, dtype, count in (("scale", "<f4", params), ("zero_point", "<i4", params),
                               ("labels", "<i4", capacity), ("batch", "<i4", capacity),
                               ("payload", "u1", header["payload_bytes"])):
        nbytes = np.dtype(dtype).itemsize * count
        out[name] = np.frombuffer(body[offset:offset + nbytes], dtype=dtype).astype(dtype.lstrip("<"))
        offset += nbytes
    return out


_HEADER_KEYS = {"capacity", "shape", "bits", "granularity", "policy", "policy_state", "rng_state",
                "num_classes", "payload_bytes", "param_count", "int8_source"}


def load_store(cls, path):
    """Build a store from a file; every field is checked before use."""
    from pulptrain import _replay_policy as pol

    path = os.fspath(path)
    header, body = read(path)

    def bad(message: str):
        raise FormatError(f"{path}: corrupted header: {message}")

    if set(header) != _HEADER_KEYS:
        bad(f"fields {sorted(set(header) ^ _HEADER_KEYS)} missing or unexpected")
    shape = header["shape"]
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 8
            or any(type(d) is not int or d < 1 for d in shape)):
        bad(f"shape must be a list of 1 to 8 positive ints, got {shape!r}")
    bits = header["bits"]
    if type(bits) is not int or not (1 <= bits <= 8 or bits in (16, 32)):
        bad(f"bits must be 1..8, 16 or 32, got {bits!r}")
    if header["granularity"] not in ("tensor", "channel"):
        bad(f"granularity {header['granularity']!r}")
    if header["policy"] not in pol.POLICIES:
        bad(f"policy {header['policy']!r}")
    num_classes = header["num_classes"]
    if num_classes is not None and (type(num_classes) is not int or num_classes < 1):
        bad(f"num_classes {num_classes!r}")
    rng_state = header["rng_state"]
    if type(rng_state) is not int or not 0 <= rng_state < 1 << 64:
        bad(f"rng_state {rng_state!r}")
    try:
        policy_state = pol.check_state(header["policy"], header["policy_state"])
    except ValueError as exc:
        bad(str(exc))
    capacity = header["capacity"]
    values = capacity
    for d in shape:
        values *= d
    if header["payload_bytes"] != (values * bits + 7) // 8:
        bad(f"payload_bytes {header['payload_bytes']} does not match capacity {capacity}, "
            f"shape {shape} and bits {bits}")
    params = shape[-1] if header["granularity"] == "channel" else 1
    if header["param_count"] not in ((0, params) if bits <= 8 else (0,)):
        bad(f"param_count {header['param_count']} (expected 0 or {params})")
    source = header["int8_source"]
    if source is not None:
        if (header["param_count"] == 0 or not isinstance(source, dict)
                or set(source) != {"scale", "zero_point"}
                or not isinstance(source["scale"], list) or len(source["scale"]) != params
                or not isinstance(source["zero_point"], list) or len(source["zero_point"]) != params
                or any(type(v) is not float or not np.isfinite(v) or v <= 0 for v in source["scale"])
                or any(type(v) is not int or not 0 <= v <= 255 for v in source["zero_point"])):
            bad("int8_source must hold `param_count` positive scales and uint8 zero points")

    try:
        store = cls(capacity, tuple(shape), bits, granularity=header["granularity"],
                    policy=header["policy"], num_classes=num_classes)
    except (ValueError, TypeError) as exc:
        bad(str(exc))
    arrays = split_body(body, header)
    if header["param_count"]:
        scale, zero_point = arrays["scale"], arrays["zero_point"]
        if not np.isfinite(scale).all() or (scale <= 0).any():
            raise FormatError(f"{path}: corrupted: a scale is not finite and positive")
        if (zero_point < 0).any() or (zero_point > (1 << bits) - 1).any():
            raise FormatError(f"{path}: corrupted: a zero point is outside [0, {(1 << bits) - 1}]")
        store._scale, store._zero_point = scale, zero_point
        if source is not None:
            store._int8_source = (np.asarray(source["scale"], np.float32),
                                  np.asarray(source["zero_point"], np.int32))
    labels, batch = arrays["labels"], arrays["batch"]
    label_limit = num_classes if num_classes is not None else 1 << 31
    if (labels < -1).any() or (labels >= label_limit).any():
        raise FormatError(f"{path}: corrupted: a label is outside [-1, {label_limit})")
    if (batch < -1).any():
        raise FormatError(f"{path}: corrupted: a batch index is below -1")
    if bits <= 8 and header["param_count"] == 0 and (labels >= 0).any():
        raise FormatError(f"{path}: corrupted: filled slots but no quantization parameters")
    store._labels[:] = labels
    store._batch[:] = batch
    store._payload[:] = arrays["payload"]
    store._count = int((labels >= 0).sum())
    store._rng.state = rng_state
    store._policy_state = policy_state
    return store
