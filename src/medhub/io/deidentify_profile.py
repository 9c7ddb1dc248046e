"""PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes), Basic Profile column, as data.

Edition: DICOM 2026c (the current edition when this was written; Annex E changes slowly: 2024b to 2026c
added 35 rows, mostly new Patient module attributes such as Name to Use, Pronouns and Gender Identity,
and changed none). Each row is (tag, keyword, action) exactly as the table gives the Basic Profile action:

    X remove   Z empty (zero length)   D dummy value   U replace the UID
    compound actions ("X/Z", "Z/D", "X/D", "X/Z/D", "X/Z/U*") are resolved by `medhub.io.deidentify`.

The rows are data, in `deidentify_profile.tsv` beside this module (tag, keyword, action, source), read once.

Keywords are pydicom's data-dictionary keywords; for the 25 attributes pydicom 3.0's dictionary does not
know yet (e.g. (0010,0012) NameToUse) the keyword follows the standard's naming rule.

Rows the table gives as repeating groups are not tags and are applied by rule in `medhub.io.deidentify`:
(50xx,xxxx) Curve Data X, (60xx,3000) Overlay Data X, (60xx,4000) Overlay Comments X (medhub removes the
whole 50xx/60xx groups), and (gggg,eeee) with gggg odd, private attributes, X.

`MEDHUB_ADDITIONS` are rows of earlier editions that the current one no longer lists; medhub keeps
applying them (each only removes or replaces more).

Do not edit rows by hand without the table at hand: `tests/test_deidentify.py` sets every row on a real
DICOM file and checks that `deidentify` applies the action and `assert_deidentified` catches it.
"""

from __future__ import annotations

from importlib import resources

PROFILE_EDITION = "2026c"  # the DICOM edition whose Table E.1-1 the rows are
_SOURCE_CURRENT = f"E.1-1 {PROFILE_EDITION}"


def _rows() -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    current, earlier = [], []
    text = resources.files(__package__).joinpath("deidentify_profile.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        tag, keyword, action, source = line.split("\t")
        (current if source == _SOURCE_CURRENT else earlier).append((int(tag, 16), keyword, action))
    return current, earlier


_CURRENT, _EARLIER = _rows()
# (tag, keyword, Basic Profile action), sorted by tag.
BASIC_PROFILE_TABLE: tuple[tuple[int, str, str], ...] = tuple(_CURRENT)
# Rows of earlier editions (2019-2023) that 2026c no longer lists; kept (they only remove or replace more).
MEDHUB_ADDITIONS: tuple[tuple[int, str, str], ...] = tuple(_EARLIER)

__all__ = ["BASIC_PROFILE_TABLE", "MEDHUB_ADDITIONS", "PROFILE_EDITION"]
