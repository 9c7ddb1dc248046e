"""Model cards in the Hub format, generated from one template for every medhub model.

The facts come from the model class (paper, architecture) and from `config.weights_info`, the metadata
the weights carry (licence, data, metrics measured, hyper-parameters, the command that produced them), so
a card regenerated after a save/load round trip says the same thing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .weights_info import read_weights_info

TEMPLATE = Path(__file__).parent / "templates" / "modelcard_template.md"

UNTRAINED_NOTE = (
    "These weights are **randomly initialised** (no training recorded in `weights_info`): "
    "the model computes, but its predictions are meaningless until it is trained or fine-tuned."
)


def generate_model_card(model, repo_id: str | None = None, remote_code: dict[str, str] | None = None) -> str:
    """The README.md text for `model` (a MedPreTrainedModel); remote_code: {file: sha256} of the repo's code."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = model.config
    info: dict[str, Any] = dict(read_weights_info(config))
    family = config.model_type.replace("medhub-", "")
    repo_id = repo_id or info.get("repo_id") or config._name_or_path or f"medhub/{family}"
    metrics = info.get("metrics") or []
    scored = [m for m in metrics if m.get("type", m["name"]) not in NOT_METRICS]  # a threshold is a setting
    task = model.pipeline_tag or "image-classification"
    eval_results = [
        EvalResult(
            task_type=task,
            dataset_type=m.get("dataset_id", info.get("dataset_id", "custom")),
            dataset_name=m.get("dataset", info.get("dataset_name", "custom")),
            dataset_split=m.get("split"),
            metric_type=m.get("type", m["name"]),
            metric_name=m["name"],
            metric_value=m["value"],
        )
        for m in scored
    ]
    card_data = ModelCardData(
        **license_fields(info),
        library_name="medhub",
        pipeline_tag=task,
        tags=["medical-imaging", "medhub", config.model_type, *info.get("tags", [])],
        datasets=dataset_names(info),
        base_model=info.get("base_model"),
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
        metrics=sorted({m.get("type", m["name"]) for m in scored}) or None,
    )
    if metrics:
        rows = ["| metric | value | split | dataset |", "|---|---|---|---|"]
        rows += [f"| {m['name']} | {m['value']:.4g} | {m.get('split', '')} | "
                 f"{m.get('dataset', info.get('dataset_name', ''))} |"
                 for m in metrics]
        results = "\n".join(rows)
        if any(m["name"] == "mean_dice" for m in metrics):
            results += ("\n\n`mean_dice` is the mean of the Dice scores of the non-background classes ("
                        + ", ".join(config.labels[1:] or config.labels) + "), class 0 being background.")
        if info.get("evaluation_command"):
            results += f"\n\nMeasured with `{info['evaluation_command']}`."
        if info.get("instances"):
            options = ", ".join(f"{k}={v!r}" for k, v in info["instances"].items() if k != "method")
            results += ("\n\n`rand_error_watershed` scores the cell instances of "
                        f"`medhub.inference.membrane_watershed(p, {options})` (a seeded watershed of the cell "
                        "probability map `p`); the other metrics score the per-pixel argmax map.")
        results += _calibration_text(info.get("calibration")) + _uncertainty_text(info.get("uncertainty"))
    else:
        results = "No evaluation recorded for these weights."
    hyper = info.get("hyperparameters") or {}
    procedure = info.get("training_procedure") or (UNTRAINED_NOTE if not info.get("trained") else "")
    if hyper:
        rows = "\n".join(f"| {k} | {readable(v)} |" for k, v in hyper.items())
        procedure += "\n\n| hyper-parameter | value |\n|---|---|\n" + rows
    for key, label in (("command", "Produced by"), ("training_time", "Training time")):
        if info.get(key):
            procedure += f"\n\n{label}: `{info[key]}`" if key == "command" else f"\n\n{label}: {info[key]}"
    channels = config.channel_names or [f"channel {i}" for i in range(config.in_channels)]
    config_code = info.get("config_code", f"medhub.{type(config).__name__}()")
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        title=info.get("title", repo_id),
        summary=info.get("summary", model.paper.summary),
        architecture=type(model).__name__,
        num_parameters=f"{model.num_parameters():,}",
        model_type=config.model_type,
        paper_title=model.paper.title,
        paper_url=model.paper.url,
        input_description=info.get("input", f"{config.in_channels} channel(s): {', '.join(channels)}"
                                                 + (f"; modality {config.modality}" if config.modality else "")),
        output_description=info.get("output", f"{config.num_labels} labels: {', '.join(config.labels)}"),
        base_model=info.get("base_model"),
        intended_use=info.get("intended_use", "Research on medical image analysis: benchmarking, teaching, and as a "
                                              "starting point for fine-tuning on your own labelled data."),
        training_data=info.get("training_data", "None: randomly initialised weights."),
        training_procedure=procedure.strip(),
        results_table=results,
        limitations=info.get("limitations", "Untrained weights carry no knowledge. After training, performance is "
                                            "bounded by the size and diversity of the training data."),
        repo_id=repo_id,
        trained=bool(info.get("trained")),
        load_code=(f'model = medhub.MedModel.from_pretrained("{repo_id}")' if info.get("trained") else
                   f"model = medhub.MedModel.from_config({config_code})  # random weights\n"
                   f"# pretrained: model = medhub.MedModel.from_pretrained(\"<repo with trained weights>\")"),
        bibtex=model.paper.bibtex.strip(),
    )
    return str(card) + (remote_code_section(remote_code, repo_id) if remote_code else "")


# Hub licence ids the zoo and users are likely to name; anything else is "other" with a name and a link.
HUB_LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0",
                "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-3.0", "cc-by-nc-3.0", "cc-by-nc-sa-3.0", "openrail"}
NOT_METRICS = {"threshold"}  # recorded in weights_info (the decision threshold), but a setting, not a score


def license_fields(info: dict[str, Any]) -> dict[str, str]:
    """license (a Hub id), or license: other with license_name and license_link (weights_info's, else the
    card's own training-data section, which says what the terms are)."""
    license_id = info.get("license", "apache-2.0")
    if license_id in HUB_LICENSES:
        return {"license": license_id}
    name = info.get("license_name") or (license_id if license_id != "other" else "see-training-data")
    link = info.get("license_link") or "README.md#training-data"
    return {"license": "other", "license_name": name, "license_link": link}


def dataset_names(info: dict[str, Any]) -> list[str] | None:
    """The card's `datasets`: Hub dataset ids where weights_info names one, else the short dataset name."""
    names = [d if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", d) else info.get("dataset_name", d)
             for d in info.get("datasets") or []]
    names = names or ([info["dataset_name"]] if info.get("dataset_name") else [])
    return list(dict.fromkeys(names)) or None


def readable(value: Any) -> str:
    """A hyper-parameter as a table cell: lists of options as `name (key=value, ...)`, mappings as key=value."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        items = [(v.get("name", ""), readable({k: x for k, x in v.items() if k != "name"})) for v in value]
        return "; ".join(f"{name} ({options})" if options else name for name, options in items)
    if isinstance(value, (list, tuple)):
        return " x ".join(map(str, value)) if all(isinstance(v, int) for v in value) else ", ".join(map(str, value))
    return str(value)


def remote_code_section(digests: dict[str, str], repo_id: str) -> str:
    """The card's section on the repo's Python files: how plain transformers uses them, and their sha256."""
    rows = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in sorted(digests.items()))
    return f"""

## Use without medhub (transformers remote code)

The `.py` files of this repo are medhub's own modules, copied by medhub when it saved the model, so that plain
`transformers` loads it (`trust_remote_code=True` runs them: check them against the sha256 below first).
medhub itself never runs them: `medhub.MedModel.from_pretrained` uses the installed medhub's classes.

```python
from transformers import AutoModel, AutoImageProcessor
model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)  # float32
processor = AutoImageProcessor.from_pretrained("{repo_id}", trust_remote_code=True)
```

Without medhub the processor takes PIL images, arrays and paths to PNG, JPEG and DICOM images (DICOM with `pydicom`
installed), read as medhub reads them; NIfTI volumes and DICOM series need medhub.
A classifier's `pipeline("image-classification", model="{repo_id}", trust_remote_code=True)` runs the
repo's copy of medhub's classification pipeline and gives `medhub.pipeline`'s scores on the same files: calibrated,
the logits divided by `config.weights_info["calibration"]["temperature"]` when the card reports one.

| file | sha256 |
|---|---|
{rows}
"""


def _calibration_text(calibration: dict[str, Any] | None) -> str:
    """The before/after table of `weights_info["calibration"]` (written by `medhub.evaluation.calibration`)."""
    if not calibration:
        return ""
    before, after = calibration.get("before", {}), calibration.get("after", {})
    rows = [f"| {name} | {before[key]:.4f} | {after[key]:.4f} |"
            for key, name in (("auroc", "AUROC"), ("accuracy", "accuracy at the threshold"),
                              ("ece", f"ECE ({calibration.get('ece_bins', 15)} bins)"), ("brier", "Brier score"),
                              ("threshold", "decision threshold")) if key in before and key in after]
    return (f"\n\n**Calibration** ({calibration.get('split', 'validation')} split, "
            f"{calibration.get('num_examples', '?')} images): {calibration.get('method', 'temperature scaling')}; "
            f"T = {calibration['temperature']:.4f}, applied by `medhub predict`, the pipelines and the Spaces, "
            "whose probabilities are the calibrated ones; the threshold is chosen on the calibrated probabilities "
            f"({calibration.get('threshold_criterion', 'f1')}). Validation numbers (the same images chose T):\n\n"
            "| metric | before | after |\n|---|---|---|\n" + "\n".join(rows))


def _uncertainty_text(uncertainty: dict[str, Any] | None) -> str:
    """The Dice of the most uncertain pixels vs the rest (`weights_info["uncertainty"]`)."""
    if not uncertainty:
        return ""
    share = f"{100 * uncertainty['fraction']:.0f} %"
    items = uncertainty.get("items") or []
    unit = uncertainty.get("unit", "pixels/voxels")
    foreground = " + ".join(uncertainty.get("foreground") or ["label > 0"])
    return (f"\n\n**Uncertainty** (`medhub predict --tta --save-probabilities` writes the map: the entropy of "
            f"the flip-TTA-averaged probabilities). Dice of the foreground ({foreground}) on the "
            f"{uncertainty.get('split', 'validation')} split ({', '.join(map(str, items))}), pooled over all "
            f"{uncertainty.get('elements', 0):,} {unit}: on the {share} of {unit} with the highest entropy "
            f"{uncertainty['dice_uncertain']:.4f}, on the rest {uncertainty['dice_rest']:.4f}.")


__all__ = ["generate_model_card", "license_fields", "readable"]
