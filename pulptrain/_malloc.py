"""glibc's handling of large freed blocks.

By default glibc gives every large block (>= 128 KiB, raised adaptively up to
32 MiB) its own mmap and returns it to the OS on free, so a training step that
allocates its activations afresh page-faults (and has the kernel zero) every
page of them again. Telling glibc to keep freed memory makes the next step
reuse it. PyTorch on the CPU needs the same to be at its best."""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP = 1 << 30


def keep_freed_memory() -> bool:
    """Stop glibc trimming the heap and mmap-ing blocks below 1 GiB, for this
    process (cannot be undone; the environment variables
    MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ do the same from outside).
    Returns False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(_M_TRIM_THRESHOLD, _KEEP) == 1 and libc.mallopt(_M_MMAP_THRESHOLD, _KEEP) == 1
    except (OSError, AttributeError):   # not glibc (musl has no mallopt)
        return False
