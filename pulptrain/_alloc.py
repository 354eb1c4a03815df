"""Output arrays aligned to 64 bytes.

NumPy's large arrays come from mmap'd malloc chunks and start 16 bytes past
a 64-byte boundary, so every 64-byte (AVX-512) load of them straddles two
cache lines; the memory-bound kernels (depthwise, elementwise) measured up
to 1.8x slower on such arrays. Every array pulptrain returns is aligned, so
a network's activations and gradients are; callers' own arrays may be
anything (the kernels take any alignment)."""
import numpy as np

ALIGN = 64


def empty(shape, dtype=np.float32) -> np.ndarray:
    """np.empty(shape, dtype), C-contiguous, its data 64-byte aligned."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + ALIGN, np.uint8)
    off = (-buf.ctypes.data) % ALIGN
    return buf[off:off + nbytes].view(dtype).reshape(shape)


def empty_like(a: np.ndarray) -> np.ndarray:
    return empty(a.shape, a.dtype)


def aligned(a: np.ndarray) -> np.ndarray:
    """a itself when C-contiguous and aligned, else an aligned copy."""
    if a.flags.c_contiguous and a.ctypes.data % ALIGN == 0:
        return a
    out = empty_like(a)
    out[...] = a
    return out
