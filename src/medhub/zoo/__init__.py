"""medhub's model zoo: the catalogue of checkpoints (`catalog`), the local zoo folder (`local`) and
`medhub zoo build` / `push` (`medhub.zoo.build`, imported on demand: it needs the training stack)."""

from .catalog import CHECKPOINTS, ORG, SIZE_BUDGET_MB, Checkpoint, SpaceExample, canonical_id, checkpoint
from .local import ENV_VAR, available, find, total_mb, weights_mb, zoo_dir

__all__ = ["CHECKPOINTS", "Checkpoint", "ENV_VAR", "ORG", "SIZE_BUDGET_MB", "SpaceExample", "available",
           "canonical_id", "checkpoint", "find", "total_mb", "weights_mb", "zoo_dir"]
