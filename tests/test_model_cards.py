"""The architecture cards in model_cards/ are generated (`python -m tools.write_model_cards`) and must stay in sync
with the code: one per registered family."""

from pathlib import Path

import yaml

from medhub.registry import MODEL_REGISTRY
from tools.write_model_cards import reference_cards

REPO = Path(__file__).resolve().parents[1]


def test_committed_cards_match_generation():
    cards = reference_cards()
    assert set(cards) == {t.removeprefix("medhub-") for t in MODEL_REGISTRY if not t.startswith("medhub-test")}
    for family, text in cards.items():
        committed = REPO / "model_cards" / f"{family}.md"
        assert committed.is_file(), f"{committed} missing: run `python -m tools.write_model_cards`"
        assert committed.read_text() == text, f"{committed} is stale: run `python -m tools.write_model_cards`"


def test_cards_carry_hub_metadata_and_paper_numbers():
    text = (REPO / "model_cards" / "unet.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["library_name"] == "medhub" and "medical-imaging" in header["tags"]
    assert "31,030,658 parameters" in text  # the paper configuration (572 -> 388, 2 classes)
    assert "2,008,901 parameters" in (REPO / "model_cards" / "deepmedic.md").read_text()  # the released config
    assert "Ronneberger" in text and "Not a medical device" in text
