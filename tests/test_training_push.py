"""Fine-tune, then share: `medhub train --push-to-hub` uploads the trained weights and a card recording the
measured validation metrics, through the real huggingface_hub client to the local write endpoint, and the model
reads back through olah."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_servers import run_client  # noqa: E402


def test_train_then_push_records_metrics_in_the_hub_card(shared_data, write_endpoint, tmp_path):
    script = """
import torch, yaml
from medhub.training import Recipe, train
recipe = Recipe.from_dict({
    "name": "tiny-unet-isbi-push", "seed": 3,
    "model": {"type": "unet", "config": {"in_channels": 1, "num_labels": 2, "base_width": 4, "depth": 2,
                                         "padding": "same", "norm": "batch", "loss": "ce",
                                         "id2label": {0: "membrane", 1: "cell"}}},
    "data": {"name": "isbi2012", "options": {"val_slices": 4}, "crop": [64, 64],
             "label_values": {255: 1}},
    "training": {"max_steps": 4, "per_device_train_batch_size": 2, "learning_rate": 0.01, "save_strategy": "no",
                 "disable_tqdm": True, "use_cpu": True},
    "evaluation": {"metric": "mean_dice"},
})
def run():
    result = train(recipe, "run", push_to_hub="alice/tiny-unet-finetuned")
    back = medhub.MedModel.from_pretrained("alice/tiny-unet-finetuned")
    same = all(torch.equal(a, b) for a, b in zip(result.model.state_dict().values(), back.state_dict().values()))
    from huggingface_hub import hf_hub_download
    card = open(hf_hub_download("alice/tiny-unet-finetuned", "README.md")).read()
    header = yaml.safe_load(card.split("---")[1])
    return {"same": same, "dice": result.metrics["mean_dice"], "card": card, "header": header,
            "source": back.hub_source, "info": back.config.weights_info}
case("push")(run)
"""
    results = run_client(script, endpoint=write_endpoint.url, hf_home=tmp_path,
                         extra_env={"MEDHUB_DATA_DIR": str(shared_data)}, timeout=300)
    outcome = results["push"]
    assert "ok" in outcome, outcome
    got = outcome["ok"]
    assert got["same"]  # the weights on the Hub are the trained ones, bit for bit
    assert got["source"].startswith("Hugging Face Hub")
    info = got["info"]
    assert info["trained"] is True and info["dataset_name"] == "isbi2012"
    assert info["hyperparameters"]["steps"] == 4
    rows = {m["name"]: m for m in info["metrics"]}
    assert rows["mean_dice"]["split"] == "validation"
    assert abs(rows["mean_dice"]["value"] - got["dice"]) < 1e-9
    # The Hub card: model-index with the measured value, and the training facts.
    results_index = got["header"]["model-index"][0]["results"]
    values = {m["name"]: m["value"] for r in results_index for m in r["metrics"]}
    assert abs(values["mean_dice"] - got["dice"]) < 1e-9
    assert got["header"]["library_name"] == "medhub"
    assert f"| mean_dice | {got['dice']:.4g} | validation | isbi2012 |" in got["card"]
    assert "randomly initialised" not in got["card"]
