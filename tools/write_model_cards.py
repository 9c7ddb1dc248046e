"""Write `model_cards/<family>.md`: the architecture card of every registered family, from its `reference()`
configuration, built on the meta device (no memory). `tests/test_model_cards.py` keeps the files current.

    python -m tools.write_model_cards [--out model_cards]
"""

from __future__ import annotations

from pathlib import Path

import torch

import medhub
from medhub.model_card import generate_model_card
from medhub.registry import CONFIG_REGISTRY
from tools._writing import generator_main, write_texts


def reference_cards() -> dict[str, str]:
    """card file name (the family, e.g. "unet") -> card text, for every registered medhub family."""
    cards = {}
    for model_type, config_class in sorted(CONFIG_REGISTRY.items()):
        if not model_type.startswith("medhub-") or config_class.__module__.split(".")[0] != "medhub":
            continue
        family = model_type.removeprefix("medhub-")
        config = config_class.reference()
        config.weights_info = {"config_code": f"medhub.{config_class.__name__}.reference()"}
        with torch.device("meta"):
            model = medhub.MedModel.from_config(config)
        cards[family] = generate_model_card(model, repo_id=f"medhub/{family}")
    return cards


def write_reference_cards(out_dir: str | Path = "model_cards") -> list[Path]:
    return write_texts({Path(out_dir) / f"{family}.md": text for family, text in reference_cards().items()})


if __name__ == "__main__":
    raise SystemExit(generator_main(__doc__, "model_cards", write_reference_cards))
