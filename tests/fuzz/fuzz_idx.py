"""Fuzz the IDX reader (pulptrain/scenarios/idx.py): raw and gzip-compressed
files. Input byte 0 bit 0 selects gzip-compressing the rest before reading,
so mutations reach parse_idx through both paths."""
import gzip
import os
import sys
import tempfile

import atheris
import numpy  # noqa: F401  (imported uninstrumented: only pulptrain is traced)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

with atheris.instrument_imports(include=["pulptrain"]):
    from pulptrain.errors import FormatError
    from pulptrain.scenarios import idx

TMP = tempfile.mkdtemp(prefix="fuzz-idx-")
PATH = os.path.join(TMP, "input.idx")


def one_input(data: bytes) -> None:
    if not data:
        return
    body = data[1:]
    with open(PATH, "wb") as f:
        f.write(gzip.compress(body, mtime=0) if data[0] & 1 else body)
    array = idx.read_idx(PATH)
    # Whatever is accepted was really in the file: no size taken on trust.
    assert array.nbytes <= len(body), (array.shape, len(body))


if __name__ == "__main__":
    _harness.run(one_input, (FormatError,))
