"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/):
small valid files of every kind each parser reads. Run from the repository
root after a build: python tests/fuzz/make_seeds.py"""
import gzip
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from pulptrain import checkpoint  # noqa: E402
from pulptrain.replay import LatentReplayStore  # noqa: E402
from pulptrain.scenarios import idx  # noqa: E402


def put(target: str, name: str, data: bytes) -> None:
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx_seeds() -> None:
    rng = np.random.default_rng(1)
    for name, array in (("images_u8", rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)),
                        ("labels_u8", np.arange(5, dtype=np.uint8)),
                        ("i8", np.arange(-3, 3, dtype=np.int8)),
                        ("i16", np.arange(6, dtype=np.int16).reshape(2, 3)),
                        ("i32", np.arange(4, dtype=np.int32)),
                        ("f32", np.linspace(-1, 1, 4, dtype=np.float32).reshape(2, 2)),
                        ("f64", np.linspace(-1, 1, 3))):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x")
            idx.write_idx(path, array, compress=False)
            with open(path, "rb") as f:
                raw = f.read()
        put("idx", name, b"\x00" + raw)               # read as is
        put("idx", name + "_gz", b"\x01" + raw)       # harness gzips it


def small_store(bits, granularity="tensor", policy="ar1", fill=3, int8=False) -> LatentReplayStore:
    rng = np.random.default_rng(len(str(bits)))
    shape = (2, 3)
    kwargs = {"value_range": (0.0, 6.0)} if bits in range(1, 9) and not int8 else {}
    if granularity == "channel" and kwargs:
        kwargs = {"value_range": (np.zeros(3, np.float32), np.full(3, 6.0, np.float32))}
    if int8:
        kwargs = {"int8_params": (np.float32(0.05), 3)}
    store = LatentReplayStore(5, shape, bits, granularity=granularity, policy=policy, num_classes=4,
                              seed=7, **kwargs)
    if fill:
        x = rng.uniform(0, 6, (fill,) + shape).astype(np.float32)
        store.update(x, np.arange(fill) % 4, batch_index=0)
    return store


def store_bytes(store: LatentReplayStore) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.lrs")
        store.save(path)
        with open(path, "rb") as f:
            return f.read()


def replay_seeds() -> None:
    cases = {"q8": small_store(8), "q7_channel": small_store(7, "channel", "reservoir"),
             "q3_balanced": small_store(3, policy="class_balanced"), "q1_empty": small_store(1, fill=0),
             "fp16": small_store("fp16"), "fp32": small_store("fp32", fill=5),
             "q4_int8": small_store(4, int8=True)}
    for name, store in cases.items():
        data = store_bytes(store)
        put("replay_store", name, b"\x01" + data[:-4])   # harness appends the CRC
        put("replay_store", name + "_raw", b"\x00" + data)


def checkpoint_seeds() -> None:
    model = {"head/weight": np.arange(6, dtype=np.float32).reshape(2, 3), "head/bias": np.zeros(2, np.float32)}
    optim = {"step": 3, "lr": 0.01, "velocity": [np.ones(2, np.float32), np.ones(3, np.float32)],
             "nested": {"m": np.zeros(1, np.float32)}}
    progress = {"batches_done": 1, "curve": [{"batch": 0, "accuracy": 0.5}], "trainer": {"rng": 5}}
    for name, store in (("with_store", small_store(8)), ("no_store", None)):
        with tempfile.TemporaryDirectory() as tmp:
            folder = checkpoint.save(tmp, model_state=model, optimizer_state=optim, store=store,
                                     progress=progress)
            parts = []
            for path in (os.path.join(tmp, "LATEST"), os.path.join(folder, "meta.json"),
                         os.path.join(folder, "state.npz"), os.path.join(folder, "store.lrs")):
                data = open(path, "rb").read() if os.path.exists(path) else b""
                parts.append(len(data).to_bytes(4, "little") + data)
        put("checkpoint", name, b"\x01" + b"".join(parts))
        put("checkpoint", name + "_raw", b"\x00" + b"".join(parts))


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number: int, payload) -> bytes:
    """A protobuf field: varint for an int, length-delimited for bytes."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _const(name: str, dtype: int, shape, body: bytes) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    tensor = _field(1, dtype) + _field(2, dims) + body
    attr = _field(1, b"value") + _field(2, _field(8, tensor))
    return _field(1, _field(1, name.encode()) + _field(2, b"Const") + _field(5, attr))


def graphdef_seeds() -> None:
    w = np.arange(6, dtype="<f4").tobytes()
    nodes = {
        "content_f32": _const("MobilenetV1/Conv2d_0/weights", 1, (1, 2, 3), _field(4, w)),
        "float_val_packed": _const("a", 1, (3,), _field(5, np.array([1, 2, 3], "<f4").tobytes())),
        "float_val_fill": _const("b", 1, (2, 2), _varint(5 << 3 | 5) + np.float32(0.5).tobytes()),
        "double_val": _const("c", 2, (2,), _field(6, np.array([1.5, -2], "<f8").tobytes())),
        "int_val": _const("d", 3, (2,), _field(7, _varint(7) + _varint((1 << 64) - 1))),
        "int64_val": _const("e", 9, (1,), _field(10, 5)),
        "uint8_content": _const("f", 4, (4,), _field(4, bytes([0, 1, 254, 255]))),
        "bool_fill": _const("g", 10, (3,), _field(7, 1)),
    }
    for name, data in nodes.items():
        put("graphdef", name, data)
    identity = _field(1, _field(1, b"out") + _field(2, b"Identity") + _field(3, b"a"))
    put("graphdef", "two_nodes", nodes["float_val_packed"] + identity)


if __name__ == "__main__":
    graphdef_seeds()
    idx_seeds()
    replay_seeds()
    checkpoint_seeds()
    print("seed corpora written under", os.path.join(HERE, "corpus"))
