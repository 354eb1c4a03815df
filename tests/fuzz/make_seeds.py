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


if __name__ == "__main__":
    idx_seeds()
    replay_seeds()
    checkpoint_seeds()
    print("seed corpora written under", os.path.join(HERE, "corpus"))
