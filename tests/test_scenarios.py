"""Benchmark streams: the CORe50 stand-in, the real CORe50 loaders (on fixtures
in the official format) and Fashion-MNIST (IDX parsing and stream structure)."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from pulptrain import scenarios
from pulptrain.errors import FormatError
from pulptrain.scenarios import core50, fashion_mnist, standin
from pulptrain.scenarios.base import nic_order
from pulptrain.scenarios.idx import parse_idx, read_idx, write_idx

TINY = dict(frames_per_session=2, image_size=32, progress=False)


@pytest.fixture(scope="module")
def standin_cache(tmp_path_factory):
    """One tiny stand-in (2 frames per clip, 32x32) shared by the module."""
    root = tmp_path_factory.mktemp("standin")
    scenarios.get("core50-standin", root=root, **TINY)
    return root


# ---- CORe50 stand-in --------------------------------------------------------------------------

def test_standin_generation_is_deterministic(standin_cache, tmp_path):
    other = standin.generate(tmp_path / "again.npz", seed=0, frames=2, size=32, progress=False)
    first = standin.StandinData(standin.cache_path(0, 2, 32, standin_cache))
    again = standin.StandinData(other["path"])
    units = [(s, o) for s in range(1, 12) for o in range(50)]
    assert np.array_equal(first.clips(units), again.clips(units))


def test_standin_seed_changes_the_frames():
    sprite = standin.render_objects()[0]
    background = standin.session_background(1, 64)
    a = standin.render_clip(sprite, background, 1, 0, 3, 32, seed=0)
    b = standin.render_clip(sprite, background, 1, 0, 3, 32, seed=1)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, b)
    assert np.array_equal(a, standin.render_clip(sprite, background, 1, 0, 3, 32, seed=0))


def test_standin_objects_are_distinct():
    sprites = [np.asarray(s.resize((24, 24))) for s in standin.render_objects()]
    assert len(sprites) == 50
    flat = np.stack([s.astype(np.float32).ravel() for s in sprites])
    distances = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert distances[~np.eye(50, dtype=bool)].min() > 5.0


@pytest.mark.parametrize("protocol, batches, later_size",
                         [("nicv2_391", 391, 2), ("nicv2_196", 196, 4), ("nicv2_79", 79, 10),
                          ("ni", 8, 100), ("nc", 9, 80)])
def test_standin_protocol_shapes(standin_cache, protocol, batches, later_size):
    sc = scenarios.get("core50-standin/" + protocol, root=standin_cache, **TINY)
    assert sc.num_batches == batches == sc.metadata["num_batches"]
    assert sc.num_classes == 50 and sc.image_shape == (32, 32, 3)
    assert set(sc.batch_sizes[1:]) == {later_size}
    assert sum(sc.batch_sizes) == 8 * 50 * 2  # every training clip exactly once
    units = [u for b in sc.train_batches for u in b.units]
    assert len(set(units)) == len(units) == 400
    images, labels = sc.train_batches[1].load()
    assert images.shape == (later_size, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 50
    assert [o for _, o in sc.train_batches[1].units] == labels[::2].tolist()


def test_standin_held_out_sessions(standin_cache):
    sc = scenarios.get("standin", root=standin_cache, **TINY)
    assert sc.metadata["held_out_sessions"] == [3, 7, 10]
    train_sessions = {s for b in sc.train_batches for s, _ in b.units}
    assert train_sessions == {1, 2, 4, 5, 6, 8, 9, 11}
    images, labels = sc.test_set()
    assert images.shape == (3 * 50 * 2, 32, 32, 3) and np.bincount(labels).tolist() == [6] * 50
    data = standin.StandinData(sc.metadata["cache_file"])
    assert np.array_equal(images[:2], data.clips([(3, 0)]))
    step = scenarios.get("standin", root=standin_cache, test_step=2, **TINY)
    assert len(step.test_set()[1]) == 150


def test_standin_class_appearance_order(standin_cache):
    sc = scenarios.get("standin", root=standin_cache, **TINY)
    first = sc.first_appearance()
    assert len(np.unique(sc.train_batches[0].labels)) == 10
    assert sorted(first) == list(range(50))
    late = sorted(first.values())[-1]
    assert late > sc.num_batches // 2, "new classes must keep appearing over the stream"
    assert len(sc.class_order()) == 50
    same = scenarios.get("standin", root=standin_cache, **TINY)
    assert [b.units for b in same.train_batches] == [b.units for b in sc.train_batches]
    other_run = scenarios.get("standin", root=standin_cache, run=1, **TINY)
    assert [b.units for b in other_run.train_batches] != [b.units for b in sc.train_batches]


def test_standin_category_labels(standin_cache):
    sc = scenarios.get("standin", root=standin_cache, label_level="category", **TINY)
    assert sc.num_classes == 10 and len(sc.class_names) == 10
    for batch in sc.train_batches[:20]:
        assert batch.labels.tolist() == [o // 5 for _, o in batch.units for _ in range(2)]


def test_standin_cache_reused_and_corrupt_cache_reported(standin_cache, tmp_path):
    sc = scenarios.get("standin", root=standin_cache, **TINY)
    assert sc.metadata["generation"] is None  # read from the cache, not regenerated
    bad = standin.cache_path(0, 2, 32, tmp_path)
    bad.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="delete it to regenerate"):
        scenarios.get("standin", root=tmp_path, **TINY)


def test_cumulative(standin_cache):
    sc = scenarios.get("standin/nicv2_79", root=standin_cache, **TINY)
    images, labels = scenarios.cumulative(sc, 3)
    parts = [b.load() for b in sc.train_batches[:3]]
    assert np.array_equal(images, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(labels, np.concatenate([p[1] for p in parts]))
    with pytest.raises(ValueError, match=r"k must lie in \[1, 79\]"):
        scenarios.cumulative(sc, 0)


def test_nic_order_uses_every_unit_once():
    rng = np.random.default_rng(3)
    units = {c: [(c, i) for i in range(4)] for c in range(6)}
    first, later = nic_order(units, [2, 5], rng)
    assert sorted(c for c, _ in first) == [2, 5]
    assert sorted(first + later) == sorted(u for us in units.values() for u in us)


# ---- real CORe50 on fixtures in the official formats -------------------------------------------

def _core50_png_fixture(root: Path, rng) -> dict:
    """core50_128x128/s*/o*/C_ss_oo_fff.png (16x16) and NICv2_391 run0 file lists."""
    from PIL import Image

    pixels = {}
    for s in (1, 2, 3):
        for o in (1, 2, 6):
            folder = root / "core50_128x128" / f"s{s}" / f"o{o}"
            folder.mkdir(parents=True)
            for f in range(2):
                rel = f"s{s}/o{o}/C_{s:02d}_{o:02d}_{f:03d}.png"
                pixels[rel] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels[rel]).save(root / "core50_128x128" / rel)
    run = root / "batches_filelists" / "NICv2_391" / "run0"
    run.mkdir(parents=True)
    batches = [[("s1", 1), ("s1", 2)], [("s2", 6)], [("s2", 1)], [("s1", 6)], [("s2", 2)]]
    for i, units in enumerate(batches):
        lines = [f"{s}/o{o}/C_{int(s[1:]):02d}_{o:02d}_{f:03d}.png {o - 1}" for s, o in units for f in range(2)]
        (run / f"train_batch_{i:03d}_filelist.txt").write_text("\n".join(lines) + "\n")
    test = [f"s3/o{o}/C_03_{o:02d}_{f:03d}.png {o - 1}" for o in (1, 2, 6) for f in range(2)]
    (run / "test_filelist.txt").write_text("\n".join(test) + "\n")
    return pixels


def test_core50_png_layout(tmp_path, rng):
    pixels = _core50_png_fixture(tmp_path, rng)
    sc = scenarios.get("core50", root=tmp_path, protocol="nicv2_391", progress=False)
    assert sc.num_batches == 5 and sc.image_shape == (16, 16, 3) and sc.num_classes == 50
    assert sc.batch_sizes == [4, 2, 2, 2, 2]
    images, labels = sc.train_batches[0].load()
    assert labels.tolist() == [0, 0, 1, 1] and images.dtype == np.uint8
    assert np.array_equal(images[2], pixels["s1/o2/C_01_02_000.png"])
    test_images, test_labels = sc.test_set()
    assert test_labels.tolist() == [0, 0, 1, 1, 5, 5]
    assert np.array_equal(test_images[4], pixels["s3/o6/C_03_06_000.png"])
    assert sc.metadata["held_out_sessions"] == [3] and sc.metadata["train_sessions"] == [1, 2]
    assert sc.first_appearance() == {0: 0, 1: 0, 5: 1}
    category = scenarios.get("core50/nicv2-391", root=tmp_path, label_level="category")
    assert category.num_classes == 10 and category.train_batches[1].labels.tolist() == [1, 1]


def test_core50_npz_layout(tmp_path, rng):
    paths = [f"s{s}/o{o}/C_{s:02d}_{o:02d}_000.png" for s in (1, 2, 3) for o in (1, 2)]
    images = rng.integers(0, 256, (len(paths), 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "core50_imgs.npz", x=images)
    lookup = {"ni": [[[3, 0, 1], [2], [5, 4]]]}  # run 0: two training batches, then the test set
    labels = {"ni": [[[1, 0, 1], [0], [1, 0]]]}
    for name, obj in (("paths.pkl", paths), ("LUP.pkl", lookup), ("labels.pkl", labels)):
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=2))
    sc = scenarios.get("core50/ni", root=tmp_path)
    assert sc.metadata["layout"] == "npz" and sc.num_batches == 2
    batch_images, batch_labels = sc.train_batches[0].load()
    assert np.array_equal(batch_images, images[[3, 0, 1]]) and batch_labels.tolist() == [1, 0, 1]
    assert isinstance(core50.npz_array(tmp_path / "core50_imgs.npz", "x"), np.memmap)
    test_images, _ = sc.test_set()
    assert np.array_equal(test_images, images[[5, 4]])
    assert sc.metadata["held_out_sessions"] == [3]
    np.savez_compressed(tmp_path / "core50_imgs.npz", x=images)  # compressed bundles are read whole
    assert np.array_equal(scenarios.get("core50/ni", root=tmp_path).train_batches[1].images, images[[2]])
    with pytest.raises(ValueError, match="no protocol 'nc'"):
        scenarios.get("core50/nc", root=tmp_path)


def test_core50_raw_bin_bundle(tmp_path, rng):
    paths = [f"s{s}/o1/C_{s:02d}_01_000.png" for s in (1, 2)]
    images = rng.integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    np.savez_compressed(tmp_path / "core50_imgs.npz", x=images)
    for name, obj in (("paths.pkl", paths), ("LUP.pkl", {"ni": [[[1], [0]]]}),
                      ("labels.pkl", {"ni": [[[0], [0]]]})):
        (tmp_path / name).write_bytes(pickle.dumps(obj, protocol=2))
    core50.extract_bin(tmp_path)
    (tmp_path / "core50_imgs.npz").unlink()  # the raw file alone is enough
    sc = scenarios.get("core50/ni", root=tmp_path)
    assert np.array_equal(sc.train_batches[0].images, images[[1]])
    assert np.array_equal(sc.test_set()[0], images[[0]])
    (tmp_path / "core50_imgs.bin").write_bytes(b"short")
    with pytest.raises(FormatError, match="core50_imgs.bin has 5 bytes"):
        scenarios.get("core50/ni", root=tmp_path)


def test_core50_missing_and_bad_files(tmp_path, rng):
    with pytest.raises(ValueError, match="root="):
        scenarios.get("core50")
    with pytest.raises(FileNotFoundError, match="core50_128x128"):
        scenarios.get("core50", root=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="core50_imgs.npz"):
        scenarios.get("core50", root=tmp_path)
    _core50_png_fixture(tmp_path, rng)
    with pytest.raises(FileNotFoundError, match="NICv2_79"):
        scenarios.get("core50/nicv2_79", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="run4"):
        scenarios.get("core50", root=tmp_path, run=4)
    with pytest.raises(ValueError, match="unknown CORe50 protocol"):
        scenarios.get("core50/nicv3", root=tmp_path)
    (tmp_path / "core50_128x128" / "s2" / "o6" / "C_02_06_001.png").unlink()
    sc = scenarios.get("core50", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="C_02_06_001.png"):
        sc.train_batches[1].images
    run = tmp_path / "batches_filelists" / "NICv2_391" / "run0"
    (run / "train_batch_001_filelist.txt").write_text("s2/o6/C_02_06_000.png\n")
    with pytest.raises(FormatError, match=r"train_batch_001_filelist.txt:1"):
        scenarios.get("core50", root=tmp_path)
    (run / "test_filelist.txt").unlink()
    with pytest.raises(FileNotFoundError, match="test_filelist.txt"):
        scenarios.get("core50", root=tmp_path)


# ---- IDX and Fashion-MNIST --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, rng, dtype, compress):
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    write_idx(tmp_path / "a.idx", array, compress=compress)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array)


def test_idx_header_bytes():
    data = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    assert parse_idx(data).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01", "not an IDX file"),
    (b"\x00\x00\x07\x01", "unknown IDX type"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), "truncated: shape"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "unexpected bytes"),
])
def test_idx_rejects_bad_bytes(data, message):
    with pytest.raises(FormatError, match=message):
        parse_idx(data, "x.idx")


def test_idx_truncated_or_corrupt_gzip(tmp_path):
    packed = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200), mtime=0)
    (tmp_path / "cut.gz").write_bytes(packed[:-12])
    with pytest.raises(FormatError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "cut.gz")
    flipped = bytearray(packed)
    flipped[-6] ^= 0xFF  # damage the stored CRC
    (tmp_path / "crc.gz").write_bytes(bytes(flipped))
    with pytest.raises(FormatError, match="cut.gz|crc.gz"):
        read_idx(tmp_path / "crc.gz")


def _fashion_fixture(root: Path, rng, per_class: int = 20) -> None:
    train_labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    test_labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
    # every image is the constant grey 10 * label + 5, so labels can be read back from pixels
    write_idx(root / "train-images-idx3-ubyte.gz", np.broadcast_to(
        (train_labels * 10 + 5)[:, None, None], (train_labels.size, 28, 28)).astype(np.uint8))
    write_idx(root / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", test_labels)


def test_fashion_class_incremental(tmp_path, rng):
    _fashion_fixture(tmp_path, rng)
    sc = scenarios.get("fashion-mnist", root=tmp_path, image_size=16)
    assert sc.num_batches == 5 and sc.batch_sizes == [40] * 5
    for task, batch in enumerate(sc.train_batches):
        images, labels = batch.load()
        assert set(labels.tolist()) == {2 * task, 2 * task + 1}
        assert images.shape == (40, 16, 16, 3) and images.dtype == np.uint8
        assert np.array_equal(images[:, 7, 9, 1], labels * 10 + 5)
    test_images, test_labels = sc.test_set()
    assert test_images.shape == (30, 16, 16, 3) and test_labels.dtype == np.int64
    order = scenarios.get("fashion-mnist", root=tmp_path, class_order=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert set(order.train_batches[0].labels.tolist()) == {8, 9}


def test_fashion_nic_stream(tmp_path, rng):
    _fashion_fixture(tmp_path, rng)
    sc = scenarios.get("fashion-mnist/nic", root=tmp_path, chunk_size=5, initial_classes=3, image_size=28)
    assert sc.batch_sizes == [15] + [5] * 37  # 10 classes x 4 chunks = 3 in the first batch + 37
    assert len(np.unique(sc.train_batches[0].labels)) == 3
    indices = np.concatenate([np.concatenate(b.units) for b in sc.train_batches])
    assert sorted(indices.tolist()) == list(range(200))
    assert max(sc.first_appearance().values()) > 10
    assert all(len(np.unique(b.labels)) == 1 for b in sc.train_batches[1:])


def test_fashion_resize_is_exact_for_constant_and_identity(rng):
    grey = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    assert np.array_equal(fashion_mnist.to_rgb(grey, 28)[..., 2], grey)
    flat = np.full((2, 28, 28), 77, np.uint8)
    assert (fashion_mnist.to_rgb(flat, 128) == 77).all()


def test_fashion_missing_and_bad_options(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        scenarios.get("fashion-mnist", root=tmp_path)
    _fashion_fixture(tmp_path, rng)
    with pytest.raises(ValueError, match="classes_per_task must divide"):
        scenarios.get("fashion-mnist", root=tmp_path, classes_per_task=3)
    with pytest.raises(ValueError, match="permutation"):
        scenarios.get("fashion-mnist", root=tmp_path, class_order=[0] * 10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(FormatError, match="labels for 200 images"):
        scenarios.get("fashion-mnist", root=tmp_path)


def test_fashion_real_files():
    root = fashion_mnist.default_root()
    if not (root / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed at {root} (Debian package dataset-fashion-mnist)")
    arrays = fashion_mnist.load_arrays(root)
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert np.bincount(arrays["train_labels"]).tolist() == [6000] * 10
    assert np.bincount(arrays["test_labels"]).tolist() == [1000] * 10


# ---- names ------------------------------------------------------------------------------------

def test_unknown_names_and_options(standin_cache):
    with pytest.raises(ValueError, match="known: core50, core50-standin, fashion-mnist"):
        scenarios.get("cifar10")
    with pytest.raises(TypeError):
        scenarios.get(3)
    with pytest.raises(ValueError, match="unknown CORe50 stand-in protocol"):
        scenarios.get("standin/nicv2_999", root=standin_cache, **TINY)
    with pytest.raises(ValueError, match="protocol given twice"):
        scenarios.get("standin/ni", protocol="nc")
    with pytest.raises(ValueError, match="label_level"):
        scenarios.get("standin", root=standin_cache, label_level="pixel", **TINY)
    with pytest.raises(ValueError, match="unknown Fashion-MNIST protocol"):
        scenarios.get("fashion-mnist/nicv2")
    with pytest.raises(ValueError, match="frames_per_session must be >= 1"):
        scenarios.get("standin", root=standin_cache, frames_per_session=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        scenarios.get("standin", root=standin_cache, seed=1.5, **TINY)


def test_fashion_train_and_test_steps_subsample(tmp_path, rng):
    _fashion_fixture(tmp_path, rng)
    full = scenarios.get("fashion-mnist", root=tmp_path, image_size=8)
    short = scenarios.get("fashion-mnist", root=tmp_path, image_size=8, train_step=4, test_step=2)
    assert sum(len(b) for b in short.train_batches) == -(-sum(len(b) for b in full.train_batches) // 4)
    assert len(short.test_set()[1]) == -(-len(full.test_set()[1]) // 2)
    assert short.metadata["train_step"] == 4
    with pytest.raises(ValueError, match="train_step"):
        scenarios.get("fashion-mnist", root=tmp_path, train_step=0)
