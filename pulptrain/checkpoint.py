"""Crash-safe training checkpoints for ``pulptrain run --checkpoint DIR``.

A checkpoint holds everything a run needs to continue bit for bit: the
adaptive weights, the optimizer state, the replay store, the trainer's RNG
state and progress, and the accuracy curve so far.

Layout of DIR::

    LATEST            name of the newest complete checkpoint (replaced atomically)
    ckpt-000012/      one folder per saved batch count
        state.npz     weights ("model::<name>") and optimizer arrays ("optim::<key>")
        store.lrs     the LatentReplayStore file (its own checksum)
        meta.json     progress, RNG state, config, curve, and a SHA-256 of the two files

A new checkpoint is written into a temporary folder, every file fsync'ed, the
folder renamed into place and fsync'ed, and only then LATEST is replaced
(write-temp, fsync, rename). A kill at any moment leaves LATEST naming a
complete checkpoint; older folders are removed after the switch.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zipfile
import zlib

import numpy as np

from pulptrain.errors import FormatError

__all__ = ["save", "load_latest", "exists", "CheckpointState"]

FORMAT = "pulptrain-checkpoint"
VERSION = 1
SEP = "::"   # joins nested keys; layer names themselves contain "/" and "."


class CheckpointState(dict):
    """What load_latest returns: meta fields plus 'arrays' and 'store_path'."""


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(os.path.dirname(os.path.abspath(path)))


def _flatten_state(prefix: str, state: dict, arrays: dict, scalars: dict) -> None:
    for key, value in state.items():
        name = f"{prefix}{SEP}{key}"
        if isinstance(value, dict):
            _flatten_state(name, value, arrays, scalars)
        elif isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
            for i, v in enumerate(value):
                arrays[f"{name}{SEP}{i}"] = v
            scalars[name] = {"__list_of_arrays__": len(value)}
        else:
            scalars[name] = value


def _unflatten(prefix: str, arrays: dict, scalars: dict) -> dict:
    out: dict = {}
    plen = len(prefix) + len(SEP)

    def put(path: str, value):
        parts = path.split(SEP)
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise FormatError(f"state key {path!r} nests inside a value")
        node[parts[-1]] = value

    lists = {k[plen:]: v["__list_of_arrays__"] for k, v in scalars.items()
             if k.startswith(prefix + SEP) and isinstance(v, dict) and "__list_of_arrays__" in v}
    for rel, n in lists.items():
        if (type(n) is not int or not 0 <= n <= len(arrays)
                or not all(f"{prefix}{SEP}{rel}{SEP}{i}" in arrays for i in range(n))):
            raise FormatError(f"list {rel!r} of {n!r} arrays does not match state.npz")
    for key, value in scalars.items():
        if key.startswith(prefix + SEP) and key[plen:] not in lists:
            put(key[plen:], value)
    for key, value in arrays.items():
        if not key.startswith(prefix + SEP):
            continue
        rel = key[plen:]
        head, _, idx = rel.rpartition(SEP)
        if head in lists:
            continue
        put(rel, value)
    for rel, n in lists.items():
        put(rel, [arrays[f"{prefix}{SEP}{rel}{SEP}{i}"] for i in range(n)])
    return out


def save(directory: str, *, model_state: dict, optimizer_state: dict, store, progress: dict) -> str:
    """Write a checkpoint of ``progress['batches_done']`` batches; returns its folder."""
    os.makedirs(directory, exist_ok=True)
    name = f"ckpt-{int(progress['batches_done']):06d}"
    final = os.path.join(directory, name)
    tmp = os.path.join(directory, f".{name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    arrays: dict = {}
    scalars: dict = {}
    _flatten_state("model", model_state, arrays, scalars)
    _flatten_state("optim", optimizer_state, arrays, scalars)
    state_path = os.path.join(tmp, "state.npz")
    with open(state_path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    files = {"state.npz": _sha256(state_path)}
    if store is not None:
        store.save(os.path.join(tmp, "store.lrs"))
        files["store.lrs"] = _sha256(os.path.join(tmp, "store.lrs"))
    meta = {"format": FORMAT, "version": VERSION, "progress": progress, "scalars": scalars, "files": files}
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
        f.flush()
        os.fsync(f.fileno())
    _fsync_path(tmp)
    if os.path.exists(final):           # a leftover of a killed earlier attempt
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_path(directory)
    _write_atomic(os.path.join(directory, "LATEST"), name.encode())
    for entry in os.listdir(directory):   # older checkpoints and stale temporaries
        if entry != name and (entry.startswith("ckpt-") or entry.startswith(".ckpt-")):
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
    return final


def exists(directory: str | None) -> bool:
    """True when ``directory`` holds a checkpoint (a LATEST file)."""
    return bool(directory) and os.path.exists(os.path.join(directory, "LATEST"))


def load_latest(directory: str) -> CheckpointState:
    """The newest complete checkpoint in ``directory`` (FileNotFoundError when
    there is none, FormatError when it is damaged)."""
    latest = os.path.join(directory, "LATEST")
    if not os.path.exists(latest):
        raise FileNotFoundError(f"no checkpoint in {directory!r} (expected a LATEST file)")
    with open(latest, "rb") as f:
        name = f.read().decode("ascii", "replace").strip()
    if not name.startswith("ckpt-") or not name.replace("-", "").isalnum() or not name.isascii():
        raise FormatError(f"{latest}: does not name a checkpoint folder ({name!r})")
    folder = os.path.join(directory, name)
    try:
        with open(os.path.join(folder, "meta.json"), "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise FormatError(f"{folder}: unreadable meta.json ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise FormatError(f"{folder}: not a version-{VERSION} pulptrain checkpoint")
    files, scalars, progress = meta.get("files"), meta.get("scalars"), meta.get("progress")
    if (not isinstance(files, dict) or "state.npz" not in files or not set(files) <= {"state.npz", "store.lrs"}
            or not isinstance(scalars, dict) or not isinstance(progress, dict)):
        raise FormatError(f"{folder}: meta.json lacks its files, scalars or progress")
    for file, digest in files.items():
        path = os.path.join(folder, file)
        if not os.path.exists(path) or _sha256(path) != digest:
            raise FormatError(f"{path}: missing or fails its SHA-256 check")
    try:
        with np.load(os.path.join(folder, "state.npz")) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, RuntimeError, NotImplementedError, MemoryError,
            struct.error, zipfile.BadZipFile, zlib.error) as exc:   # what zipfile / numpy raise on damage
        raise FormatError(f"{folder}: unreadable state.npz ({exc})") from None
    state = CheckpointState(progress)
    state["model_state"] = _unflatten("model", arrays, scalars)
    state["optimizer_state"] = _unflatten("optim", arrays, scalars)
    store_path = os.path.join(folder, "store.lrs")
    state["store_path"] = store_path if os.path.exists(store_path) else None
    return state
