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


def _zoo_cards() -> list[Path]:
    return sorted((REPO / "model_zoo").glob("*/README.md"))


def test_every_card_parses_with_huggingface_hub():
    """The Hub's own parsers read every zoo card and every generated card: metadata, licence, model-index."""
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    cards = {p.parent.name: p.read_text() for p in _zoo_cards()}
    cards.update({f"reference {family}": text for family, text in reference_cards().items()})
    assert len(cards) >= 6 + 6
    for name, text in cards.items():
        card = ModelCard(text)
        data = card.data.to_dict()
        assert data["library_name"] == "medhub", name
        if data["license"] == "other":
            assert data.get("license_name") and data.get("license_link"), name
        if "model-index" not in data:
            continue
        model_name, results = model_index_to_eval_results(data["model-index"])
        assert model_name == card.data.model_name, name
        keys = [(r.metric_name, r.dataset_split) for r in results]
        assert len(keys) == len(set(keys)), f"{name}: one entry per metric and split"
        assert all(r.metric_type != "threshold" and isinstance(r.metric_value, float) for r in results), name


def test_zoo_card_facts():
    """Licence ids or other + name + link; datasets named; mean_dice what it claims; a readable hyper-parameter
    table; the remote code's sha256 matches the files beside the card."""
    import hashlib
    import json

    from huggingface_hub import ModelCard

    for path in _zoo_cards():
        folder = path.parent
        card = ModelCard(path.read_text())
        info = json.loads((folder / "config.json").read_text())["weights_info"]
        assert card.data.datasets and all(" " not in d for d in card.data.datasets), folder.name
        assert "threshold" not in (card.data.metrics or [])
        table = path.read_text().split("| hyper-parameter | value |")[1]
        assert "{'" not in table and "[{" not in table, f"{folder.name}: hyper-parameters as Python reprs"
        for file in folder.glob("*.py"):
            assert f"| `{file.name}` | `{hashlib.sha256(file.read_bytes()).hexdigest()}` |" in path.read_text()
        values = {m["name"]: m["value"] for m in info["metrics"]}
        if "mean_dice" in values:
            labels = json.loads((folder / "config.json").read_text())["id2label"]
            foreground = [values[f"dice_{labels[str(i)]}"] for i in range(1, len(labels))]
            assert abs(values["mean_dice"] - sum(foreground) / len(foreground)) < 1e-9, folder.name
            assert "mean of the Dice scores of the non-background classes" in path.read_text()
