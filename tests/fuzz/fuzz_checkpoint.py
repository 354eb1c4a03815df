"""Fuzz the training checkpoint reader (pulptrain/checkpoint.py load_latest).

Input: byte 0 holds flags, then the checkpoint's files, each as a u32
little-endian length and that many bytes, in the order of FILES (a file whose
section is missing or empty is not written). Flag bit 0: rewrite the SHA-256
digests in meta.json (when it is a JSON object with a "files" object) to
match the files written, so mutations get past the digest check and reach
state.npz and the nested state. A damaged checkpoint must raise FormatError
(FileNotFoundError only when LATEST is missing, which the harness never
does)."""
import hashlib
import json
import os
import shutil
import sys
import tempfile

import atheris
import numpy  # noqa: F401  (imported uninstrumented: only pulptrain is traced)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

with atheris.instrument_imports(include=["pulptrain"]):
    from pulptrain import checkpoint
    from pulptrain.errors import FormatError

FILES = ("LATEST", "meta.json", "state.npz", "store.lrs")
TMP = tempfile.mkdtemp(prefix="fuzz-ckpt-")


def split_sections(data: bytes) -> list[bytes]:
    sections, pos = [], 0
    for _ in FILES:
        if pos + 4 > len(data):
            sections.append(b"")
            continue
        n = int.from_bytes(data[pos:pos + 4], "little")
        sections.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    return sections


def fix_digests(meta: bytes, folder: str) -> bytes:
    try:
        doc = json.loads(meta)
    except (ValueError, RecursionError):
        return meta
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        return meta
    for name in list(doc["files"]):
        path = os.path.join(folder, name)
        if name in FILES[2:] and os.path.isfile(path):
            with open(path, "rb") as f:
                doc["files"][name] = hashlib.sha256(f.read()).hexdigest()
    return json.dumps(doc).encode()


def one_input(data: bytes) -> None:
    if not data:
        return
    latest, meta, state, store = split_sections(data[1:])
    shutil.rmtree(TMP)
    folder = os.path.join(TMP, "ckpt-000001")
    os.makedirs(folder)
    with open(os.path.join(TMP, "LATEST"), "wb") as f:
        f.write(latest)
    for name, content in (("state.npz", state), ("store.lrs", store)):
        if content:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
    if data[0] & 1:
        meta = fix_digests(meta, folder)
    with open(os.path.join(folder, "meta.json"), "wb") as f:
        f.write(meta)
    result = checkpoint.load_latest(TMP)
    assert isinstance(result["model_state"], dict) and isinstance(result["optimizer_state"], dict)


if __name__ == "__main__":
    _harness.run(one_input, (FormatError,))
