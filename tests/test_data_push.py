"""Sharing a dataset safely (medhub.data.sharing): a push of DICOM that still identifies a patient is refused,
`deidentify_dataset` makes it pass, `allow_identifying_data=True` bypasses the check, and a de-identified
dataset pushed with the real `datasets` client through the test write endpoint reads back through olah."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pydicom
import pytest
from datasets import Dataset, DatasetDict, Features, List, Value
from pydicom.filewriter import dcmwrite

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402

from medhub.data.dicom_feature import DICOM_STRUCT, decode_dicom_columns, dicom_value  # noqa: E402
from medhub.data.sharing import (  # noqa: E402
    IdentifyingDataError,
    check_deidentified,
    deidentify_dataset,
    find_identifying_data,
    push_dataset,
)
from medhub.errors import InputError  # noqa: E402
from medhub.io.deidentify import find_identifying_attributes  # noqa: E402

NAME, PATIENT_ID, BIRTH_DATE = "Doe^Jane", "MRN-4711", "19700101"
REAL_NAME = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"  # named by its SOPInstanceUID
REAL_UID = REAL_NAME[:-4]


def write_identified(shared_data: Path, folder: Path) -> list[Path]:
    """The two real DICOM radiographs, copied into `folder` with a patient name, ID and birth date inserted."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, source in enumerate(sorted((shared_data / "chest-xray-samples").glob("*.dcm"))):
        ds = pydicom.dcmread(source)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, f"{PATIENT_ID}-{i}", BIRTH_DATE
        ds.save_as(folder / source.name)
        out.append(folder / source.name)
    assert len(out) == 2
    return out


@pytest.fixture
def identified_files(shared_data, tmp_path) -> list[Path]:
    return write_identified(shared_data, tmp_path / "raw")


def struct_dataset(files: list[Path]) -> Dataset:
    return Dataset.from_dict({"id": [f.stem for f in files], "dicom": [dicom_value(f) for f in files]},
                             features=Features({"id": Value("string"), "dicom": DICOM_STRUCT}))


def header(value: dict) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(value["bytes"]), stop_before_pixels=True)


def test_identifying_dicom_is_refused_naming_rows_files_and_attributes(identified_files):
    with pytest.raises(IdentifyingDataError) as err:
        check_deidentified(struct_dataset(identified_files))
    message = str(err.value)
    assert isinstance(err.value, InputError)
    for i, path in enumerate(identified_files):
        assert f"dicom[row {i}] {path}" in message
    for attribute in ("PatientName", "PatientID", "PatientBirthDate", "PatientIdentityRemoved"):
        assert attribute in message
    assert "medhub.io.deidentify" in message and "allow_identifying_data=True" in message
    assert [(f.column, f.row) for f in err.value.findings] == [("dicom", 0), ("dicom", 1)]


def test_string_path_columns_and_splits_are_scanned(identified_files):
    paths = Dataset.from_dict({"file": [str(f) for f in identified_files], "note": ["a", "b"]})
    findings = find_identifying_data(DatasetDict({"train": paths, "test": struct_dataset(identified_files[:1])}))
    assert [(f.split, f.column, f.row, f.source) for f in findings] == [
        ("train", "file", 0, str(identified_files[0])), ("train", "file", 1, str(identified_files[1])),
        ("test", "dicom", 0, str(identified_files[0]))]
    assert any("PatientName" in a for a in findings[0].attributes)
    assert find_identifying_data(Dataset.from_dict({"note": ["no dicom here", "x.png"]})) == []


def test_deidentify_dataset_passes_the_check_with_consistent_uids(identified_files):
    original = struct_dataset(identified_files)
    uid_map: dict[str, str] = {}
    clean = deidentify_dataset(original, salt="test-salt", uid_map=uid_map)
    check_deidentified(clean)  # no error
    assert original[0]["dicom"]["bytes"] is None  # the input is unchanged
    a, b = header(clean[0]["dicom"]), header(clean[1]["dicom"])
    assert find_identifying_attributes(a) == [] and str(a.PatientName) == "" == a.get("PatientBirthDate", "")
    source = pydicom.dcmread(identified_files[0], stop_before_pixels=True)
    assert a.StudyInstanceUID == b.StudyInstanceUID == uid_map[source.StudyInstanceUID] != source.StudyInstanceUID
    assert clean[0]["dicom"]["path"] == f"{a.SOPInstanceUID}.dcm"  # the original name was the original UID
    decoded = decode_dicom_columns(clean, ["dicom"])[0]["dicom"]  # pixels kept and readable
    assert decoded.pixels.shape == (source.Rows, source.Columns)
    # same salt and uid map -> the same UIDs again (re-linkable), a string path column becomes DICOM bytes
    again = deidentify_dataset(Dataset.from_dict({"file": [str(identified_files[0])]}), salt="test-salt",
                               uid_map=uid_map)
    assert again.features["file"] == DICOM_STRUCT and header(again[0]["file"]).SOPInstanceUID == a.SOPInstanceUID


def doe_john(shared_data: Path, *, preamble: bool = True) -> bytes:
    """The real radiograph's bytes with PatientName = Doe^John (a bare data set, no preamble, if not preamble)."""
    ds = pydicom.dcmread(shared_data / "chest-xray-samples" / REAL_NAME)
    ds.PatientName = "Doe^John"
    out = io.BytesIO()
    if preamble:
        ds.save_as(out, enforce_file_format=True)
    else:
        bare = pydicom.Dataset(ds)  # no file meta, no preamble: the data set alone
        bare.is_little_endian, bare.is_implicit_VR = True, False
        dcmwrite(out, bare, enforce_file_format=False)
    return out.getvalue()


def layouts(data: bytes, bare: bytes) -> dict[str, Dataset]:
    """DICOM bytes in every kind of column the push check must read."""
    struct = {"path": "x.dcm", "bytes": data}
    return {
        "binary": Dataset.from_dict({"scan": [data]}, features=Features({"scan": Value("binary")})),
        "large_binary": Dataset.from_dict({"scan": [data]}, features=Features({"scan": Value("large_binary")})),
        "bare-data-set-bytes": Dataset.from_dict({"scan": [bare]}, features=Features({"scan": Value("binary")})),
        "reordered-struct": Dataset.from_dict(
            {"scan": [{"bytes": data, "path": "x.dcm"}]},
            features=Features({"scan": {"bytes": Value("binary"), "path": Value("string")}})),
        "struct-with-more-fields": Dataset.from_dict(
            {"scan": [{"label": 1, "bytes": data, "path": "x.dcm"}]},
            features=Features({"scan": {"label": Value("int64"), "bytes": Value("binary"), "path": Value("string")}})),
        "list-of-structs": Dataset.from_dict({"scan": [[{"path": "a.dcm", "bytes": b"not dicom"}, struct]]},
                                             features=Features({"scan": List(DICOM_STRUCT)})),
        "struct-of-list-of-bytes": Dataset.from_dict(
            {"scan": [{"views": [b"\x89PNG", data]}]},
            features=Features({"scan": {"views": List(Value("binary"))}})),
    }


WHERE = {"binary": "scan", "large_binary": "scan", "bare-data-set-bytes": "scan", "reordered-struct": "scan",
         "struct-with-more-fields": "scan", "list-of-structs": "scan[1]", "struct-of-list-of-bytes": "scan.views[1]"}


@pytest.mark.parametrize("layout", sorted(WHERE))
def test_every_column_that_parses_as_dicom_is_checked(shared_data, layout):
    dataset = layouts(doe_john(shared_data), doe_john(shared_data, preamble=False))[layout]
    with pytest.raises(IdentifyingDataError) as err:
        check_deidentified(dataset)
    assert [(f.column, f.row) for f in err.value.findings] == [(WHERE[layout], 0)]
    assert any("PatientName" in a for a in err.value.findings[0].attributes)
    with pytest.raises(IdentifyingDataError, match="PatientName"):
        push_dataset(dataset, "alice/never")  # refused before anything is sent (no endpoint needed)
    clean = deidentify_dataset(dataset, salt="layout")  # every layout can be de-identified in place
    assert clean.features == dataset.features
    check_deidentified(clean)


def loaded_real_file(shared_data: Path, folder: Path, extra: dict | None = None) -> Dataset:
    """`medhub.data.load` of a folder holding the real DICOM under its original name (id = the file stem)."""
    from medhub.data import load

    folder.mkdir(parents=True, exist_ok=True)
    (folder / REAL_NAME).write_bytes((shared_data / "chest-xray-samples" / REAL_NAME).read_bytes())
    dataset = load(folder, split="train", decode=False)
    assert dataset["id"] == [REAL_UID]  # the loader's id is the stem: the original SOPInstanceUID
    for name, values in (extra or {}).items():
        dataset = dataset.add_column(name, values)
    return dataset


def all_strings(dataset: Dataset) -> list[str]:
    from medhub.data.dicom_values import strings_in

    return [text for row in dataset.with_format(None) for value in row.values() for text in strings_in(value)]


def test_original_uid_stem_in_an_id_column_is_refused(shared_data, tmp_path):
    """The issue's case: clean headers, but the loader's id (and the file name) still the original SOPInstanceUID."""
    clean = deidentify_dataset(loaded_real_file(shared_data, tmp_path / "export"), salt="stem")
    check_deidentified(clean)
    stale = clean.map(lambda row: {"id": REAL_UID, "dicom": {"path": REAL_NAME, "bytes": row["dicom"]["bytes"]}},
                      features=clean.features)
    with pytest.raises(IdentifyingDataError) as err:
        check_deidentified(stale)
    assert {(f.column, f.source) for f in err.value.findings} == {("id", REAL_UID), ("dicom", REAL_NAME)}
    assert "a DICOM UID that none of the files holds" in str(err.value)


def test_deidentify_dataset_remaps_ids_names_folders_and_uids(shared_data, tmp_path):
    source = pydicom.dcmread(shared_data / "chest-xray-samples" / REAL_NAME, stop_before_pixels=True)
    folder = tmp_path / "PAT00123"  # a folder named after the patient
    raw = loaded_real_file(shared_data, folder, {
        "file": [REAL_NAME], "patient_folder": ["PAT00123"], "patient_id": [str(source.PatientID)],
        "study": [str(source.StudyInstanceUID)], "note": [f"mask of {REAL_UID} (site A)"], "split": ["train"]})
    uid_map: dict[str, str] = {}
    clean = deidentify_dataset(raw, salt="ids", uid_map=uid_map)
    row = clean.with_format(None)[0]
    new_uid = header(row["dicom"]).SOPInstanceUID
    assert row["id"] == new_uid == uid_map[REAL_UID] and row["dicom"]["path"] == f"{new_uid}.dcm"
    assert row["file"] == f"{new_uid}.dcm" and row["study"] == uid_map[str(source.StudyInstanceUID)]
    assert row["patient_folder"] == uid_map["PAT00123"] and row["patient_folder"].startswith("anon-")
    assert row["patient_id"] == uid_map[str(source.PatientID)] and row["patient_id"].startswith("anon-")
    assert row["note"] == f"mask of {new_uid} (site A)"
    assert row["split"] == "train"  # not derived from the file: unchanged
    for text in all_strings(clean):
        assert REAL_UID not in text and "PAT00123" not in text and str(source.PatientID) not in text
    check_deidentified(clean)
    again = deidentify_dataset(raw, salt="ids", uid_map=uid_map)  # consistent: the same pseudonyms and UIDs
    assert again.with_format(None)[0]["patient_folder"] == row["patient_folder"] and again[0]["id"] == row["id"]


def test_allow_identifying_data_must_be_an_explicit_bool(identified_files):
    with pytest.raises(InputError, match="allow_identifying_data='yes'"):
        push_dataset(struct_dataset(identified_files), "alice/never", allow_identifying_data="yes")


CITATION = "@inproceedings{wang2017chestx, title={ChestX-ray8}, author={Wang, Xiaosong and others}, year={2017}}"


@pytest.fixture(scope="module")
def pushed(write_endpoint, olah_server, shared_data, tmp_path_factory):
    """One client process: a refused push, a bypassed push, a de-identified push (with and without card
    information) and their read-back, the cards through olah."""
    tmp = tmp_path_factory.mktemp("data-push")
    raw = [str(p) for p in write_identified(shared_data, tmp / "raw")]
    clean = deidentify_dataset(struct_dataset([Path(p) for p in raw]), salt="push-salt")
    clean.save_to_disk(str(tmp / "clean"))
    export = tmp / "export"  # the real file under its original name, loaded by medhub.data.load (id = stem)
    export.mkdir()
    (export / REAL_NAME).write_bytes((shared_data / "chest-xray-samples" / REAL_NAME).read_bytes())
    for layout, dataset in layouts(doe_john(shared_data), doe_john(shared_data, preamble=False)).items():
        dataset.save_to_disk(str(tmp / "layouts" / layout))
    script = f"""
from datasets import Dataset, Features, Value, load_dataset, load_from_disk
from medhub.data.dicom_feature import DICOM_STRUCT, dicom_value
from medhub.data import sharing
from medhub.io.deidentify import find_identifying_attributes
import io, pydicom
RAW = {raw!r}
raw = Dataset.from_dict({{"id": ["a", "b"], "dicom": [dicom_value(p) for p in RAW]}},
                        features=Features({{"id": Value("string"), "dicom": DICOM_STRUCT}}))
clean = load_from_disk({str(tmp / "clean")!r})
case("refused")(lambda: sharing.push_dataset(raw, "alice/refused").oid)
case("bypass")(lambda: sharing.push_dataset(raw, "alice/raw", allow_identifying_data=True).oid)
case("clean")(lambda: sharing.push_dataset(clean, "alice/clean", private=True, commit_message="Add chest X-rays").oid)

def read(repo):
    back = load_dataset(repo, split="train")
    headers = [pydicom.dcmread(io.BytesIO(v["bytes"]), stop_before_pixels=True) for v in back["dicom"]]
    return {{"n": len(back), "paths": [v["path"] for v in back["dicom"]],
            "same_bytes": [b["dicom"]["bytes"] == c["dicom"]["bytes"] for b, c in zip(back, clean)],
            "identifying": [find_identifying_attributes(h) for h in headers],
            "names": [str(h.get("PatientName", "")) for h in headers]}}
case("read_clean")(lambda: read("alice/clean"))
case("read_raw")(lambda: read("alice/raw"))
for layout in {sorted(WHERE)!r}:
    case("layout:" + layout)(lambda layout=layout: sharing.push_dataset(
        load_from_disk({str(tmp / "layouts")!r} + "/" + layout), "alice/layout-" + layout).oid)
import medhub.data
loaded = sharing.deidentify_dataset(medhub.data.load({str(export)!r}, split="train", decode=False))
case("loaded")(lambda: sharing.push_dataset(loaded, "alice/loaded").oid)

def read_loaded():
    back = load_dataset("alice/loaded", split="train")
    return {{"ids": list(back["id"]), "paths": [v["path"] for v in back["dicom"]],
            "uid_in_bytes": [{REAL_UID.encode()!r} in v["bytes"] for v in back["dicom"]],
            "sop": [str(pydicom.dcmread(io.BytesIO(v["bytes"])).SOPInstanceUID) for v in back["dicom"]]}}
case("read_loaded")(read_loaded)

from datasets import DatasetDict
from huggingface_hub import hf_hub_download
from medhub.data import DatasetCardInfo
INFO = DatasetCardInfo(license="cc-by-4.0", task_categories=("image-classification",), pretty_name="Two radiographs",
                       source="Two DICOM chest radiographs from the SIIM sample set, names and IDs inserted, then "
                              "de-identified with medhub", citation={CITATION!r}, tags=("chest-x-ray",))
split = DatasetDict({{"train": clean.select([0]), "validation": clean.select([1])}})
case("carded")(lambda: sharing.push_dataset(split, "alice/carded", card=INFO).oid)
def card(repo):
    return open(hf_hub_download(repo, "README.md", repo_type="dataset", endpoint={olah_server.url!r})).read()
case("cards")(lambda: {{repo: card(repo) for repo in ("alice/carded", "alice/clean", "alice/raw")}})
case("read_carded")(lambda: {{k: len(v) for k, v in load_dataset("alice/carded").items()}})
case("bad_info")(lambda: DatasetCardInfo(license="other", task_categories=("image-classification",), source="x"))
"""
    results = run_client(script, endpoint=write_endpoint.url, hf_home=tmp / "hf",
                         extra_env={"HF_HUB_DISABLE_XET": "1"})  # the test endpoint takes LFS, not Xet
    return results, raw


def outcome(results, name):
    assert "ok" in results[name], f"{name}: {results[name]}"
    return results[name]["ok"]


def test_push_of_identifying_data_is_refused_before_any_upload(pushed, write_endpoint):
    results, raw = pushed
    refused = results["refused"]
    assert refused["error"] == "IdentifyingDataError" and "InputError" in refused["mro"]
    assert raw[0] in refused["message"] and "PatientName" in refused["message"]
    assert not any("alice/refused" in call for call in write_endpoint.requests_seen)
    assert not write_endpoint.repo_dir("alice/refused", "dataset").exists()


def test_deidentified_dataset_pushes_and_reads_back_through_olah(pushed, write_endpoint):
    results, _ = pushed
    oid = outcome(results, "clean")
    back = outcome(results, "read_clean")
    assert back["n"] == 2 and back["same_bytes"] == [True, True]  # the de-identified bytes, bit-identical
    assert back["identifying"] == [[], []] and back["names"] == ["", ""]
    repo = write_endpoint.repo_dir("alice/clean", "dataset")
    assert (repo / "HEAD").is_file()
    assert "POST /api/datasets/alice/clean/commit/main" in write_endpoint.requests_seen
    assert any(call.startswith("PUT /lfs-upload/") for call in write_endpoint.requests_seen)  # parquet via LFS
    assert oid and not any("WITHOUT" in line for line in results["clean"]["log"])


@pytest.mark.parametrize("layout", sorted(WHERE))
def test_push_of_dicom_in_any_column_layout_is_refused(pushed, write_endpoint, layout):
    results, _ = pushed
    refused = results[f"layout:{layout}"]
    assert refused["error"] == "IdentifyingDataError" and "PatientName" in refused["message"], refused
    assert not write_endpoint.repo_dir(f"alice/layout-{layout}", "dataset").exists()


def test_push_never_uploads_the_original_sop_instance_uid_stem(pushed):
    """medhub.data.load names the real file's row by its stem (the original SOPInstanceUID); after
    deidentify_dataset the pushed ids, file names and bytes hold only the new UID."""
    results, _ = pushed
    assert outcome(results, "loaded")
    back = outcome(results, "read_loaded")
    assert back["ids"] == back["sop"] and back["paths"] == [f"{back['sop'][0]}.dcm"]
    assert REAL_UID not in back["ids"][0] and back["sop"][0].startswith("2.25.")
    assert back["uid_in_bytes"] == [False]


def test_allow_identifying_data_bypasses_the_check_with_a_warning(pushed):
    results, raw = pushed
    assert outcome(results, "bypass")
    assert any("WITHOUT the de-identification check" in line for line in results["bypass"]["log"])
    back = outcome(results, "read_raw")
    # path-only values were embedded (bytes travel, the path is cut to the file name), identifying data included
    assert back["paths"] == [Path(p).name for p in raw]
    assert back["names"] == [NAME, NAME] and all(back["identifying"])


def test_dataset_card_states_licence_provenance_deidentification_splits_and_citation(pushed):
    """The card `push_dataset` writes, read back through olah and parsed with huggingface_hub's DatasetCard."""
    from huggingface_hub import DatasetCard

    from medhub.io.deidentify import DEIDENTIFICATION_METHOD

    results, _ = pushed
    assert outcome(results, "carded")
    card = DatasetCard(outcome(results, "cards")["alice/carded"])
    data = card.data
    assert data.license == "cc-by-4.0" and data.task_categories == ["image-classification"]
    assert data.size_categories == ["n<1K"] and data.pretty_name == "Two radiographs"
    assert {"medical", "dicom", "chest-x-ray"} <= set(data.tags)
    assert {s["name"]: s["num_examples"] for s in data.dataset_info["splits"]} == {"train": 1, "validation": 1}
    assert data.configs  # what datasets.push_to_hub wrote is kept: the splits still load
    assert outcome(results, "read_carded") == {"train": 1, "validation": 1}
    text = card.text
    assert "SIIM sample set" in text and CITATION in text and "```bibtex" in text
    assert "each of the 2 DICOM file(s)" in text and f'"{DEIDENTIFICATION_METHOD}" in 2 file(s)' in text
    assert "PatientIdentityRemoved = YES" in text
    assert "Table E.1-1 of edition 2026c" in text and "attributes removed" in text
    assert "Pixel data are not cleaned" in text
    assert "| `dicom` | DICOM file (`path`, `bytes`) |" in text and "| validation | 1 |" in text


def test_dataset_card_without_information_or_check_says_so(pushed):
    from huggingface_hub import DatasetCard

    results, _ = pushed
    cards = outcome(results, "cards")
    plain = DatasetCard(cards["alice/clean"])
    assert plain.data.license == "unknown" and "medical" in plain.data.tags
    assert "not stated by the uploader" in plain.text and "none holds an attribute" in plain.text
    raw = DatasetCard(cards["alice/raw"])
    assert "**Not checked.**" in raw.text and "allow_identifying_data=True" in raw.text
    bad = results["bad_info"]
    assert bad["error"] == "InputError" and "license_name and license_link" in bad["message"]
