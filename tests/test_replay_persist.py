"""Persistence of the latent-replay store: bit-exact round trips, crash safety
under SIGKILL in the middle of save(), refusal of corrupted, truncated and
foreign files."""
import json
import os
import signal
import struct
import time
import zlib

import numpy as np
import pytest

from pulptrain.errors import FormatError
from pulptrain.replay import LatentReplayStore
from helpers import bitwise_equal


def filled_store(rng, bits=7, policy="reservoir", capacity=48, shape=(4, 4, 16), granularity="channel", seed=3):
    kwargs = {} if isinstance(bits, str) else {"value_range": (0.0, 6.0)}
    store = LatentReplayStore(capacity, shape, bits, policy=policy, seed=seed, granularity=granularity, **kwargs)
    for i in range(4):
        x = rng.uniform(-1, 7, (20,) + shape).astype(np.float32)
        store.update(x, rng.integers(0, 10, 20), i)
    return store


def assert_same_store(a, b):
    assert (a.capacity, a.shape, a.bits, a.granularity, a.policy, len(a)) == \
           (b.capacity, b.shape, b.bits, b.granularity, b.policy, len(b))
    assert bitwise_equal(a._payload, b._payload)
    assert bitwise_equal(a.labels, b.labels) and bitwise_equal(a.batch_indices, b.batch_indices)
    assert a._rng.state == b._rng.state and a._policy_state == b._policy_state
    assert (a.quant_params is None) == (b.quant_params is None)
    if a.quant_params is not None:
        assert all(bitwise_equal(u, v) for u, v in zip(a.quant_params, b.quant_params))
    assert a.nbytes == b.nbytes


@pytest.mark.parametrize("bits", [1, 4, 7, 8, "fp16", "fp32"])
@pytest.mark.parametrize("policy", ["ar1", "reservoir", "class_balanced"])
def test_round_trip_bit_exact(bits, policy, rng, tmp_path):
    store = filled_store(rng, bits, policy)
    path = tmp_path / "store.lrs"
    store.save(path)
    loaded = LatentReplayStore.load(path)
    assert_same_store(store, loaded)
    loaded.save(tmp_path / "again.lrs")
    assert path.read_bytes() == (tmp_path / "again.lrs").read_bytes()
    # the policy and generator state travel: both continue identically
    x = rng.uniform(0, 6, (20, 4, 4, 16)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    store.update(x, y, 4)
    loaded.update(x, y, 4)
    assert_same_store(store, loaded)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"
    assert path.stat().st_mode & 0o777 == 0o644


def test_round_trip_int8_source_and_empty(rng, tmp_path):
    store = LatentReplayStore(5, (2, 8), 6, granularity="channel",
                              int8_params=(rng.uniform(0.01, 0.1, 8), rng.integers(0, 256, 8)))
    store.save(tmp_path / "a")
    loaded = LatentReplayStore.load(tmp_path / "a")
    assert_same_store(store, loaded)
    assert all(bitwise_equal(u, v) for u, v in zip(store._int8_source, loaded._int8_source))
    uncalibrated = LatentReplayStore(3, (4,), 3)
    uncalibrated.save(tmp_path / "b")
    assert not LatentReplayStore.load(tmp_path / "b").is_calibrated


def _saver(path, stores, seed):
    """Child process: save the stores in turn, forever, until killed."""
    try:
        rng = np.random.default_rng(seed)
        i = 0
        while True:
            stores[i % 2].save(path)
            i += 1
            if rng.random() < 0.3:
                time.sleep(rng.random() * 0.002)
    finally:
        os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_during_save_leaves_old_or_new(rng, tmp_path):
    """Kill a process at random moments while it saves: the file is always
    complete and is one of the two versions."""
    a = filled_store(rng, 8, capacity=64, shape=(8, 8, 64), seed=1)   # 256 KiB payload
    b = filled_store(rng, 8, capacity=64, shape=(8, 8, 64), seed=2)
    assert not bitwise_equal(a._payload, b._payload)
    path = tmp_path / "store.lrs"
    a.save(path)
    versions = {"a": 0, "b": 0, "killed mid-write": 0}
    for trial in range(30):
        pid = os.fork()
        if pid == 0:
            _saver(str(path), (a, b) if trial % 2 else (b, a), trial)
        time.sleep(float(rng.uniform(0.0, 0.06)))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        versions["killed mid-write"] += bool(list(tmp_path.glob(".*.tmp")))
        loaded = LatentReplayStore.load(path)
        if bitwise_equal(loaded._payload, a._payload):
            assert_same_store(loaded, a)
            versions["a"] += 1
        else:
            assert_same_store(loaded, b)
            versions["b"] += 1
    print(versions)
    a.save(path)
    assert not list(tmp_path.glob(".*.tmp")), "a save removes the temporaries of killed ones"



@pytest.fixture
def saved(rng, tmp_path):
    store = filled_store(rng, 5, capacity=16, shape=(2, 3, 8))
    path = tmp_path / "store.lrs"
    store.save(path)
    return path, path.read_bytes()


def test_bit_flips_refused(saved, rng):
    path, data = saved
    offsets = set(rng.integers(0, len(data), 60).tolist()) | {0, 8, 12, 16, len(data) - 1}
    for offset in sorted(offsets):
        corrupt = bytearray(data)
        corrupt[offset] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(corrupt))
        with pytest.raises(FormatError):
            LatentReplayStore.load(path)


def test_truncated_refused(saved, rng):
    path, data = saved
    cuts = set(rng.integers(0, len(data), 40).tolist()) | {0, 1, 8, 15, 16, 17, len(data) - 4, len(data) - 1}
    for cut in sorted(cuts):
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError, match="truncated|corrupted"):
            LatentReplayStore.load(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(FormatError):
        LatentReplayStore.load(path)


def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_foreign_and_lying_files_refused(saved, tmp_path):
    path, data = saved
    cases = {
        "empty": b"",
        "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        "numpy": b"\x93NUMPY\x01\x00" + b"\0" * 64,
        "version 2": data[:8] + struct.pack("<I", 2) + data[12:],
        "huge header length": data[:12] + struct.pack("<I", 0xFFFFFFF0) + data[16:],
    }
    header_len = struct.unpack("<I", data[12:16])[0]
    header = json.loads(data[16:16 + header_len])
    # headers that pass the checksum but lie about the contents
    for name, change in {"capacity": {"capacity": 1 << 40}, "bits": {"bits": 12},
                         "shape": {"shape": [2, 3, 0]}, "policy": {"policy": "lifo"},
                         "rng": {"rng_state": -1}, "params": {"param_count": 3},
                         "state": {"policy_state": {"seen": "many"}}, "extra": {"x": 1}}.items():
        text = json.dumps({**header, **change}).encode()
        cases[name] = reseal(data[:12] + struct.pack("<I", len(text)) + text + data[16 + header_len:-4])
    not_json = b"{" * header_len
    cases["not json"] = reseal(data[:16] + not_json + data[16 + header_len:-4])
    labels_at = 16 + header_len + 8 * header["param_count"]
    bad_labels = bytearray(data[:-4])
    bad_labels[labels_at:labels_at + 4] = struct.pack("<i", -7)
    cases["label"] = reseal(bytes(bad_labels))
    for name, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(FormatError) as info:
            LatentReplayStore.load(path)
        assert str(path) in str(info.value), name


def test_mutated_files_raise_only_format_error(saved, rng):
    """Random field values and byte changes behind a valid checksum: the
    reader either builds a consistent store or raises FormatError."""
    path, data = saved
    header_len = struct.unpack("<I", data[12:16])[0]
    header = json.loads(data[16:16 + header_len])
    values = [None, True, -1, 0, 1, 2**64, 1.5, float("nan"), "x", [], {}, [2, 4], [1] * 9, {"seen": 1}]
    cases = [b"PTREPLAY" + struct.pack("<II", 1, 4000) + b"[" * 4000 + b"\0" * 8]   # deep nesting
    for _ in range(150):
        changed = dict(header)
        key = str(rng.choice(sorted(header)))
        changed[key] = values[int(rng.integers(len(values)))]
        text = json.dumps(changed).encode()
        cases.append(reseal(data[:12] + struct.pack("<I", len(text)) + text + data[16 + header_len:-4]))
    for _ in range(150):
        body = bytearray(data[:-4])
        for offset in rng.integers(0, len(body), 3):
            body[int(offset)] = int(rng.integers(0, 256))
        cases.append(reseal(bytes(body)))
    for content in cases:
        path.write_bytes(content)
        try:
            store = LatentReplayStore.load(path)
        except FormatError:
            continue
        filled = np.flatnonzero(store.labels >= 0)
        if len(filled):
            store.gather(filled)
