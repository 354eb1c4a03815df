"""pulptrain._alloc: every output array 64-byte aligned; large freed ones
recycled, never while any view of them is alive, within the cache limit."""
import gc
import os
import subprocess
import sys

import numpy as np
import pytest

from pulptrain import _alloc, ops

BIG = (64, 8, 8, 32)     # 512 KiB of float32: recycled
SMALL = (3, 5)


@pytest.fixture
def limit():
    old = _alloc.cache_limit()
    yield
    _alloc.set_cache_limit(old)


@pytest.mark.parametrize("shape", [SMALL, BIG, (0,), 7, (1, 1 << 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int32])
def test_empty_is_aligned_contiguous_and_of_the_shape(shape, dtype):
    a = _alloc.empty(shape, dtype)
    want = (shape,) if isinstance(shape, int) else shape
    assert a.shape == want and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
    assert a.size == 0 or a.ctypes.data % _alloc.ALIGN == 0
    a[...] = 1   # the whole region is writable
    assert (a == 1).all()


def test_a_freed_large_array_is_reused_and_aligned(limit):
    _alloc.set_cache_limit(1 << 30)
    a = _alloc.empty(BIG)
    addr = a.ctypes.data
    del a
    gc.collect()
    b = _alloc.empty(BIG)
    assert b.ctypes.data == addr and b.ctypes.data % _alloc.ALIGN == 0


def test_a_block_is_not_reused_while_a_view_of_it_lives(limit):
    _alloc.set_cache_limit(1 << 30)
    a = _alloc.empty(BIG)
    a[...] = 7.0
    view = a[1:, ::2]
    flat = a.reshape(-1)
    addr = a.ctypes.data
    del a
    b = _alloc.empty(BIG)
    assert b.ctypes.data != addr
    b[...] = -1.0
    assert (view == 7.0).all() and (flat == 7.0).all()
    del view, flat
    c = _alloc.empty(BIG)
    assert c.ctypes.data == addr


def test_ops_outputs_survive_recycling(limit):
    """Results kept by the caller are never overwritten by later calls."""
    _alloc.set_cache_limit(1 << 30)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(BIG).astype(np.float32)
    w = rng.standard_normal((3, 3, BIG[3])).astype(np.float32)
    first = ops.depthwise_conv2d_forward(x, w, None, 1, 1)
    keep = first.copy()
    for _ in range(3):
        ops.depthwise_conv2d_forward(-x, w, None, 1, 1)
    np.testing.assert_array_equal(first, keep)


def test_the_cache_keeps_no_more_than_its_limit(limit):
    _alloc.set_cache_limit(0)
    assert _alloc.cached_bytes() == 0
    size = int(np.prod(BIG)) * 4 + _alloc.ALIGN
    _alloc.set_cache_limit(2 * size)
    arrays = [_alloc.empty(BIG) for _ in range(5)]
    del arrays
    assert _alloc.cached_bytes() == 2 * size
    _alloc.set_cache_limit(size)
    assert _alloc.cached_bytes() == size
    _alloc.set_cache_limit(0)
    assert _alloc.cached_bytes() == 0
    a = _alloc.empty(BIG)   # with the cache off, still aligned
    assert a.ctypes.data % _alloc.ALIGN == 0
    del a
    assert _alloc.cached_bytes() == 0


@pytest.mark.parametrize("bad", [-1, 1.5, "1", True, None])
def test_set_cache_limit_refuses_bad_values(bad):
    with pytest.raises(ValueError, match="nbytes"):
        _alloc.set_cache_limit(bad)


@pytest.mark.parametrize("value,ok", [("0", True), ("16", True), ("-1", False), ("lots", False)])
def test_the_environment_limit(value, ok):
    env = dict(os.environ, PULPTRAIN_ALLOC_CACHE_MB=value)
    code = "from pulptrain import _alloc; print(_alloc.cache_limit())"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if ok:
        assert r.returncode == 0 and int(r.stdout) == int(value) << 20
    else:
        assert r.returncode != 0 and "PULPTRAIN_ALLOC_CACHE_MB" in r.stderr


def test_threads_allocating_and_freeing_at_once(limit):
    """Python threads share the cache: every array they get is theirs alone."""
    import threading
    _alloc.set_cache_limit(1 << 30)
    errors = []

    def work(value):
        for _ in range(200):
            a = _alloc.empty(BIG)
            a[...] = value
            if not (a == value).all():
                errors.append(value)
            del a

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 0 < _alloc.cached_bytes() <= 4 * (int(np.prod(BIG)) * 4 + _alloc.ALIGN)


def test_recycled_arrays_pickle_save_and_copy_like_any_array(tmp_path, limit):
    import pickle
    _alloc.set_cache_limit(1 << 30)
    a = _alloc.empty(BIG)
    a[...] = np.arange(a.size, dtype=np.float32).reshape(BIG)
    b = pickle.loads(pickle.dumps(a))
    np.save(tmp_path / "a.npy", a)
    c = np.load(tmp_path / "a.npy")
    for other in (b, c, a.copy(), np.array(a)):
        np.testing.assert_array_equal(other, a)
        assert not np.shares_memory(other, a)
