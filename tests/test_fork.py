"""A process forked after pulptrain's threads started (multiprocessing's
default on Linux, DataLoader-style workers) runs kernels in the child: the
child starts with an empty thread pool and the memcpy DMA, instead of
waiting forever for threads fork() did not copy."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import os
    import numpy as np
    import pulptrain
    from pulptrain import ops, tile
    pulptrain.set_num_threads(2)
    x = np.random.default_rng(0).random((256, 64), dtype=np.float32)
    w = np.random.default_rng(1).random((32, 64), dtype=np.float32)
    want = ops.linear_forward(x, w, None)          # the pool's worker now exists
    tile.set_dma("thread")
    with tile.l1_budget(16 * 1024):                 # the DMA thread has started and copied
        assert np.array_equal(tile.linear_forward(x, w, None), want)
    pid = os.fork()
    if pid == 0:
        got = ops.linear_forward(x, w, None)
        with tile.l1_budget(16 * 1024):
            tiled = tile.linear_forward(x, w, None)
        ok = np.array_equal(got, want) and np.array_equal(tiled, want) and tile.get_dma() == "memcpy"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert np.array_equal(ops.linear_forward(x, w, None), want)
    print("ok")
""")


def test_forked_child_runs_kernels():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]
