"""The config-value mutation family of the fuzzers: config.json values that are well-formed JSON but wrong for
medhub (issue 15 §4). `weights_info` of the wrong type, one of its values (at any depth) absurd, out of range or
overflowing to inf (1e999); sizes each within their bounds that together describe a huge model; `id2label`
keys with gaps. Used by `tools.reliability.fuzz.mutate_config` (the `config` target)."""

from __future__ import annotations

import json

# Metadata a trained model's config.json carries (the keys medhub reads), for the config-value mutations below.
WEIGHTS_INFO_SEED = {
    "title": "seed", "trained": True, "tags": ["em"], "datasets": ["isbi2012"], "threshold": 0.5,
    "metrics": [{"name": "dice", "type": "dice", "value": 0.8, "split": "test", "dataset": "isbi2012"}],
    "inference": {"roi_size": [32, 32], "overlap": 0.5, "batch_size": 2},
    "instances": {"method": "membrane_watershed", "seed_threshold": 0.9, "min_seed_size": 25, "smoothing": 2.0},
    "hyperparameters": {"learning_rate": 0.001, "steps": 10},
}
CONFIG_VALUE_KINDS = ["weights_info-type", "weights_info-value", "weights_info-value", "weights_info-overflow",
                      "sizes", "id2label"]


def _leaves(value, path=()):
    """(path, value) of every leaf of plain JSON data, lists and objects included as leaves themselves."""
    yield path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _leaves(item, (*path, key))


def mutate_config_values(raw: bytes, rng) -> tuple[bytes, str]:
    """One mutation of this family applied to the config.json text `raw` (a byte mutation if it is not an
    object); returns the new text and its description."""
    from .fuzz import _absurd, _pick, json_overflow, mutate_bytes  # fuzz imports this module lazily: no cycle

    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        return mutate_bytes(raw, rng)
    kind = _pick(rng, CONFIG_VALUE_KINDS)
    info = json.loads(json.dumps(WEIGHTS_INFO_SEED))
    if kind == "weights_info-type":
        obj["weights_info"] = _pick(rng, ["abc", [1], ["metrics"], 3, True, [info]])
        return json.dumps(obj).encode(), f"weights_info={str(obj['weights_info'])[:40]}"
    if kind == "weights_info-value":
        paths = [p for p, _ in _leaves(info) if p]
        path = paths[int(rng.integers(0, len(paths)))]
        *parent, last = path
        target = info
        for key in parent:
            target = target[key]
        value = _pick(rng, [_absurd(rng), 1e6, -1, "", {}, {"value": 1}, [None], 10**30])
        target[last] = value
        obj["weights_info"] = info
        where = ".".join(str(k) for k in path)
        return json.dumps(obj).encode(), f"weights_info.{where}={str(value)[:40]}"
    if kind == "weights_info-overflow":
        text, desc = json_overflow(json.dumps(info).encode(), rng)
        obj["weights_info"] = "@@"
        return json.dumps(obj).encode().replace(b'"@@"', text), f"weights_info {desc}"
    if kind == "sizes":
        width, depth = int(_pick(rng, [64, 256, 512, 1024, 4096])), int(_pick(rng, [3, 4, 5, 6, 10]))
        obj.update(base_width=width, depth=depth)
        return json.dumps(obj).encode(), f"base_width={width} depth={depth}"
    keys = _pick(rng, [["0", "5"], ["1", "2"], ["-1", "0"], ["0", "0"], ["0", "x"], ["0", "1", "2", "3"]])
    obj["id2label"] = {k: f"label{i}" for i, k in enumerate(keys)}
    obj["label2id"] = {f"label{i}": k for i, k in enumerate(keys)}
    return json.dumps(obj).encode(), f"id2label keys {keys}"


__all__ = ["CONFIG_VALUE_KINDS", "WEIGHTS_INFO_SEED", "mutate_config_values"]
