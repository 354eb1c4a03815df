"""models.weights.load_cached on damaged weight caches: FormatError, never a
zipfile / zlib exception (the cache is rebuilt by deleting it)."""
import io
import zipfile

import numpy as np
import pytest

from pulptrain.errors import FormatError
from pulptrain.models import weights


def _npz_bytes() -> bytearray:
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(3, np.float32))
    return bytearray(buf.getvalue())


def _encrypted_flag(data):
    data[data.rfind(b"PK\x01\x02") + 8] |= 1


def _unknown_compression(data):
    data[data.rfind(b"PK\x01\x02") + 10] = 99


def _truncated(data):
    del data[len(data) // 2:]


def _deflate_garbage(_):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", b"\x93NUMPY" + bytes(200))
    raw = bytearray(buf.getvalue())
    start = raw.find(b"a.npy") + 5
    raw[start:start + 20] = bytes(range(20))
    return raw


@pytest.mark.parametrize("damage", [_encrypted_flag, _unknown_compression, _truncated, _deflate_garbage])
def test_damaged_cache_is_format_error(tmp_path, damage):
    data = _npz_bytes()
    data = damage(data) or data
    path = tmp_path / "weights.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError):
        weights.load_cached(path)
