"""Quick version of the reliability campaign: mutated real files through every reader, processor and loader.

Each target runs CASES cases (the full run, 10,000 per target, is `python benchmarks/reliability.py`, see
benchmarks/RELIABILITY.md) in a worker subprocess with a per-case timeout: a correct result or a medhub error
naming the file; no interpreter crash, no hang, no silent garbage (see tools.reliability.fuzz).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import medhub
from medhub import config_size
from medhub.errors import MedhubError
from tools.reliability import TARGETS, run_campaign
from tools.reliability.config_values import CONFIG_VALUE_KINDS, mutate_config_values
from tools.reliability.fuzz import FAILURES

CASES = 40


@pytest.fixture(scope="module")
def campaign(shared_data, tmp_path_factory):
    return run_campaign(shared_data, sorted(TARGETS), CASES, base_seed=1, timeout=60, nice=0,
                        seed_dir=tmp_path_factory.mktemp("fuzz-seeds"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_case_is_a_correct_result_or_a_named_medhub_error(campaign, target):
    outcomes = campaign.outcomes[target]
    assert sum(outcomes.values()) == CASES
    failures = [f for f in campaign.failures if f["target"] == target]
    assert not failures, "\n".join(f"case {f['index']} ({f.get('mutation')}): {f['outcome']}: {f['detail']}"
                                   for f in failures[:10])
    assert outcomes["error"] > 0  # the mutations do reach the error paths


def test_runner_records_crashes_hangs_and_memory_blowups(shared_data, tmp_path):
    # The hang gets a short timeout; the cases that end by themselves a long one, so a loaded machine's slow
    # first case in a fresh worker is not mistaken for a hang.
    hang = run_campaign(shared_data, ["selftest-hang"], 1, timeout=5, nice=0, seed_dir=tmp_path / "seeds")
    ending = run_campaign(shared_data, ["selftest-crash", "selftest-memory"], 1, timeout=120, nice=0,
                          seed_dir=tmp_path / "seeds")
    outcomes = {f["target"]: f["outcome"] for f in hang.failures + ending.failures}
    assert outcomes == {"selftest-crash": "crash", "selftest-hang": "hang", "selftest-memory": "foreign-error"}
    assert set(outcomes.values()) <= set(FAILURES)


def test_config_value_family_is_refused_naming_config_json(tmp_path, monkeypatch):
    """The config-value mutations (weights_info types, ranges and 1e999, huge sizes, id2label gaps), in process and
    without the shared data: each case is refused naming config.json, or loads and passes the target's check."""
    monkeypatch.setattr(config_size, "MAX_PARAMETERS", 16 << 20)  # as in the fuzz worker: nothing big is allocated
    seed = tmp_path / "seed"
    medhub.MedModel.from_config(medhub.UNetConfig(base_width=2, depth=1, padding="same")).save_pretrained(seed)
    target, kinds, refused = TARGETS["config"], set(), 0
    for index in range(60):
        folder = tmp_path / f"case{index}"
        shutil.copytree(seed, folder)
        data, desc = mutate_config_values((folder / "config.json").read_bytes(), np.random.default_rng(index))
        (folder / "config.json").write_bytes(data)
        kinds.add(desc.split("=")[0].split(" ")[0].split(".")[0])
        try:
            result = target.run(folder)
        except MedhubError as err:
            assert "config.json" in str(err), (desc, str(err))
            refused += 1
            continue
        assert target.check(folder, result) is None, desc
    assert {"weights_info", "base_width", "id2label"} <= kinds and len(CONFIG_VALUE_KINDS) == 6
    assert refused > 40
