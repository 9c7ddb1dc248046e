"""Model cards in the Hub format, generated from one template for every medhub model.

The facts come from the model class (paper, architecture) and from `config.weights_info`, the metadata
the weights carry (licence, data, metrics measured, hyper-parameters, the command that produced them), so
a card regenerated after a save/load round trip says the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).parent / "templates" / "modelcard_template.md"

UNTRAINED_NOTE = (
    "These weights are **randomly initialised** (no training recorded in `weights_info`): "
    "the model computes, but its predictions are meaningless until it is trained or fine-tuned."
)


def generate_model_card(model, repo_id: str | None = None) -> str:
    """The README.md text for `model` (a MedPreTrainedModel)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = model.config
    info: dict[str, Any] = dict(config.weights_info or {})
    family = config.model_type.replace("medhub-", "")
    repo_id = repo_id or info.get("repo_id") or config._name_or_path or f"medhub/{family}"
    metrics = info.get("metrics") or []
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
        for m in metrics
    ]
    card_data = ModelCardData(
        license=info.get("license", "apache-2.0"),
        library_name="medhub",
        pipeline_tag=task,
        tags=["medical-imaging", "medhub", config.model_type, *info.get("tags", [])],
        datasets=info.get("datasets"),
        base_model=info.get("base_model"),
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
        metrics=sorted({m.get("type", m["name"]) for m in metrics}) or None,
    )
    if metrics:
        rows = ["| metric | value | split | dataset |", "|---|---|---|---|"]
        rows += [f"| {m['name']} | {m['value']:.4g} | {m.get('split', '')} | "
                 f"{m.get('dataset', info.get('dataset_name', ''))} |"
                 for m in metrics]
        results = "\n".join(rows)
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
        rows = "\n".join(f"| {k} | {v} |" for k, v in hyper.items())
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
    return str(card)


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


__all__ = ["generate_model_card"]
