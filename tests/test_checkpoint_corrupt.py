"""checkpoint.load_latest on damaged checkpoint folders: every kind of damage
raises FormatError naming the file (FileNotFoundError only when there is no
LATEST at all), never KeyError, AttributeError, zipfile errors or a crash."""
import hashlib
import json
import os

import numpy as np
import pytest

from pulptrain import checkpoint
from pulptrain.errors import FormatError


def _save(tmp_path):
    model = {"head/weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    optim = {"step": 2, "velocity": [np.ones(2, np.float32), np.zeros(3, np.float32)]}
    folder = checkpoint.save(str(tmp_path), model_state=model, optimizer_state=optim, store=None,
                             progress={"batches_done": 4, "curve": []})
    return folder


def _meta(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        return json.load(f)


def _write_meta(folder, meta, fix_digests=True):
    if fix_digests and isinstance(meta.get("files"), dict):
        for name in meta["files"]:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                meta["files"][name] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_intact_checkpoint_loads(tmp_path):
    _save(tmp_path)
    state = checkpoint.load_latest(str(tmp_path))
    assert state["batches_done"] == 4
    np.testing.assert_array_equal(state["optimizer_state"]["velocity"][1], np.zeros(3, np.float32))


def test_no_latest_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="LATEST"):
        checkpoint.load_latest(str(tmp_path))


def _truncate_npz(folder):
    path = os.path.join(folder, "state.npz")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _garbage_npz_with_digest(folder):
    open(os.path.join(folder, "state.npz"), "wb").write(b"PK\x03\x04 not really a zip")
    _write_meta(folder, _meta(folder))


def _meta_not_object(folder):
    open(os.path.join(folder, "meta.json"), "w").write("[1, 2, 3]")


def _meta_not_utf8(folder):
    open(os.path.join(folder, "meta.json"), "wb").write(b'{"format": "\xff"}')


def _meta_without_scalars(folder):
    meta = _meta(folder)
    del meta["scalars"]
    _write_meta(folder, meta)


def _meta_files_not_dict(folder):
    meta = _meta(folder)
    meta["files"] = ["state.npz"]
    _write_meta(folder, meta)


def _meta_foreign_file(folder):
    meta = _meta(folder)
    meta["files"]["../../etc/passwd"] = "0" * 64
    _write_meta(folder, meta, fix_digests=False)


def _list_count_too_big(folder):
    meta = _meta(folder)
    meta["scalars"]["optim::velocity"] = {"__list_of_arrays__": 5}
    _write_meta(folder, meta)


def _list_count_not_int(folder):
    meta = _meta(folder)
    meta["scalars"]["optim::velocity"] = {"__list_of_arrays__": "2"}
    _write_meta(folder, meta)


def _key_nested_in_value(folder):
    meta = _meta(folder)
    meta["scalars"]["optim::step::inner"] = 1
    _write_meta(folder, meta)


def _latest_escapes(folder):
    open(os.path.join(os.path.dirname(folder), "LATEST"), "w").write("ckpt-../../x")


def _latest_missing_folder(folder):
    open(os.path.join(os.path.dirname(folder), "LATEST"), "w").write("ckpt-999999")


def _latest_nul(folder):
    open(os.path.join(os.path.dirname(folder), "LATEST"), "wb").write(b"ckpt-\x00")


def _flip_byte(folder):
    path = os.path.join(folder, "state.npz")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0x40
    open(path, "wb").write(bytes(data))


DAMAGE = [_truncate_npz, _garbage_npz_with_digest, _meta_not_object, _meta_not_utf8, _meta_without_scalars,
          _meta_files_not_dict, _meta_foreign_file, _list_count_too_big, _list_count_not_int,
          _key_nested_in_value, _latest_escapes, _latest_missing_folder, _latest_nul, _flip_byte]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__.strip("_") for d in DAMAGE])
def test_damaged_checkpoint_raises_format_error(tmp_path, damage):
    folder = _save(tmp_path)
    damage(folder)
    with pytest.raises(FormatError):
        checkpoint.load_latest(str(tmp_path))
