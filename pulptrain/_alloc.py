"""Output arrays: aligned to 64 bytes, large ones recycled.

Alignment: NumPy's large arrays come from mmap'd malloc chunks and start 16
bytes past a 64-byte boundary, so every 64-byte (AVX-512) load of them
straddles two cache lines; the memory-bound kernels (depthwise, elementwise)
measured up to 1.8x slower on such arrays. Every array pulptrain returns is
aligned, so a network's activations and gradients are; callers' own arrays
may be anything (the kernels take any alignment).

Recycling: glibc gives each large block its own mmap and unmaps it on free
(or trims the heap), so a training step that allocates its activations
afresh has the kernel fault in and zero every page of them again, on every
step. On this project's 2-core test machine that doubled the time of a
depthwise forward + backward whose outputs were alive together (16 MiB
each). So a freed output of at least RECYCLE_MIN bytes goes to a cache, by
size, and the next request of that size takes it back, its pages already
mapped. The cache holds at most ``cache_limit()`` bytes (default 1 GiB;
environment PULPTRAIN_ALLOC_CACHE_MB, or set_cache_limit); 0 turns it off.
A block returns to the cache only when no array or view of it is left (its
arrays' base is the block, whose __del__ runs then), so a recycled block is
never in use twice."""
from __future__ import annotations

import os
import threading

import numpy as np

ALIGN = 64
RECYCLE_MIN = 256 * 1024


def _limit_from_env() -> int:
    raw = os.environ.get("PULPTRAIN_ALLOC_CACHE_MB")
    if raw is None:
        return 1 << 30
    try:
        mb = int(raw)
    except ValueError:
        raise ValueError(f"PULPTRAIN_ALLOC_CACHE_MB must be a whole number of MiB >= 0, got {raw!r}") from None
    if mb < 0:
        raise ValueError(f"PULPTRAIN_ALLOC_CACHE_MB must be a whole number of MiB >= 0, got {raw!r}")
    return mb << 20


_limit = _limit_from_env()
_free: dict[int, list[np.ndarray]] = {}   # block size -> cached raw buffers (uint8, ALIGN spare bytes)
_cached = 0                                # bytes in _free
_lock = threading.RLock()                  # reentrant: a __del__ may run inside _take (garbage collection)


class _Block:
    """An aligned region of a raw buffer, seen by NumPy through the array
    interface: arrays made from it keep it alive, and when the last one goes
    its buffer returns to the cache."""
    __slots__ = ("raw", "__array_interface__")

    def __init__(self, raw: np.ndarray, offset: int, shape: tuple, dtype: np.dtype):
        self.raw = raw
        self.__array_interface__ = {"data": (raw.ctypes.data + offset, False), "shape": shape,
                                    "typestr": dtype.str, "descr": dtype.descr, "version": 3}

    def __del__(self):
        try:
            _release(self.raw)
        except Exception:   # interpreter shutdown: module globals may be gone
            pass


def _release(raw: np.ndarray) -> None:
    global _cached
    size = raw.nbytes
    with _lock:
        if _cached + size > _limit:
            return   # over the limit: glibc frees it
        _free.setdefault(size, []).append(raw)
        _cached += size


def _take(size: int) -> np.ndarray:
    global _cached
    with _lock:
        bucket = _free.get(size)
        if bucket:
            _cached -= size
            return bucket.pop()
    return np.empty(size, np.uint8)


def empty(shape, dtype=np.float32) -> np.ndarray:
    """np.empty(shape, dtype), C-contiguous, its data 64-byte aligned; large
    arrays may reuse the memory of freed ones (contents undefined, as with
    np.empty)."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < RECYCLE_MIN or _limit == 0:
        buf = np.empty(nbytes + ALIGN, np.uint8)
        off = (-buf.ctypes.data) % ALIGN
        return buf[off:off + nbytes].view(dtype).reshape(shape)
    raw = _take(nbytes + ALIGN)
    return np.asarray(_Block(raw, (-raw.ctypes.data) % ALIGN, shape, dtype))


def empty_like(a: np.ndarray) -> np.ndarray:
    return empty(a.shape, a.dtype)


def aligned(a: np.ndarray) -> np.ndarray:
    """a itself when C-contiguous and aligned, else an aligned copy."""
    if a.flags.c_contiguous and a.ctypes.data % ALIGN == 0:
        return a
    out = empty_like(a)
    out[...] = a
    return out


def cache_limit() -> int:
    """Bytes of freed output arrays kept for reuse, at most."""
    return _limit


def cached_bytes() -> int:
    """Bytes of freed output arrays held for reuse now."""
    return _cached


def set_cache_limit(nbytes: int) -> None:
    """Keep at most nbytes of freed output arrays for reuse (0: none); blocks
    over the new limit are freed at once."""
    global _limit, _cached
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"nbytes must be an int >= 0, got {nbytes!r}")
    with _lock:
        _limit = int(nbytes)
        for size in sorted(_free, reverse=True):
            bucket = _free[size]
            while bucket and _cached > _limit:
                bucket.pop()
                _cached -= size
            if not bucket:
                del _free[size]
