"""Fuzz the replay store file reader (LatentReplayStore.load,
pulptrain/_replay_format.py) and the C decoding of the loaded payload.

Input byte 0 bit 0 set: the rest is a store file without its CRC-32 and the
harness appends the right one, so mutations get past the checksum and reach
the header and body checks; clear: the rest is the file as is. A store that
loads must then work: gather every filled slot (C unpack + dequantize of the
file's payload), sample, and save / load / save to the same bytes."""
import os
import sys
import tempfile
import zlib

import atheris
import numpy  # noqa: F401  (imported uninstrumented: only pulptrain is traced)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

with atheris.instrument_imports(include=["pulptrain"]):
    import numpy as np

    from pulptrain.errors import FormatError
    from pulptrain.replay import LatentReplayStore

TMP = tempfile.mkdtemp(prefix="fuzz-replay-")
PATH = os.path.join(TMP, "store.lrs")
RESAVED = os.path.join(TMP, "resaved.lrs")


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    if data[0] & 1:
        body += zlib.crc32(body).to_bytes(4, "little")
    with open(PATH, "wb") as f:
        f.write(body)
    store = LatentReplayStore.load(PATH)
    filled = np.flatnonzero(store.labels >= 0)
    assert len(store) == len(filled)
    if len(filled):
        latents, labels = store.gather(filled)
        assert latents.shape == (len(filled),) + store.shape
        assert (labels == store.labels[filled]).all()
        store.sample(len(filled))
    store.save(RESAVED)
    with open(RESAVED, "rb") as f:
        first = f.read()
    LatentReplayStore.load(RESAVED).save(RESAVED)
    with open(RESAVED, "rb") as f:
        assert f.read() == first, "a saved store does not load back to the same file"


if __name__ == "__main__":
    _harness.run(one_input, (FormatError,))
