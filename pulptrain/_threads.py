"""The process-wide thread count used by every kernel call."""
from pulptrain import _core
from pulptrain._validate import positive_int

_num_threads = max(1, min(_core.max_cores(), _core.MAX_THREADS))


def set_num_threads(n: int) -> None:
    """Use ``n`` cores (1..64) for every following kernel call.

    Results are bitwise identical for any ``n``."""
    global _num_threads
    n = positive_int("n", n)
    if n > _core.MAX_THREADS:
        raise ValueError(f"n must be <= {_core.MAX_THREADS}, got {n}")
    _num_threads = n


def get_num_threads() -> int:
    return _num_threads
