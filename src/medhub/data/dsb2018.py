"""The 2018 Data Science Bowl nuclei (BBBC038 stage 1 training set, with the community's mask fixes), as
`medhub.data.load("dsb2018-nuclei", split)`: `images/<id>.png` (RGB) and `labels/<id>.png` (16-bit instance
labels, 0 = background, 1..n = one nucleus each).

Columns: id, image (`Image`, RGB as stored), label (`Image`, the 16-bit instance labels), image_type
(`ClassLabel` fluorescence / brightfield / histology), group (the experiment group below), height, width; with
`mask="foreground"` or `mask="three_class"` also mask (`Image`, uint8 classes: 0 background, 1 nucleus; or 0
background, 1 nucleus interior, 2 nucleus boundary = the nucleus's own pixels that touch another label or the
background, `skimage.segmentation.find_boundaries(mode="inner")`): the target of a semantic U-Net, made from
the labels when the split is loaded.

Image type, by a rule on the image (`image_type`): *colourfulness* = the mean over pixels of (largest - smallest
of R, G, B) / 255; *background* = the median grey level / 255 (most pixels are background). Colourfulness >
0.02: histology (stained tissue: H&E-like purple/pink); else background > 0.5: bright-field (grey nuclei on a
light background); else fluorescence (bright nuclei on a dark background). On the 664 images: 541 fluorescence,
16 bright-field, 107 histology (every coloured image has colourfulness >= 0.046, every grey one < 0.001).

Experiment groups (`group`): BBBC038 does not say which experiment an image comes from, so images that share
the image type, the size and the background level (rounded to 0.05) form one group, e.g. the 256x256
fluorescence images split into a black-background and a dark-grey-background group. This separates what
size and colour can tell apart; experiments that share all three stay one group (the safe side for a split),
and an experiment whose background level straddles a rounding edge could fall into two groups.

Split (`split_groups`): deterministic (`seed`); per image type, whole groups are drawn in a seeded order into
validation while they keep its size within 1.25 x `val_fraction` of that type's images; a type with a single
group (bright-field: one 1024x1024 set) is split by image instead (every 1/val_fraction-th image of its sorted
ids goes to validation), said in the dataset's description. `split_counts(folder)` reports the counts.
"""

from __future__ import annotations

import io
from collections import Counter
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Features, Image, Value
from PIL import Image as PILImage

from ..errors import InputError
from ._table import SkipReport, to_dataset

IMAGE_TYPES = ["fluorescence", "brightfield", "histology"]
COLOURFUL = 0.02
BRIGHT_BACKGROUND = 0.5
MASKS = ("none", "foreground", "three_class")
WHAT = "2018 Data Science Bowl nuclei (BBBC038 stage 1 train, mask fixes; CC0)"


def image_type(image) -> str:
    """"fluorescence", "brightfield" or "histology" of an RGB or grey image (see the module docstring)."""
    return _type_of(*_statistics(np.asarray(image)))


def _statistics(array: np.ndarray) -> tuple[float, float]:
    """(colourfulness, background) of an (H, W), (H, W, 3) or (H, W, 4) image, both in [0, 1]."""
    if array.ndim == 3:
        array = array[..., :3]
    if array.ndim not in (2, 3):
        raise InputError(f"image_type: expected an (H, W) or (H, W, 3) image, got shape {array.shape}")
    scale = 65535.0 if array.dtype == np.uint16 else 255.0 if array.dtype.kind in "ui" else 1.0
    array = array[::2, ::2].astype(np.float32) / scale  # every 4th pixel: the statistics of thousands of pixels
    if array.ndim == 2:
        return 0.0, float(np.median(array))
    return float((array.max(2) - array.min(2)).mean()), float(np.median(array.mean(2)))


def _type_of(colourfulness: float, background: float) -> str:
    if colourfulness > COLOURFUL:
        return "histology"
    return "brightfield" if background > BRIGHT_BACKGROUND else "fluorescence"


@lru_cache(maxsize=4)
def catalogue(folder: str) -> tuple[dict, ...]:
    """One record per image (sorted by id): id, paths, type, group, height, width. Reads every image once
    (about 6 s for the 664); cached per folder."""
    root = Path(folder)
    images = sorted(p for p in (root / "images").glob("*.png") if not p.name.startswith("."))
    if not images:
        raise InputError(f"{root}: no images/<id>.png files (expected the dsb2018-nuclei layout: images/ and labels/)")
    records = []
    for path in images:
        label = root / "labels" / path.name
        if not label.is_file():
            raise InputError(f"{path}: no instance label image {label}")
        with PILImage.open(path) as im:
            array = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
        colourfulness, background = _statistics(array)
        kind = _type_of(colourfulness, background)
        height, width = array.shape[:2]
        records.append({"id": path.stem, "image": str(path), "label": str(label), "image_type": kind,
                        "group": f"{kind}-{width}x{height}-bg{round(background * 20) * 5:02d}",
                        "height": height, "width": width})
    return tuple(records)


def split_groups(records, val_fraction: float = 0.2, seed: int = 0) -> tuple[dict[str, str], list[str]]:
    """({id: "train" | "validation"}, the image types split by image because they have one group)."""
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"dsb2018-nuclei: val_fraction={val_fraction}; expected a fraction in (0, 1)")
    rng = np.random.default_rng(seed)
    split, by_image = {}, []
    for kind in IMAGE_TYPES:
        chosen = [r for r in records if r["image_type"] == kind]
        groups = sorted(Counter(r["group"] for r in chosen).items())
        if len(groups) == 1:
            by_image.append(kind)
            step = round(1 / val_fraction)
            split.update({r["id"]: "validation" if i % step == step - 1 else "train" for i, r in enumerate(chosen)})
            continue
        limit, taken, held = 1.25 * val_fraction * len(chosen), 0, set()
        for index in rng.permutation(len(groups)):
            name, size = groups[index]
            if taken + size <= limit:
                held.add(name)
                taken += size
        split.update({r["id"]: "validation" if r["group"] in held else "train" for r in chosen})
    return split, by_image


def split_counts(folder: str | Path, val_fraction: float = 0.2, seed: int = 0) -> dict[str, dict[str, int]]:
    """{split: {image type: images}} of the split `dsb2018_nuclei` makes."""
    records = catalogue(str(Path(folder)))
    split, _ = split_groups(records, val_fraction, seed)
    counts = {"train": dict.fromkeys(IMAGE_TYPES, 0), "validation": dict.fromkeys(IMAGE_TYPES, 0)}
    for r in records:
        counts[split[r["id"]]][r["image_type"]] += 1
    return counts


def target_mask(labels: np.ndarray, mask: str) -> np.ndarray:
    """uint8 classes of an instance label image: "foreground" (0/1) or "three_class" (0/1 interior/2 boundary)."""
    if mask not in MASKS[1:]:
        raise InputError(f"dsb2018-nuclei: mask={mask!r}; expected one of {list(MASKS)}")
    labels = np.asarray(labels)
    out = (labels > 0).astype(np.uint8)
    if mask == "three_class":
        from skimage.segmentation import find_boundaries

        out[find_boundaries(labels, connectivity=1, mode="inner")] = 2
    return out


def _png_bytes(array: np.ndarray) -> dict:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def dsb2018_nuclei(folder: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None,
                   val_fraction: float = 0.2, seed: int = 0, mask: str = "none"):
    """`{"train", "validation"}` builders (see the module docstring)."""
    if mask not in MASKS:
        raise InputError(f"dsb2018-nuclei: mask={mask!r}; expected one of {list(MASKS)}")
    records = catalogue(str(folder))
    split, by_image = split_groups(records, val_fraction, seed)

    def build(name: str):
        rows = [dict(r) for r in records if split[r["id"]] == name]
        features = {"id": Value("string"), "image": Image(), "label": Image(),
                    "image_type": ClassLabel(names=IMAGE_TYPES), "group": Value("string"),
                    "height": Value("int32"), "width": Value("int32")}
        if mask != "none":
            features["mask"] = Image()
            for row in rows:
                with PILImage.open(row["label"]) as im:
                    row["mask"] = _png_bytes(target_mask(np.asarray(im), mask))
        note = (f"; split by image within {by_image} (one group each)" if by_image else "")
        return to_dataset(rows, Features(features), split=name, streaming=streaming,
                          report=SkipReport(str(folder), lenient), num_shards=num_shards,
                          what=f"{WHAT}, {name}: whole experiment groups (type, size, background){note}")

    return {"train": partial(build, "train"), "validation": partial(build, "validation")}


__all__ = ["IMAGE_TYPES", "catalogue", "dsb2018_nuclei", "image_type", "split_counts", "split_groups", "target_mask"]
