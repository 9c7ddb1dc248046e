"""Reliability tooling (of the checkout, not the package): fuzzing of medhub's readers and loaders with mutated
real files.

- `tools.reliability.fuzz`: the seed files (derived from ../shared/data), the mutators and, per target
  (a reader or loader), what a *correct* outcome is: a result that passes the target's invariants, or a
  `MedhubError` whose message names the file.
- `tools.reliability.config_values`: the config.json value family (weights_info types, ranges and 1e999, sizes
  that together are huge, id2label gaps) of the `config` target.
- `tools.reliability.runner`: runs cases in a worker subprocess with a per-case timeout, so interpreter
  crashes (segfaults, aborts, OOM kills) and hangs are recorded with the case that caused them.

`benchmarks/reliability.py` runs the full campaign and writes `benchmarks/RELIABILITY.md`;
`tests/test_reliability_fuzz.py` runs a few hundred cases per target.
"""

from .fuzz import TARGETS
from .runner import CampaignResult, run_campaign

__all__ = ["CampaignResult", "TARGETS", "run_campaign"]
