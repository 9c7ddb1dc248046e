"""`medhub zoo build ID`: a zoo checkpoint from its recipe - train (`medhub train`'s code: the processor applied to
the training data, evaluation through the path users run), store in float16, evaluate the *stored* weights the
same way (`medhub.evaluation.evaluate_model`, what `medhub evaluate` runs) and write the card from that
measurement. Classifiers get a temperature and the decision threshold fitted on validation
(`medhub.evaluation.calibration`) before the measurement. `medhub zoo build ID --evaluate-only` does the steps after
training on the stored weights (calibration, measurement, for segmenters the Dice of the most uncertain pixels,
`medhub.evaluation.uncertainty`) and rewrites config and card. `medhub zoo push --org ORG` publishes the zoo
folders.

Recipes are found as `<recipes>/<id>.yaml`, `<recipes>` being MEDHUB_RECIPES_DIR or `recipes/zoo/` in the
current directory (a medhub checkout's root), or given as a path; the result goes to the local zoo
(`medhub.zoo.local`), scratch checkpoints to `out/zoo/<id>/`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from ..auto import MedModel
from ..data.recipe_data import for_evaluation
from ..errors import ConfigError
from ..evaluation import evaluate_model
from ..evaluation.calibration import calibrate_classifier
from ..evaluation.task_metrics import CLASSIFICATION, task_of
from ..evaluation.uncertainty import uncertainty_dice
from ..logging_utils import get_logger
from ..training.recipe import Recipe, load_recipe
from ..training.trainer import train
from .catalog import ORG, canonical_id
from .local import DEFAULT_FOLDER, available, find, zoo_dir

logger = get_logger("zoo")

RECIPES_ENV = "MEDHUB_RECIPES_DIR"


def recipes_dir() -> Path:
    return Path(os.environ.get(RECIPES_ENV) or Path.cwd() / "recipes" / "zoo").expanduser()


def recipe_path(name: str) -> Path:
    """`<recipes>/<id>.yaml` (aliases resolved), or a path to a recipe file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = recipes_dir() / f"{canonical_id(name)}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in recipes_dir().glob("*.yaml"))
        raise ConfigError(f"zoo build {name!r}: no recipe {path} (set {RECIPES_ENV} or run from a medhub "
                          f"checkout); known: {', '.join(known) or 'none'}")
    return path


def build(name: str, data_dir: str | None = None, out_dir: str | None = None, work_dir: str | None = None,
          max_steps: int | None = None) -> dict[str, Any]:
    """Train, store float16, evaluate the stored weights, write weights_info and the card. Returns a summary."""
    if data_dir:
        os.environ["MEDHUB_DATA_DIR"] = str(Path(data_dir).resolve())
    path = recipe_path(name)
    recipe = load_recipe(path)
    out, work = _folders(recipe, out_dir, work_dir)
    repo_id = f"{ORG}/{recipe.name}"
    load_before = _load_average()
    started = time.perf_counter()
    result = train(recipe, work, max_steps=max_steps, command=f"medhub zoo build {recipe.name}")
    wall = time.perf_counter() - started
    model = result.model
    info = dict(model.config.weights_info)
    info.update(repo_id=repo_id, recipe=_display(path), training_seconds=round(wall, 1),
                training_time=_training_time(wall, max(load_before, _load_average())),
                evaluation_command=f"medhub evaluate {repo_id} {recipe.data.get('name') or recipe.data.get('path')} "
                                   f"--split {recipe.eval_split}",
                training_procedure=_procedure(recipe, info, result.threshold))
    model.config.weights_info = info
    store(model, out)

    return _measure(MedModel.from_pretrained(str(out)), recipe, out, work, {"training_seconds": round(wall, 1)})


def _folders(recipe: Recipe, out_dir: str | None, work_dir: str | None) -> tuple[Path, Path]:
    """(the zoo folder, the scratch folder) of a build."""
    out = Path(out_dir) if out_dir else (zoo_dir() or Path.cwd() / DEFAULT_FOLDER) / recipe.name
    return out, Path(work_dir) if work_dir else Path("out") / "zoo" / recipe.name


def evaluate_only(name: str, data_dir: str | None = None, out_dir: str | None = None,
                  work_dir: str | None = None, uncertainty: bool = True) -> dict[str, Any]:
    """`medhub zoo build NAME --evaluate-only`: no training; the stored weights are calibrated (classifiers) and
    measured again (segmenters: also the Dice of the most uncertain pixels, `uncertainty=True`), and the config
    and card rewritten. Returns a summary."""
    if data_dir:
        os.environ["MEDHUB_DATA_DIR"] = str(Path(data_dir).resolve())
    path = recipe_path(name)
    recipe = load_recipe(path)
    out, work = _folders(recipe, out_dir, work_dir)
    if not (out / "config.json").is_file():
        raise ConfigError(f"zoo build {name!r} --evaluate-only: no checkpoint in {out} (build it first)")
    return _measure(MedModel.from_pretrained(str(out)), recipe, out, work, {}, uncertainty=uncertainty)


def _measure(stored, recipe: Recipe, out: Path, work: Path, summary: dict[str, Any],
             uncertainty: bool = False) -> dict[str, Any]:
    """Calibrate (2-class classifiers), evaluate the stored weights, store config and card again."""
    batch = int(recipe.evaluation.get("batch_size") or 8)
    data = for_evaluation(recipe.data)
    info = dict(stored.config.weights_info)
    if task_of(stored) == CLASSIFICATION and stored.config.num_labels == 2:
        entry = calibrate_classifier(stored, data, batch_size=batch,
                                     criterion=recipe.evaluation.get("threshold_criterion", "f1"))
        info = dict(stored.config.weights_info)
        if info.get("training_procedure"):  # the threshold it names was replaced
            info["training_procedure"] = re.sub(
                r"Decision threshold \d+\.\d+ chosen on validation( probabilities calibrated with T = \d+\.\d+)?",
                f"Decision threshold {info['threshold']:.4f} chosen on validation probabilities calibrated with "
                f"T = {entry['temperature']:.4f}", info["training_procedure"])
    elif uncertainty and task_of(stored) != CLASSIFICATION:
        info["uncertainty"] = uncertainty_dice(stored, data, recipe.eval_split)
    stored.config.weights_info = info
    evaluation = evaluate_model(stored, data, recipe.eval_split, batch_size=batch)
    stored.config.weights_info = {**stored.config.weights_info, "metrics": evaluation.card_metrics()}
    store(stored, out)
    work.mkdir(parents=True, exist_ok=True)
    (work / "metrics.json").write_text(json.dumps(evaluation.to_json(), indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 1e6
    logger.info("stored %s (%.1f MB) in %s", f"{ORG}/{recipe.name}", size, out)
    saved = stored.config.weights_info
    extra = {k: saved[k] for k in ("calibration", "uncertainty") if k in saved}
    return {"id": recipe.name, "folder": str(out), "size_mb": round(size, 2), **summary,
            "metrics": {r["name"]: r["value"] for r in evaluation.card_metrics()}, **extra}


def store(model, out: Path) -> None:
    """float16 weights (loaded back as float32 by medhub), config, processor and card."""
    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(out)
    model.to(torch.float32)


def _procedure(recipe: Recipe, info: dict[str, Any], threshold) -> str:
    selection = (f"best checkpoint by validation {recipe.evaluation.get('metric')} (evaluated every "
                 f"{recipe.training.get('eval_strategy')}). " if recipe.training.get("load_best_model_at_end")
                 else "the final weights (no checkpoint selection). ")
    weights = (info.get("hyperparameters") or {}).get("class_weights")
    return (f"Recipe `{_display(Path(recipe.source))}` of the medhub repository, built with `medhub zoo build "
            f"{recipe.name}`: transformers Trainer, seed {recipe.seed}, the stored image processor applied to the "
            "training data, " + (f"loss weighted per class {weights}, " if weights else "") + selection
            + (f"Decision threshold {float(threshold):.4f} chosen on validation "
               f"({recipe.evaluation.get('threshold_criterion', 'f1')}). " if threshold is not None else "")
            + (f"{recipe.card['notes']} " if recipe.card.get("notes") else "")
            + "Weights stored in float16; the metrics are those of the stored weights (loaded back as float32 "
              "on the CPU), measured as `medhub predict` runs them.")


def _training_time(wall: float, load: float) -> str:
    return (f"{wall / 60:.1f} min ({wall:.0f} s) on {torch.get_num_threads()} thread(s) of a {os.cpu_count()}-core "
            "CPU" + (f", shared with other jobs (1-minute load average up to {load:.1f})" if load > 2.5 else ""))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return 0.0


def push(org: str, token: str | None = None, names: list[str] | None = None) -> list[str]:
    """Publish every present zoo folder (or `names`) as `<org>/<id>` with push_to_hub; returns the repo ids."""
    pushed = []
    for name in names or available():
        folder, why = find(name)
        if folder is None:
            raise ConfigError(f"zoo push {name!r}: {why}")
        model = MedModel.from_pretrained(str(folder))
        card = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
        if card is not None:
            card = card.replace(f"{ORG}/{folder.name}", f"{org}/{folder.name}")
        repo = f"{org}/{folder.name}"
        model = model.to(torch.float16)  # as stored in the zoo
        model.push_to_hub(repo, token=token, card=card, commit_message=f"medhub zoo push {folder.name}")
        pushed.append(repo)
    return pushed


__all__ = ["build", "evaluate_only", "push", "recipe_path", "recipes_dir", "store"]
