"""3D patch training from whole volumes: a recipe's `data.patches` section (BraTS-style NIfTI subjects).

A 3D recipe trains on patches drawn afresh from whole volumes instead of on fixed rows:

    data:
      name: brats2015-examples
      train_split: train              # a split here is a list of subjects (see `subjects`)
      eval_split: validation
      patches:
        channels: [flair, t1c]        # image columns stacked as channels, in this order
        label: label                  # label column (class indices)
        mask: brainmask               # ROI: background centres are drawn inside it; volumes are cropped to it
        subjects: {train: [...], validation: [...], test: [...]}   # default: recipe_data.BRATS_SPLITS
        patch_size: [101, 101, 101]   # model input (DeepMedic: the context patch, model.context_size(o))
        label_size: [21, 21, 21]      # label patch (DeepMedic: the output segment); default patch_size
        fg_fraction: 0.5              # share of patches centred on label > 0 (DeepMedic's 50/50)
        samples: 4000                 # train patches (one pass = max_steps * batch size distinct patches)
        eval_samples: 40              # validation patches (fixed, drawn with another seed stream)
        flip_axes: [0]                # train only: mirror along these spatial axes with p = 0.5 each

Each subject first goes through the model's processor (the `VolumeImageProcessor` saved with the weights:
orientation, spacing, intensity, the ROI mask), exactly as `medhub predict` feeds a volume to the model; then
it is cropped to the ROI's bounding box plus `crop_margin` voxels (the box the inferer crops to at prediction).
Patch `i` is drawn from subject `i % len(subjects)` by `numpy.random.default_rng([seed, stream, i])`, so a
dataset is a deterministic function of the recipe's seed whatever order the Trainer's sampler visits it in.
The "validation" patches come from the *training* subjects (held-out draws, for model selection without
looking at test subjects); the test subjects are only read by `evaluate_brats` on whole volumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..augment import CentreSampler, extract_patch
from ..data.recipe_data import split_subjects, subject_rows, subject_split, subject_volumes
from ..errors import ConfigError, InputError
from ..processing import VolumeImageProcessor

PATCH_KEYS = ("channels", "label", "mask", "subjects", "patch_size", "label_size", "fg_fraction", "samples",
              "eval_samples", "flip_axes", "crop_margin")
STREAMS = {"train": 0, "validation": 1}
_CACHE: dict[tuple, Subject] = {}


class Subject:
    """One subject's channels (C, D, H, W) float32, label and ROI mask, cropped to the ROI's bounding box."""

    def __init__(self, subject_id: str, image: np.ndarray, label: np.ndarray | None, mask: np.ndarray,
                 box: tuple[slice, ...], full_shape: tuple[int, ...]):
        self.subject_id, self.image, self.label, self.mask = subject_id, image, label, mask
        self.box, self.full_shape = box, full_shape
        self._sampler = None

    @property
    def sampler(self):
        if self._sampler is None:
            self._sampler = CentreSampler(self.label, self.mask)
        return self._sampler


def patch_options(data: dict[str, Any], source: str = "recipe") -> dict[str, Any]:
    options = dict(data.get("patches") or {})
    unknown = sorted(set(options) - set(PATCH_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown data.patches key(s) {unknown}; expected some of {list(PATCH_KEYS)}")
    options.setdefault("channels", ["flair", "t1c"])
    options.setdefault("label", "label")
    options.setdefault("mask", "brainmask")
    options["subjects"] = subject_split(data)
    if "patch_size" not in options:
        raise ConfigError(f"{source}: data.patches.patch_size is required (the model's input patch, 3 ints)")
    options["patch_size"] = _triple(options["patch_size"], "patch_size", source)
    options["label_size"] = _triple(options.get("label_size", options["patch_size"]), "label_size", source)
    options.setdefault("fg_fraction", 0.5)
    options.setdefault("samples", 1000)
    options.setdefault("eval_samples", 40)
    options.setdefault("flip_axes", [])
    options.setdefault("crop_margin", 4)
    if options["flip_axes"] and any((p - q) % 2 for p, q in zip(options["patch_size"], options["label_size"])):
        raise ConfigError(f"{source}: data.patches: flips need patch_size - label_size even on every axis "
                          f"(image and label share a centre), got {options['patch_size']} / {options['label_size']}")
    return options


def _triple(value, name: str, source: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        value = [value] * 3
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ConfigError(f"{source}: data.patches.{name}={value!r}: expected 3 positive integers")
    return tuple(value)


def load_subjects(name: str, subjects: Sequence[str], options: dict[str, Any], loader_options=None,
                  processor: VolumeImageProcessor | None = None) -> list[Subject]:
    """The subjects' processed volumes as arrays (cached per process), cropped to the ROI's bounding box + margin.

    processor: the model's processor (default: channels as stored, no geometry or intensity step)."""
    processor = processor or VolumeImageProcessor(channel_names=list(options["channels"]), orientation=None)
    if list(processor.channel_names) != list(options["channels"]):
        raise ConfigError(f"data.patches.channels {list(options['channels'])} differ from the processor's "
                          f"channel_names {processor.channel_names}")
    key = (name, tuple(options["channels"]), options["label"], options.get("mask"), processor.to_json_string())
    wanted = [s for s in subjects if (*key, s) not in _CACHE]
    if wanted:
        rows = subject_rows({"name": name, "options": loader_options}, "train", wanted)
        for subject, row in zip(wanted, rows):
            _CACHE[(*key, subject)] = _read(row, subject, options, processor)
    return [_CACHE[(*key, s)] for s in subjects]


def _read(row: dict, subject: str, options: dict[str, Any], processor: VolumeImageProcessor) -> Subject:
    volumes = subject_volumes(row, subject, options["channels"])
    mask = subject_volumes(row, subject, [options["mask"]])[options["mask"]] if options.get("mask") else None
    label = subject_volumes(row, subject, [options["label"]])[options["label"]] if options.get("label") in row else None
    processed = processor.preprocess_subject(volumes, mask=mask, labels=label)
    image = processed.pixel_values
    roi = processed.roi_mask if processed.roi_mask is not None else np.ones(image.shape[1:], bool)
    found = np.argwhere(roi)
    if found.size == 0:
        raise InputError(f"subject {subject}: the ROI mask {options.get('mask')!r} is empty")
    margin = int(options.get("crop_margin", 4))
    low = np.maximum(found.min(0) - margin, 0)
    high = np.minimum(found.max(0) + 1 + margin, roi.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    labels = processed.labels
    return Subject(subject, np.ascontiguousarray(image[(slice(None),) + box]),
                   None if labels is None else np.ascontiguousarray(labels[box]),
                   np.ascontiguousarray(roi[box]), box, tuple(roi.shape))


class VolumePatchDataset(torch.utils.data.Dataset):
    """`length` patches {"pixel_values": (C, *patch_size), "labels": (*label_size)} from whole volumes."""

    def __init__(self, subjects: list[Subject], length: int, options: dict[str, Any], seed: int, stream: int,
                 train: bool):
        if not subjects:
            raise InputError("VolumePatchDataset: no subjects")
        self.subjects, self.length, self.options = subjects, int(length), options
        self.seed, self.stream, self.train = int(seed), int(stream), train

    def __len__(self) -> int:
        return self.length

    @property
    def column_names(self) -> list[str]:  # what a row holds, as `datasets.Dataset` reports it
        return ["pixel_values", "labels"]

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.stream, int(index)])
        subject = self.subjects[index % len(self.subjects)]
        centres, _ = subject.sampler.sample(1, rng, float(self.options["fg_fraction"]))
        centre = centres[0]
        image = extract_patch(subject.image, centre, self.options["patch_size"], 0.0)
        label = extract_patch(subject.label, centre, self.options["label_size"], 0)
        if self.train:
            for axis in self.options["flip_axes"]:
                if rng.random() < 0.5:
                    image, label = np.flip(image, axis=1 + int(axis)), np.flip(label, axis=int(axis))
        return {"pixel_values": np.ascontiguousarray(image), "labels": np.ascontiguousarray(label)}


def load_patch_split(data: dict[str, Any], split: str, seed: int = 0, train: bool = False,
                     processor: VolumeImageProcessor | None = None) -> VolumePatchDataset:
    """The hook `training.data.load_split` calls for a recipe with `data.patches`."""
    options = patch_options(data)
    subjects = load_subjects(str(data.get("name") or data.get("path")), split_subjects(options["subjects"], split),
                             options, data.get("options"), processor)
    length = options["samples"] if train else options["eval_samples"]
    return VolumePatchDataset(subjects, length, options, seed, STREAMS["train" if train else "validation"], train)
