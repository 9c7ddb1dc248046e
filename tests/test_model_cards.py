"""The architecture cards in model_cards/ are generated (`medhub cards`) and must stay in sync with the code."""

from pathlib import Path

import yaml

from medhub.model_card import reference_configs, write_reference_cards

REPO = Path(__file__).resolve().parents[1]


def test_committed_cards_match_generation(tmp_path):
    written = write_reference_cards(tmp_path)
    assert {p.name for p in written} == {f"{name}.md" for name in reference_configs()}
    for path in written:
        committed = REPO / "model_cards" / path.name
        assert committed.is_file(), f"{committed} missing: run `medhub cards`"
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run `medhub cards`"


def test_cards_carry_hub_metadata_and_paper_numbers():
    text = (REPO / "model_cards" / "unet.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["library_name"] == "medhub" and "medical-imaging" in header["tags"]
    assert "31,030,658 parameters" in text  # the paper configuration (572 -> 388, 2 classes)
    assert "2,008,901 parameters" in (REPO / "model_cards" / "deepmedic.md").read_text()  # the released config
    assert "Ronneberger" in text and "Not a medical device" in text
