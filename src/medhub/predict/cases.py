"""Which cases a `medhub predict` call holds: files, comma-joined channel files, folders searched recursively.

A 2D model takes every PNG/JPEG/DICOM file of a folder; a single-channel 3D model every NIfTI file and every DICOM
series folder; a model with several input channels (`config.channel_names`, e.g. ["flair", "t1c"]) one subject per
folder - the file whose name contains each channel name, case-insensitive (Flair_subtrMeanDivStd.nii.gz is
"flair") - plus, when the processor names a ROI mask (`mask_name`, e.g. "brainmask"), the file of that name if
present; a folder of DICOM series one case per study, its series matched to the channels by SeriesDescription
(`dicom_study`); or the channel files (or series folders) joined by commas, in the order of `channel_names`
(then the processor's mask fallback applies). The output folder is never searched, nor any sub-folder holding a
medhub manifest (another run's output folder), nor (when the output folder is the input folder itself) the
outputs its manifest lists; a folder without any input is an error naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.nifti import is_nifti_name
from .dicom_study import match_studies
from .inference import channel_names, input_processor
from .manifest import MANIFEST_NAME

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")


@dataclass
class Case:
    """One prediction: `name` as the user named it (CSV key), the channel `paths`, the ROI `mask` file (or
    None), the output `stem`."""

    name: str
    paths: list[Path]
    stem: str = ""
    error: str | None = None  # an input that could not even be assembled (reported like a failed prediction)
    mask: Path | None = None


def _stem(path: Path) -> str:
    name = path.name
    return name[:-7] if name.lower().endswith(".nii.gz") else (path.stem if path.is_file() else name)


def match_channel_files(folder: Path, names: Sequence[str], others: Sequence[str] = ()) -> list[Path] | None:
    """Files of `folder` whose names contain each channel name (a longer name, also among `others`, that also
    matches wins)."""
    files = [f for f in sorted(folder.iterdir()) if not f.name.startswith(".") and (f.is_file() or f.is_dir())]
    chosen = []
    for name in names:
        longer = [o.lower() for o in (*names, *others) if o != name and name.lower() in o.lower()]
        hits = [f for f in files if name.lower() in f.name.lower() and not any(o in f.name.lower() for o in longer)]
        if len(hits) != 1:
            return None
        chosen.append(hits[0])
    return chosen if len(set(chosen)) == len(chosen) else None


def _walk(root: Path, skip: Path | None, exclude: frozenset[Path] = frozenset()
          ) -> list[tuple[Path, list[Path], list[Path]]]:
    """os.walk without hidden entries, the output folder `skip` (when inside `root`), the output folders of other
    runs (they hold a medhub manifest) and the files `exclude` (outputs of earlier runs, for an output folder that
    is the input folder itself)."""
    result = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(folder, d) / MANIFEST_NAME).is_file()
                         and (skip is None or Path(folder, d).resolve() != skip))
        kept = [Path(folder, f) for f in sorted(files) if not f.startswith(".")]
        result.append((Path(folder), [Path(folder, d) for d in dirs],
                       [f for f in kept if not exclude or f.resolve() not in exclude]))
    return result


def collect_cases(model, inputs: Sequence[str | Path], out_dir: str | Path | None = None,
                  exclude: Iterable[Path] = ()) -> list[Case]:
    """Expand files, comma-joined channel files and folders into cases (see the module docstring); `exclude`:
    files never taken from a folder (the outputs an earlier run recorded)."""
    exclude = frozenset(Path(p).resolve() for p in exclude)
    dims, names, n_channels = model.spatial_dims, channel_names(model), model.config.in_channels
    mask_name = getattr(input_processor(model), "mask_name", None)
    skip = Path(out_dir).resolve() if out_dir is not None else None
    cases: list[Case] = []
    for item in inputs:
        item = str(item)
        if "," in item:
            cases.append(Case(item, [Path(p) for p in item.split(",") if p]))
            continue
        path = Path(item)
        if not path.exists():
            cases.append(Case(item, [path], error=f"{path}: no such file or folder"))
        elif path.is_file():
            cases.append(Case(item, [path]))
        elif dims == 3 and n_channels > 1:
            studies = [Case(name, paths, error=error) for name, paths, error in match_studies(path, names, skip)]
            cases.extend(studies or _subject_cases(path, names, n_channels, skip, mask_name))
        elif dims == 3:
            cases.extend(_volume_cases(path, skip, exclude))
        else:
            found = [Case(str(f), [f]) for _, _, files in _walk(path, skip, exclude) for f in files
                     if f.suffix.lower() in IMAGE_SUFFIXES]
            cases.extend(found or [Case(item, [path], error=f"{path}: no PNG/JPEG/DICOM image in this folder "
                                        f"(searched recursively{', leaving out the output folder' if skip else ''})")])
    _assign_stems(cases)
    return cases


def _subject_cases(root: Path, names: list[str], n_channels: int, skip: Path | None,
                   mask_name: str | None) -> list[Case]:
    if len(names) != n_channels:
        return [Case(str(root), [root], error=f"{root}: the model expects {n_channels} channels but names none "
                     "(config.channel_names), so a folder cannot be matched; join the channel files with commas")]
    others = [mask_name] if mask_name else []
    found = [Case(str(folder), matched, mask=_mask_file(folder, mask_name, names))
             for folder, _, _ in _walk(root, skip)
             if (matched := match_channel_files(folder, names, others)) is not None]
    if not found:
        return [Case(str(root), [root], error=f"{root}: no subject folder with one file per channel {names} (a file "
                     "whose name contains the channel name, case-insensitive)")]
    return found


def _mask_file(folder: Path, mask_name: str | None, names: Sequence[str]) -> Path | None:
    """The subject folder's ROI mask file (its name contains `mask_name`), when there is exactly one."""
    found = match_channel_files(folder, [mask_name], names) if mask_name else None
    return found[0] if found else None


def _volume_cases(root: Path, skip: Path | None, exclude: frozenset[Path]) -> list[Case]:
    cases = []
    for folder, dirs, files in _walk(root, skip, exclude):
        cases.extend(Case(str(f), [f]) for f in files if is_nifti_name(f))
        if not dirs and any(f.suffix.lower() in (".dcm", ".dicom") for f in files):
            cases.append(Case(str(folder), [folder]))  # a DICOM series
    return cases or [Case(str(root), [root], error=f"{root}: no NIfTI file or DICOM series folder in it")]


def _assign_stems(cases: list[Case]) -> None:
    """Output stems: the file (or subject folder) name; clashes get their parent folders' names prefixed."""
    for case in cases:
        first = case.paths[0]
        case.stem = first.parent.name if len(case.paths) > 1 and len({p.parent for p in case.paths}) == 1 \
            and first.parent.name else _stem(first)
    for level in range(1, 4):
        stems = [c.stem for c in cases]
        clashing = [c for c in cases if stems.count(c.stem) > 1]
        if not clashing:
            return
        for case in clashing:
            parents = [p.name for p in case.paths[0].parents][len(case.paths) > 1:][:level]
            case.stem = "_".join([*reversed([p for p in parents if p]), _stem(case.paths[0])])
    seen: dict[str, int] = {}
    for case in cases:
        seen[case.stem] = seen.get(case.stem, 0) + 1
        if seen[case.stem] > 1:
            case.stem = f"{case.stem}-{seen[case.stem]}"


__all__ = ["Case", "IMAGE_SUFFIXES", "collect_cases", "match_channel_files"]
