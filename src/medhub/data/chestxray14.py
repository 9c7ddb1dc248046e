"""NIH ChestX-ray14 (Wang et al. 2017), the CheXNet dataset, from its published files.

Expected in the dataset folder: `Data_Entry_2017.csv`, the images in `images*/` folders (the NIH
`images_001/images/*.png` archives unpacked, or one `images/` folder), and the official patient-wise
split lists `train_val_list.txt` and `test_list.txt`. Splits: "train" (train_val_list) and "test"
(test_list); `val_fraction=f` carves a patient-wise "validation" split out of "train" (`patient_split`,
`seed`), as CheXNet did, so that no patient is in two splits.

Columns: image (`Image`), image_index, labels (multi-hot int8 list in `LABELS` order; "No Finding" is all
zeros), finding_labels (the CSV's pipe-separated text), follow_up, patient_id, patient_age, patient_gender,
view_position, original_width, original_height, pixel_spacing_x, pixel_spacing_y. Rows keep the CSV's order.
A row naming a missing image or an unknown finding is an InputError naming it (lenient: skipped and counted).
"""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

from datasets import Features, Image, List, Value

from ..errors import InputError
from ._table import SkipReport, as_streaming, to_dataset
from .splits import patient_split

# The published label order (CheXNet, torchxrayvision, the NIH README).
LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
          "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
NO_FINDING = "No Finding"
CSV_NAME = "Data_Entry_2017.csv"
SPLIT_LISTS = {"train": "train_val_list.txt", "test": "test_list.txt"}
# The CSV's header, as published (its bracketed column pairs split on the comma inside the brackets).
COLUMNS = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
           "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]")

FEATURES = Features({
    "image": Image(),
    "image_index": Value("string"),
    "labels": List(Value("int8"), length=len(LABELS)),
    "finding_labels": Value("string"),
    "follow_up": Value("int32"),
    "patient_id": Value("int64"),
    "patient_age": Value("int32"),
    "patient_gender": Value("string"),
    "view_position": Value("string"),
    "original_width": Value("int32"),
    "original_height": Value("int32"),
    "pixel_spacing_x": Value("float32"),
    "pixel_spacing_y": Value("float32"),
})


def multi_hot(findings: str) -> list[int] | None:
    """[0/1] * 14 in LABELS order for "Effusion|Mass"; None when a finding is not one of LABELS."""
    names = [n.strip() for n in findings.split("|") if n.strip()]
    if names == [NO_FINDING]:
        return [0] * len(LABELS)
    if not names or any(n not in LABELS for n in names):
        return None
    return [int(label in names) for label in LABELS]


def read_entries(folder: Path) -> list[tuple[int, dict[str, str]]]:
    """(CSV line number, row) for every row of Data_Entry_2017.csv, its header checked."""
    path = folder / CSV_NAME
    if not path.is_file():
        raise InputError(f"{path}: not found; expected the ChestX-ray14 metadata CSV in {folder}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {missing}; expected the published header {list(COLUMNS)}")
        return [(line, row) for line, row in enumerate(reader, start=2)]


def index_images(folder: Path) -> dict[str, Path]:
    """Image file name -> path, over every `images*/` folder (nested `images_001/images/` included)."""
    found = {}
    for sub in sorted(folder.glob("images*")):
        if sub.is_dir():
            for path in sub.rglob("*.png"):
                found.setdefault(path.name, path)
    return found


def read_list(folder: Path, split: str) -> list[str]:
    path = folder / SPLIT_LISTS[split]
    if not path.is_file():
        raise InputError(f"{path}: not found; expected the official patient-wise split list for {split!r}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def build_rows(folder: Path, names: set[str], report: SkipReport) -> list[dict]:
    images = index_images(folder)
    rows, seen = [], set()
    for line, entry in read_entries(folder):
        name = entry["Image Index"].strip()
        if name not in names:
            continue
        seen.add(name)
        where = f"{folder / CSV_NAME} line {line} ({name})"
        labels = multi_hot(entry["Finding Labels"])
        if labels is None:
            report.problem(f"{where}: Finding Labels {entry['Finding Labels']!r}; expected {NO_FINDING!r} or "
                           f"'|'-separated names from {list(LABELS)}")
            continue
        if name not in images:
            report.problem(f"{where}: image file {name} not found in the images*/ folders of {folder}")
            continue
        try:
            rows.append({
                "image": str(images[name]), "image_index": name, "labels": labels,
                "finding_labels": entry["Finding Labels"], "follow_up": int(entry["Follow-up #"]),
                "patient_id": int(entry["Patient ID"]), "patient_age": int(entry["Patient Age"].rstrip("YMD")),
                "patient_gender": entry["Patient Gender"], "view_position": entry["View Position"],
                "original_width": int(entry["OriginalImage[Width"]), "original_height": int(entry["Height]"]),
                "pixel_spacing_x": float(entry["OriginalImagePixelSpacing[x"]),
                "pixel_spacing_y": float(entry["y]"]),
            })
        except ValueError as err:
            report.problem(f"{where}: unreadable value ({err})")
    for name in sorted(names - seen):
        report.problem(f"{folder / CSV_NAME}: {name} is in a split list but has no CSV row")
    return rows


def chestxray14_splits(folder: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None,
                       val_fraction: float = 0.0, seed: int = 0):
    what = "NIH ChestX-ray14 {split} (official patient-wise split lists), 14 multi-hot labels"

    def build(split: str):
        report = SkipReport(str(folder), lenient)
        rows = build_rows(folder, set(read_list(folder, split)), report)
        return to_dataset(rows, FEATURES, split=split, streaming=False, report=report, what=what.format(split=split))

    def carve(part: str):


        parts = patient_split(build("train"), "patient_id",
                              fractions={"train": 1 - val_fraction, "validation": val_fraction}, seed=seed)
        return parts[part]

    def finish(make):
        dataset = make()
        return as_streaming(dataset, num_shards) if streaming else dataset

    if not 0 <= val_fraction < 1:
        raise InputError(f"chestxray14: val_fraction={val_fraction}; expected 0 <= val_fraction < 1")
    if val_fraction:
        return {"train": partial(finish, partial(carve, "train")),
                "validation": partial(finish, partial(carve, "validation")),
                "test": partial(finish, partial(build, "test"))}
    return {"train": partial(finish, partial(build, "train")), "test": partial(finish, partial(build, "test"))}


__all__ = ["COLUMNS", "FEATURES", "LABELS", "chestxray14_splits", "multi_hot"]
