"""The schema of `config.weights_info`, the metadata weights carry, checked on load and on save.

`weights_info` is a JSON object. The keys medhub reads have a type (and, for numbers, a range); other keys
are kept as they are, but every number anywhere in it must be finite. A value of the wrong type or out of
range is a `ConfigError` naming the key (`weights_info.metrics[2].value`) and what was expected, so that
`medhub predict`, the model card and `save_pretrained` never meet it half-way through their work.

    text keys           title, summary, license, input, output, intended_use, limitations, training_data,
                        training_procedure, command, evaluation_command, training_time, recipe, repo_id,
                        dataset_name, dataset_id, base_model, config_code, converted_from, pretrained_on, head
    trained             true / false
    tags, datasets      lists of strings (at most 100)
    metrics             list (at most 1000) of {name: text, value: finite number, type/split/dataset/dataset_id:
                        text}
    threshold           a probability in [0, 1], or one per label; training_seconds: a number >= 0
    hyperparameters, data_options, label_values, patches: JSON objects
    inference           `InferenceSettings` fields (roi_size, overlap, batch_size, ...), each in its range
    instances           {method: "membrane_watershed", seed_threshold in (0, 1), min_seed_size in
                        [1, 100000], smoothing in [0, 16] pixels}, or {method: "nuclei_watershed", ...}
                        (`medhub.inference.nuclei.NUCLEI_RANGES`)
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ConfigError

TEXT_KEYS = ("title", "summary", "license", "input", "output", "intended_use", "limitations", "training_data",
             "training_procedure", "command", "evaluation_command", "training_time", "recipe", "repo_id",
             "dataset_name", "dataset_id", "base_model", "config_code", "converted_from", "pretrained_on", "head")
OBJECT_KEYS = ("hyperparameters", "data_options", "label_values", "patches")
METRIC_TEXT_KEYS = ("type", "split", "dataset", "dataset_id")
MAX_LIST = 100
MAX_METRICS = 1000
MAX_NESTING = 32


def non_finite_path(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The path (`a.b[2].c`) of the first non-finite number (NaN, inf: JSON's 1e999 parses to inf) in plain
    JSON data, or None. Data nested deeper than MAX_NESTING is reported as such a path too."""
    if depth > MAX_NESTING:
        return f"{path} (nested deeper than {MAX_NESTING} levels)"
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        found = non_finite_path(item, where, depth + 1)
        if found is not None:
            return found
    return None


def check_weights_info(info: Any, where: str = "weights_info") -> None:
    """Raise ConfigError naming the key when `info` (None or a dict) does not fit the schema above."""
    if info is None:
        return
    if not isinstance(info, dict):
        raise ConfigError(f"{where}: expected a JSON object (key -> value), got {type(info).__name__} "
                          f"{str(info)[:60]!r}")
    bad = non_finite_path(info, where)
    if bad is not None:
        raise ConfigError(f"{bad}: expected a finite number (NaN and infinity, e.g. 1e999, are refused)")
    for key in TEXT_KEYS:
        _expect(info, key, str, "text", where)
    for key in OBJECT_KEYS:
        _expect(info, key, dict, "a JSON object", where)
    _expect(info, "trained", bool, "true or false", where)
    for key in ("tags", "datasets"):
        _check_text_list(info, key, where)
    _check_threshold(info.get("threshold"), f"{where}.threshold")
    _check_number(info, "training_seconds", where, 0.0, math.inf)
    _check_metrics(info.get("metrics"), f"{where}.metrics")
    if info.get("inference") is not None:
        _expect(info, "inference", dict, "a JSON object of inference settings", where)
        from .inference.inferers import InferenceSettings  # the settings' own checks, with their ranges
        InferenceSettings.from_dict(info["inference"], where=f"{where}.inference")
    if info.get("instances") is not None:
        from .inference.postprocess import instance_method
        instance_method(info["instances"], where=f"{where}.instances")


def read_weights_info(config) -> dict[str, Any]:
    """`config.weights_info` checked (it may have been set after the config was built), {} when unset."""
    info = getattr(config, "weights_info", None)
    check_weights_info(info, f"{type(config).__name__}.weights_info")
    return info or {}


def _expect(info: dict, key: str, kind: type, expected: str, where: str) -> None:
    value = info.get(key)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}={str(value)[:60]!r}: expected {expected}, got {type(value).__name__}")


def _check_text_list(info: dict, key: str, where: str) -> None:
    values = info.get(key)
    if values is None:
        return
    if not isinstance(values, list) or len(values) > MAX_LIST or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}.{key}={str(values)[:60]!r}: expected a list of at most {MAX_LIST} strings")


def _check_number(info: dict, key: str, where: str, lo: float, hi: float) -> None:
    value = info.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError(f"{where}.{key}={value!r}: expected a number in [{lo}, {hi}]")


def _check_threshold(value: Any, where: str) -> None:
    """A probability threshold, or one per label (multi-label classifiers)."""
    values = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values):
        raise ConfigError(f"{where}={value!r}: expected a probability in [0, 1] or a list of them (one per label)")


def _check_metrics(metrics: Any, where: str) -> None:
    if metrics is None:
        return
    if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
        raise ConfigError(f"{where}: expected a list of at most {MAX_METRICS} metric objects "
                          f"({{name, value, type, split, dataset}}), got {type(metrics).__name__}")
    for i, metric in enumerate(metrics):
        at = f"{where}[{i}]"
        if not isinstance(metric, dict):
            raise ConfigError(f"{at}: expected an object {{name, value, type, split, dataset}}, "
                              f"got {type(metric).__name__} {str(metric)[:60]!r}")
        if not isinstance(metric.get("name"), str) or not metric["name"]:
            raise ConfigError(f"{at}.name={metric.get('name')!r}: expected the metric's name (non-empty text)")
        value = metric.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{at}.value={value!r}: expected a finite number")
        for key in METRIC_TEXT_KEYS:
            _expect(metric, key, str, "text", at)


__all__ = ["check_weights_info", "non_finite_path", "read_weights_info"]
