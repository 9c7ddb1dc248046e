"""Multi-channel cases from DICOM studies: the series of each study matched to the model's channels.

A folder given to a multi-channel 3D model (FLAIR + T1c) that holds DICOM series (folders of .dcm/.dicom files,
at any depth) makes one case per StudyInstanceUID: for each channel name, the one series whose SeriesDescription
contains it, compared without case, spaces or punctuation ("AX FLAIR" is flair, "T1 +C" and "T1CE" are t1c) or
one of its usual spellings (`SPELLINGS`: t1c is also "T1 post" and "T1 Gd"). No or several matching series make
a case that fails with the descriptions found, so the user can pass the series explicitly, joined by commas in
the model's channel order. Folders without DICOM series are left to the file-name matching of `cases`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

from ..errors import InputError
from ..io.dicom import read_dataset

DICOM_SUFFIXES = (".dcm", ".dicom")
SPELLINGS = {"t1c": ("t1c", "t1post", "t1gd", "t1contrast"), "t1ce": ("t1ce", "t1c", "t1post", "t1gd")}


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _series_folders(root: Path, skip: Path | None) -> list[Path]:
    folders = {f.parent for f in sorted(root.rglob("*")) if f.suffix.lower() in DICOM_SUFFIXES and f.is_file()
               and not any(part.startswith(".") for part in f.relative_to(root).parts)}
    if skip is not None:
        folders = {f for f in folders if f.resolve() != skip and skip not in f.resolve().parents}
    return sorted(folders)


def _describe(folder: Path) -> tuple[str, str]:
    """(StudyInstanceUID, SeriesDescription) of the series in `folder`, from its first file's header."""
    first = next(f for f in sorted(folder.iterdir()) if f.suffix.lower() in DICOM_SUFFIXES)
    ds = read_dataset(first, stop_before_pixels=True)
    return str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesDescription", ""))


def match_studies(root: Path, names: list[str], skip: Path | None = None) -> list[tuple[str, list[Path], str | None]]:
    """(case name, channel series folders, error or None) per DICOM study under `root` (see the module
    docstring); [] when `root` holds no DICOM series."""
    folders = _series_folders(root, skip)
    if not folders or not names:
        return []
    studies: dict[str, list[tuple[Path, str]]] = defaultdict(list)
    cases: list[tuple[str, list[Path], str | None]] = []
    for folder in folders:
        try:
            study, description = _describe(folder)
        except InputError as err:  # reported as a failed case; the other studies still run
            cases.append((str(folder), [folder], str(err)))
            continue
        studies[study].append((folder, description))
    for study, series in studies.items():
        where = os.path.commonpath([folder.parent for folder, _ in series])  # the study's folder
        chosen, problems = [], []
        for name in names:
            spellings = SPELLINGS.get(_key(name), (_key(name),))
            hits = [folder for folder, description in series if any(s in _key(description) for s in spellings)]
            if len(hits) == 1:
                chosen.append(hits[0])
            else:
                problems.append(f"{'no' if not hits else len(hits)} series for channel {name!r}")
        if len(set(chosen)) != len(chosen):
            problems.append("one series matches several channels")
        if problems:
            found = "; ".join(f"{folder.relative_to(where)}: {description!r}" for folder, description in series)
            cases.append((where, [Path(where)], f"{where}: {', '.join(problems)} (SeriesDescription, "
                          f"case-insensitive); found {found}. Pass the series joined by commas in the order {names}"))
        else:
            cases.append((where, chosen, None))
    return cases


__all__ = ["SPELLINGS", "match_studies"]
