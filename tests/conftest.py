import os
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import pulptrain  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests may change the thread count; put it back afterwards."""
    n = pulptrain.get_num_threads()
    yield
    pulptrain.set_num_threads(n)


@pytest.fixture
def rng(request):
    """A seeded generator; the seed is printed with any failure of the test."""
    # crc32, not hash(): str hashes change from run to run
    seed = int(os.environ.get("PULPTRAIN_TEST_SEED", "0")) or zlib.crc32(request.node.nodeid.encode())
    request.node.user_properties.append(("seed", seed))
    print(f"seed={seed}")
    return np.random.default_rng(seed)
