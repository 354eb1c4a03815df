"""The real CORe50 (Lomonaco & Maltoni, CoRL 2017), for users who have it.

Two layouts of the official download are read, both from one ``root`` folder:

1. PNG folders plus batch file lists::

       root/core50_128x128/s{1..11}/o{1..50}/C_{ss}_{oo}_{fff}.png
       root/batches_filelists/NICv2_391/run{0..9}/train_batch_{000..390}_filelist.txt
       root/batches_filelists/NICv2_391/run{0..9}/test_filelist.txt

   (each list line: ``s11/o1/C_11_01_000.png 0``, a path under
   ``core50_128x128/`` and the object label 0..49). Protocol folders:
   ``NICv2_391``, ``NICv2_196``, ``NICv2_79``, ``NI_inc``, ``NC_inc``,
   ``NIC_inc``; they may also sit in ``root/batches_filelists_NICv2/`` or
   directly in ``root``.

2. The numpy bundle: ``core50_imgs.npz`` (array ``x``: [164866, 128, 128, 3]
   uint8), ``paths.pkl`` (the path of every image), ``LUP.pkl`` and
   ``labels.pkl`` (``[protocol][run][batch]`` -> image indices / labels; the
   last batch of each run is the test set). The raw ``core50_imgs.bin`` that
   CORe50's own loader extracts from the ``.npz`` (see :func:`extract_bin`) is
   used instead when present, memory-mapped; so is an uncompressed ``.npz``.
   A compressed ``.npz`` without the ``.bin`` is read whole into memory.

Object ``o`` (0-based) belongs to category ``o // 5``.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np

from pulptrain.errors import FormatError
from pulptrain.scenarios.base import Batch, Scenario, objects_per_label, protocol_name

PROTOCOL_FOLDERS = {"nicv2_391": "NICv2_391", "nicv2_196": "NICv2_196", "nicv2_79": "NICv2_79",
                    "ni": "NI_inc", "nc": "NC_inc", "nic": "NIC_inc"}
FILELIST_PARENTS = ("batches_filelists", "batches_filelists_NICv2", ".")
IMAGE_FOLDER = "core50_128x128"
PICKLES = ("paths.pkl", "LUP.pkl", "labels.pkl")
IMAGES_NPZ, IMAGES_BIN = "core50_imgs.npz", "core50_imgs.bin"
FRAME_SHAPE = (128, 128, 3)
NUM_OBJECTS = 50
CATEGORY_NAMES = ["plug adapter", "mobile phone", "scissors", "light bulb", "can",
                  "glasses", "ball", "marker", "cup", "remote control"]
_SESSION = re.compile(r"(?:^|/)s(\d+)/")

LAYOUT_HELP = (
    "expected either the PNG layout {root}/core50_128x128/s1..s11/o1..o50/C_ss_oo_fff.png with "
    "{root}/batches_filelists/<protocol>/run<r>/train_batch_*_filelist.txt and test_filelist.txt, "
    "or the numpy layout {root}/core50_imgs.npz (or core50_imgs.bin) + paths.pkl + LUP.pkl + labels.pkl")


def read_filelist(path: Path) -> tuple[list[str], np.ndarray]:
    """``(relative paths, int64 labels)`` of one CORe50 batch file list."""
    paths, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise FormatError(f"{path}:{number}: expected '<relative png path> <label>', got {line.strip()!r}")
            paths.append(parts[0])
            labels.append(int(parts[1]))
    if not paths:
        raise FormatError(f"{path} lists no images")
    labels = np.array(labels, np.int64)
    if labels.min() < 0 or labels.max() >= NUM_OBJECTS:
        raise FormatError(f"{path}: labels must lie in [0, {NUM_OBJECTS}), found {labels.min()}..{labels.max()}")
    return paths, labels


def sessions_of(paths) -> list[int]:
    found = set()
    for p in paths:
        match = _SESSION.search(str(p).replace("\\", "/"))
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


def _read_pngs(folder: Path, relative_paths, progress: bool = False) -> np.ndarray:
    from PIL import Image
    from tqdm import tqdm

    images = []
    # a progress bar only for big reads (the ~45,000-frame test set), not for every batch
    quiet = not progress or len(relative_paths) < 5000
    for rel in tqdm(relative_paths, desc="CORe50 frames", unit="png", disable=quiet):
        path = folder / rel
        if not path.is_file():
            raise FileNotFoundError(f"CORe50 image {path} is missing (listed in a batch file list)")
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGB")))
    shapes = {a.shape for a in images}
    if len(shapes) != 1:
        raise FormatError(f"CORe50 images under {folder} differ in size: {sorted(shapes)}")
    return np.stack(images)


def _find_protocol_folder(root: Path, protocol: str) -> Path:
    name = PROTOCOL_FOLDERS[protocol]
    tried = [root / parent / name for parent in FILELIST_PARENTS]
    for candidate in tried:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"CORe50 batch file lists for protocol {protocol!r} not found; looked for "
                            + ", ".join(str(p) for p in tried))


def _from_png_folders(root: Path, protocol: str, run: int, progress: bool):
    image_folder = root / IMAGE_FOLDER
    run_folder = _find_protocol_folder(root, protocol) / f"run{run}"
    if not run_folder.is_dir():
        raise FileNotFoundError(f"CORe50 run folder {run_folder} not found (runs are run0..run9)")
    lists = sorted(run_folder.glob("train_batch_*_filelist.txt"),
                   key=lambda p: int(re.search(r"train_batch_(\d+)_", p.name).group(1)))
    if not lists:
        raise FileNotFoundError(f"no train_batch_*_filelist.txt in {run_folder}")
    test_list = run_folder / "test_filelist.txt"
    if not test_list.is_file():
        raise FileNotFoundError(f"CORe50 test file list {test_list} not found")
    train = [read_filelist(p) for p in lists]
    test_paths, test_labels = read_filelist(test_list)

    def loader(paths):
        return lambda: _read_pngs(image_folder, paths, progress)

    image_shape = _read_pngs(image_folder, train[0][0][:1]).shape[1:]
    return ([(paths, labels, loader(paths)) for paths, labels in train],
            (test_paths, test_labels, loader(test_paths)), image_shape)


def npz_array(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of an ``.npz``: memory-mapped when the member is stored
    uncompressed (the CORe50 bundle is ~8 GB), otherwise read whole."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(key + ".npy")
        except KeyError:
            raise FormatError(f"{path} has no array {key!r} (has {archive.namelist()})") from None
        if info.compress_type == zipfile.ZIP_STORED:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(member)
                header_bytes = member.tell()
            with open(path, "rb") as raw:  # the local header's variable fields come before the data
                raw.seek(info.header_offset + 26)
                name_len, extra_len = np.frombuffer(raw.read(4), "<u2")
            offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_bytes
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")
    with np.load(path, allow_pickle=False) as archive:
        return archive[key]


def _load_pickle(path: Path):
    with open(path, "rb") as handle:
        try:
            return pickle.load(handle, encoding="latin1")  # the official files are Python 2 pickles
        except Exception as exc:
            raise FormatError(f"{path} is not a readable pickle ({exc})") from exc


def extract_bin(root) -> Path:
    """Write ``core50_imgs.bin`` (raw uint8 frames) next to ``core50_imgs.npz``
    once, so later runs memory-map it instead of decompressing ~8 GB."""
    root = Path(root)
    images = npz_array(root / IMAGES_NPZ, "x")
    target = root / IMAGES_BIN
    tmp = target.with_name(target.name + ".tmp")
    np.ascontiguousarray(images).tofile(tmp)
    tmp.replace(target)
    return target


def _bundle_images(root: Path, count: int) -> np.ndarray:
    raw = root / IMAGES_BIN
    if raw.is_file():
        frame_bytes = int(np.prod(FRAME_SHAPE))
        if raw.stat().st_size != count * frame_bytes:
            raise FormatError(f"{raw} has {raw.stat().st_size} bytes; {count} frames of "
                              f"{'x'.join(map(str, FRAME_SHAPE))} uint8 need {count * frame_bytes}")
        return np.memmap(raw, np.uint8, mode="r", shape=(count,) + FRAME_SHAPE)
    return npz_array(root / IMAGES_NPZ, "x")


def _from_npz(root: Path, protocol: str, run: int):
    paths = _load_pickle(root / "paths.pkl")
    images = _bundle_images(root, len(paths))
    lookup, labels = _load_pickle(root / "LUP.pkl"), _load_pickle(root / "labels.pkl")
    if len(paths) != len(images):
        raise FormatError(f"{root / 'paths.pkl'} lists {len(paths)} paths for {len(images)} images")
    try:
        run_lookup, run_labels = lookup[protocol][run], labels[protocol][run]
    except (KeyError, IndexError, TypeError):
        known = sorted(lookup) if isinstance(lookup, dict) else "?"
        raise ValueError(f"{root / 'LUP.pkl'} has no protocol {protocol!r} run {run} (protocols: {known})") from None
    if len(run_lookup) != len(run_labels) or len(run_lookup) < 2:
        raise FormatError(f"LUP.pkl and labels.pkl disagree for {protocol} run {run}")

    def part(indices, batch_labels):
        indices = np.asarray(indices, np.int64)
        batch_labels = np.asarray(batch_labels, np.int64)
        if indices.shape != batch_labels.shape:
            raise FormatError(f"LUP.pkl / labels.pkl batch sizes differ for {protocol} run {run}")
        return ([paths[i] for i in indices], batch_labels,
                lambda: np.asarray(images[np.sort(indices)][np.argsort(np.argsort(indices))]))

    parts = [part(i, l) for i, l in zip(run_lookup, run_labels)]
    return parts[:-1], parts[-1], images.shape[1:]


def build(root=None, protocol: str = "nicv2_391", run: int = 0, label_level: str = "object",
          progress: bool = True):
    """The real CORe50 stream as a :class:`Scenario` (see the module doc for
    layouts). ``progress``: a progress bar while reading large PNG sets."""
    from pulptrain._validate import positive_int

    if root is None:
        raise ValueError("the real CORe50 needs root=<folder of the download>; " + LAYOUT_HELP.format(root="<root>"))
    root = Path(root).expanduser()
    protocol = protocol_name(protocol, tuple(PROTOCOL_FOLDERS), "CORe50")
    per_object = objects_per_label(label_level)
    run = positive_int("run", run, minimum=0)
    if not root.is_dir():
        raise FileNotFoundError(f"CORe50 root {root} is not a folder; " + LAYOUT_HELP.format(root=root))
    if (root / IMAGE_FOLDER).is_dir():
        layout = "png"
        train, test, image_shape = _from_png_folders(root, protocol, run, progress)
    elif (all((root / name).is_file() for name in PICKLES)
          and ((root / IMAGES_NPZ).is_file() or (root / IMAGES_BIN).is_file())):
        layout = "npz"
        train, test, image_shape = _from_npz(root, protocol, run)
    else:
        raise FileNotFoundError(f"no CORe50 data in {root}: " + LAYOUT_HELP.format(root=root))
    batches = [Batch(i, labels // per_object, load, units=paths)
               for i, (paths, labels, load) in enumerate(train)]
    test_paths, test_labels, load_test = test
    return Scenario(
        name=f"core50/{protocol}",
        num_classes=NUM_OBJECTS // per_object,
        image_shape=tuple(int(d) for d in image_shape),
        train_batches=batches,
        load_test=lambda: (load_test(), test_labels // per_object),
        class_names=CATEGORY_NAMES if per_object == 5 else [f"o{i + 1}" for i in range(NUM_OBJECTS)],
        metadata=dict(
            benchmark="core50", protocol=protocol, run=run, layout=layout, root=str(root),
            label_level=label_level, num_batches=len(batches),
            batch_sizes=[len(b) for b in batches],
            train_sessions=sessions_of(p for b in batches for p in b.units),
            held_out_sessions=sessions_of(test_paths)))
