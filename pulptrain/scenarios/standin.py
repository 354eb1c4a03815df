"""A CORe50-shaped stand-in generated offline.

CORe50 (Lomonaco & Maltoni, CoRL 2017) films 50 hand-held objects of 10
categories in 11 sessions (different backgrounds and lighting), ~300 frames of
128x128 per object and session; sessions 3, 7 and 10 are the test set. The real
data is in no package, so this module builds a set with the same structure:

- objects: 50 colour emoji of Noto Color Emoji (Debian ``fonts-noto-color-emoji``),
  10 categories x 5 genuinely different objects (labels: object ``o`` belongs
  to category ``o // 5``, the CORe50 convention);
- sessions: 11 real photos / textures of scikit-image's ``data`` module, each
  with its own lighting (colour cast, gain, gamma, sensor noise);
- frames: every object-session is a short clip with smooth pose trajectories
  (translation, scale, in-plane rotation, a yaw-like squash), a hand-like
  occluder that comes and goes, a slowly panning background and changing
  brightness.

Generation is deterministic from ``seed`` and cached as one ``.npz`` under
:func:`pulptrain.scenarios.base.cache_dir`.
"""
from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pulptrain.scenarios.base import cache_dir

FORMAT_VERSION = 1
NUM_SESSIONS = 11
HELD_OUT_SESSIONS = (3, 7, 10)
TRAIN_SESSIONS = tuple(s for s in range(1, NUM_SESSIONS + 1) if s not in HELD_OUT_SESSIONS)
DEFAULT_FRAMES = 20
EMOJI_FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
                    "/usr/share/fonts/noto/NotoColorEmoji.ttf")
EMOJI_FONT_SIZE = 109  # the only size of the font's CBDT bitmaps

# (category, ((object name, code point), x5)); object index = 5 * category + position
CATEGORIES = (
    ("fruit", (("red apple", 0x1F34E), ("banana", 0x1F34C), ("grapes", 0x1F347),
               ("tangerine", 0x1F34A), ("strawberry", 0x1F353))),
    ("vehicle", (("car", 0x1F697), ("bus", 0x1F68C), ("bicycle", 0x1F6B2),
                 ("tractor", 0x1F69C), ("motorcycle", 0x1F3CD))),
    ("animal", (("cat", 0x1F408), ("dog", 0x1F415), ("elephant", 0x1F418),
                ("turtle", 0x1F422), ("rabbit", 0x1F407))),
    ("ball", (("soccer ball", 0x26BD), ("basketball", 0x1F3C0), ("american football", 0x1F3C8),
              ("baseball", 0x26BE), ("tennis", 0x1F3BE))),
    ("drink", (("coffee", 0x2615), ("green tea", 0x1F375), ("beer mug", 0x1F37A),
               ("wine glass", 0x1F377), ("cup with straw", 0x1F964))),
    ("device", (("mobile phone", 0x1F4F1), ("telephone", 0x260E), ("laptop", 0x1F4BB),
                ("watch", 0x231A), ("camera", 0x1F4F7))),
    ("tool", (("scissors", 0x2702), ("hammer", 0x1F528), ("wrench", 0x1F527),
              ("screwdriver", 0x1FA9B), ("saw", 0x1FA9A))),
    ("light", (("light bulb", 0x1F4A1), ("flashlight", 0x1F526), ("candle", 0x1F56F),
               ("lantern", 0x1F3EE), ("oil lamp", 0x1FA94))),
    ("writing tool", (("pencil", 0x270F), ("pen", 0x1F58A), ("fountain pen", 0x1F58B),
                      ("crayon", 0x1F58D), ("paintbrush", 0x1F58C))),
    ("clothing", (("t-shirt", 0x1F455), ("jeans", 0x1F456), ("dress", 0x1F457),
                  ("socks", 0x1F9E6), ("scarf", 0x1F9E3))),
)
CATEGORY_NAMES = [c for c, _ in CATEGORIES]
OBJECT_NAMES = [name for _, objects in CATEGORIES for name, _ in objects]
NUM_OBJECTS = len(OBJECT_NAMES)


@dataclass(frozen=True)
class SessionLook:
    """Background source and lighting of one session."""
    image: str                         # scikit-image data function
    tint: tuple[float, float, float]   # per-channel gain (colour cast; colours grey textures)
    gain: float                        # overall exposure
    gamma: float
    noise: float                       # sensor noise sigma, in uint8 steps


SESSIONS = {
    1: SessionLook("astronaut", (1.00, 1.00, 1.00), 1.00, 1.00, 2.0),
    2: SessionLook("coffee", (1.05, 1.00, 0.92), 1.05, 0.95, 2.0),
    3: SessionLook("chelsea", (1.00, 0.98, 1.02), 0.95, 1.05, 3.0),
    4: SessionLook("rocket", (0.92, 0.98, 1.10), 1.10, 0.90, 2.0),
    5: SessionLook("hubble_deep_field", (1.00, 1.00, 1.00), 1.35, 0.80, 4.0),
    6: SessionLook("immunohistochemistry", (1.00, 0.95, 1.00), 0.95, 1.00, 2.5),
    7: SessionLook("stereo_motorcycle", (1.08, 1.00, 0.90), 0.85, 1.10, 3.5),
    8: SessionLook("brick", (1.10, 0.85, 0.70), 1.00, 1.00, 2.0),
    9: SessionLook("grass", (0.70, 1.05, 0.60), 1.05, 1.00, 2.5),
    10: SessionLook("gravel", (0.95, 0.90, 0.80), 0.90, 1.15, 3.0),
    11: SessionLook("retina", (1.00, 1.00, 1.00), 1.20, 0.85, 2.0),
}
SKIN_TONES = ((224, 172, 138), (198, 134, 100), (241, 194, 160), (141, 85, 60), (255, 205, 178))


def find_emoji_font() -> str:
    env = os.environ.get("PULPTRAIN_EMOJI_FONT")
    for path in ((env,) if env else ()) + EMOJI_FONT_PATHS:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        "the CORe50 stand-in needs the Noto Color Emoji font: install the Debian package "
        f"fonts-noto-color-emoji (looked for {', '.join(EMOJI_FONT_PATHS)}; "
        "or set PULPTRAIN_EMOJI_FONT to the .ttf)")


def render_objects() -> list:
    """The 50 emoji as RGBA PIL images cropped to their visible pixels."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(find_emoji_font(), EMOJI_FONT_SIZE)
    sprites = []
    for _, objects in CATEGORIES:
        for name, code_point in objects:
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((8, 8), chr(code_point), font=font, embedded_color=True)
            box = canvas.getchannel("A").getbbox()
            if box is None:
                raise RuntimeError(f"emoji U+{code_point:04X} ({name}) rendered empty: "
                                   "is the font Noto Color Emoji?")
            sprites.append(canvas.crop(box))
    return sprites


def session_background(session: int, side: int):
    """The session's photo/texture, lit by its :class:`SessionLook`, as an RGB
    PIL image whose shorter side is ``side`` pixels."""
    from PIL import Image
    import skimage.data

    look = SESSIONS[session]
    image = getattr(skimage.data, look.image)()
    if isinstance(image, tuple):  # stereo pairs: take the left view
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = image[:, :, :3].astype(np.float32) / 255.0
    image = (image ** look.gamma) * look.gain * np.asarray(look.tint, np.float32)
    pil = Image.fromarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))
    scale = side / min(pil.size)
    return pil.resize((max(side, round(pil.width * scale)), max(side, round(pil.height * scale))),
                      Image.BILINEAR)


def _smooth(rng: np.random.Generator, t: np.ndarray, cycles=(0.3, 1.2)) -> np.ndarray:
    """A smooth signal in about [-1, 1]: two sinusoids with seeded frequency and phase."""
    out = np.zeros_like(t)
    for weight in (0.7, 0.3):
        freq = rng.uniform(*cycles) * (1.0 if weight > 0.5 else 2.0)
        out += weight * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    return out


def render_clip(sprite, background, session: int, obj: int, frames: int, size: int,
                seed: int) -> np.ndarray:
    """One object-session clip: uint8 ``[frames, size, size, 3]``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([seed, session, obj])
    t = np.linspace(0.0, 1.0, frames, endpoint=False) if frames > 1 else np.zeros(1)
    cx = size * (0.5 + 0.14 * _smooth(rng, t))
    cy = size * (0.5 + 0.12 * _smooth(rng, t))
    extent = size * rng.uniform(0.5, 0.68) * (1.0 + 0.15 * _smooth(rng, t))
    angle = rng.uniform(-25, 25) + 30.0 * _smooth(rng, t)
    yaw = 0.8 + 0.2 * _smooth(rng, t, cycles=(0.5, 1.5))
    brightness = 1.0 + 0.12 * _smooth(rng, t)
    hand_on = _smooth(rng, t, cycles=(0.5, 1.0)) > rng.uniform(-0.3, 0.5)
    hand_angle = rng.uniform(0, 2 * np.pi) + 0.5 * _smooth(rng, t)
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    max_x, max_y = background.width - size, background.height - size
    pan_start = rng.uniform(0, 1, 2)
    pan_end = np.clip(pan_start + rng.uniform(-0.15, 0.15, 2), 0, 1)
    noise = SESSIONS[session].noise
    clip = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        pan = pan_start + (pan_end - pan_start) * t[f]
        x0, y0 = int(round(pan[0] * max_x)), int(round(pan[1] * max_y))
        frame = background.crop((x0, y0, x0 + size, y0 + size))
        scale = extent[f] / max(sprite.size)
        w = max(2, int(round(sprite.width * scale * yaw[f])))
        h = max(2, int(round(sprite.height * scale)))
        pose = sprite.resize((w, h), Image.BILINEAR).rotate(angle[f], Image.BILINEAR, expand=True)
        frame.paste(pose, (int(round(cx[f] - pose.width / 2)), int(round(cy[f] - pose.height / 2))), pose)
        if hand_on[f]:
            # a palm at the object's rim and a wrist running off the frame
            r = extent[f] * 0.22
            px = cx[f] + 0.45 * extent[f] * np.cos(hand_angle[f])
            py = cy[f] + 0.45 * extent[f] * np.sin(hand_angle[f])
            ex = px + 2 * size * np.cos(hand_angle[f])
            ey = py + 2 * size * np.sin(hand_angle[f])
            draw = ImageDraw.Draw(frame)
            draw.line((px, py, ex, ey), fill=skin, width=max(2, int(1.4 * r)))
            draw.ellipse((px - r, py - r * 0.8, px + r, py + r * 0.8), fill=skin)
        pixels = np.asarray(frame, np.float32) * brightness[f]
        pixels += rng.normal(0.0, noise, pixels.shape).astype(np.float32)
        clip[f] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    return clip


def member_name(session: int, obj: int) -> str:
    """Key of one clip in the cache file: session 1..11, object 0..49."""
    return f"s{session:02d}_o{obj:02d}"


def cache_path(seed: int, frames: int, size: int, root=None) -> Path:
    base = Path(root).expanduser() if root is not None else cache_dir()
    return base / f"core50_standin_v{FORMAT_VERSION}_seed{seed}_{frames}f_{size}px.npz"


def generate(path, seed: int = 0, frames: int = DEFAULT_FRAMES, size: int = 128,
             progress: bool = True) -> dict:
    """Render every clip into ``path`` (a ``.npz``; written to a temporary name
    then renamed, so a crash never leaves a half file). Returns generation
    statistics: seconds, bytes, frames."""
    from tqdm import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sprites = render_objects()
    meta = dict(format_version=FORMAT_VERSION, seed=seed, frames=frames, size=size,
                sessions=NUM_SESSIONS, objects=NUM_OBJECTS)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    units = [(s, o) for s in range(1, NUM_SESSIONS + 1) for o in range(NUM_OBJECTS)]
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            background = None
            with tqdm(units, desc="CORe50 stand-in", unit="clip", disable=not progress) as bar:
                for session, obj in bar:
                    if obj == 0:
                        background = session_background(session, 2 * size)
                    clip = render_clip(sprites[obj], background, session, obj, frames, size, seed)
                    with archive.open(member_name(session, obj) + ".npy", "w", force_zip64=True) as out:
                        np.lib.format.write_array(out, clip, allow_pickle=False)
            with archive.open("meta.npy", "w") as out:
                np.lib.format.write_array(out, np.array(json.dumps(meta)), allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dict(seconds=time.perf_counter() - start, bytes=path.stat().st_size,
                frames=len(units) * frames, path=str(path))


class StandinData:
    """Read access to a generated stand-in file (clips are read on demand)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                self.meta = json.loads(str(archive["meta"]))
                self.names = set(archive.files)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            from pulptrain.errors import FormatError
            raise FormatError(f"{self.path} is not a readable CORe50 stand-in file ({exc}); "
                              "delete it to regenerate") from exc
        missing = [member_name(s, o) for s in range(1, NUM_SESSIONS + 1) for o in range(NUM_OBJECTS)
                   if member_name(s, o) not in self.names]
        if missing or self.meta.get("format_version") != FORMAT_VERSION:
            from pulptrain.errors import FormatError
            raise FormatError(f"{self.path} is incomplete or of another format version "
                              f"(missing {len(missing)} clips); delete it to regenerate")

    def clips(self, units, frame_step: int = 1) -> np.ndarray:
        """Frames of the ``(session, object)`` units, concatenated in order."""
        with np.load(self.path, allow_pickle=False) as archive:
            return np.concatenate([archive[member_name(s, o)][::frame_step] for s, o in units])


def load_or_generate(seed: int = 0, frames: int = DEFAULT_FRAMES, size: int = 128, root=None,
                     progress: bool = True) -> tuple[StandinData, dict | None]:
    """The cached stand-in for these parameters, generating it on first use.
    Returns the data and the generation statistics (None when it was cached)."""
    path = cache_path(seed, frames, size, root)
    stats = None
    if not path.exists():
        stats = generate(path, seed=seed, frames=frames, size=size, progress=progress)
    return StandinData(path), stats


NICV2_BATCHES = {"nicv2_391": 1, "nicv2_196": 2, "nicv2_79": 5}  # object-sessions per later batch
PROTOCOLS = tuple(NICV2_BATCHES) + ("ni", "nc")
INITIAL_CLASSES = 10


def stream_units(protocol: str, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """The training batches as lists of ``(session, object)`` clips.

    - ``nicv2_391`` / ``nicv2_196`` / ``nicv2_79``: CORe50's NICv2 shape: the
      first batch holds one clip of each of 10 objects; every later batch holds
      1, 2 or 5 clips, in a seeded order where the other 40 objects are
      introduced over the stream and seen objects return in new sessions
      (1 + 390, 1 + 195, 1 + 78 batches).
    - ``ni``: one batch per training session, all 50 objects.
    - ``nc``: 10 objects, then 8 batches of 5 new objects, all training sessions.
    """
    from pulptrain.scenarios.base import group, nic_order

    if protocol in NICV2_BATCHES:
        objects = rng.permutation(NUM_OBJECTS).tolist()
        units = {o: [(s, o) for s in TRAIN_SESSIONS] for o in objects}
        first, later = nic_order(units, objects[:INITIAL_CLASSES], rng)
        return [first] + group(later, NICV2_BATCHES[protocol])
    if protocol == "ni":
        sessions = [TRAIN_SESSIONS[i] for i in rng.permutation(len(TRAIN_SESSIONS))]
        return [[(s, o) for o in range(NUM_OBJECTS)] for s in sessions]
    if protocol == "nc":
        objects = rng.permutation(NUM_OBJECTS).tolist()
        groups = [objects[:INITIAL_CLASSES]] + group(objects[INITIAL_CLASSES:], 5)
        return [[(s, o) for o in g for s in TRAIN_SESSIONS] for g in groups]
    raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def build(root=None, protocol: str = "nicv2_391", seed: int = 0, run: int = 0,
          frames_per_session: int = DEFAULT_FRAMES, image_size: int = 128,
          label_level: str = "object", test_step: int = 1, progress: bool = True):
    """The stand-in as a :class:`~pulptrain.scenarios.base.Scenario`.

    ``root``: cache folder (default :func:`cache_dir`). ``seed`` fixes the
    images, ``run`` the batch order (like CORe50's runs 0..9).
    ``label_level``: ``"object"`` (50 classes) or ``"category"`` (10).
    ``test_step``: keep every k-th frame of the held-out sessions."""
    from pulptrain._validate import positive_int
    from pulptrain.scenarios.base import Batch, Scenario, objects_per_label, protocol_name

    protocol = protocol_name(protocol, PROTOCOLS, "CORe50 stand-in")
    per_object = objects_per_label(label_level)
    seed = positive_int("seed", seed, minimum=0)
    run = positive_int("run", run, minimum=0)
    frames = positive_int("frames_per_session", frames_per_session)
    size = positive_int("image_size", image_size, minimum=16)
    test_step = positive_int("test_step", test_step)
    data, stats = load_or_generate(seed, frames, size, root, progress)

    def labels_of(units, step=1):
        count = len(range(0, frames, step))
        return np.repeat(np.array([o // per_object for _, o in units], np.int64), count)

    batches = []
    for index, units in enumerate(stream_units(protocol, np.random.default_rng([seed, run, 0x50]))):
        batches.append(Batch(index, labels_of(units), lambda units=units: data.clips(units), units))
    test_units = [(s, o) for s in HELD_OUT_SESSIONS for o in range(NUM_OBJECTS)]
    return Scenario(
        name=f"core50-standin/{protocol}",
        num_classes=NUM_OBJECTS // per_object,
        image_shape=(size, size, 3),
        train_batches=batches,
        load_test=lambda: (data.clips(test_units, test_step), labels_of(test_units, test_step)),
        class_names=list(OBJECT_NAMES if per_object == 1 else CATEGORY_NAMES),
        metadata=dict(
            benchmark="core50-standin", protocol=protocol, run=run, seed=seed,
            label_level=label_level, frames_per_session=frames, image_size=size,
            train_sessions=list(TRAIN_SESSIONS), held_out_sessions=list(HELD_OUT_SESSIONS),
            num_batches=len(batches), batch_sizes=[len(b) for b in batches],
            test_step=test_step, cache_file=str(data.path), generation=stats,
            sessions={s: look.image for s, look in SESSIONS.items()}))
