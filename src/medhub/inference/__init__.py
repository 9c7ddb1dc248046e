"""Whole-image inference: the inferers every caller goes through (`model.infer`), and the strategies they use:
sliding window ('same'-padding nets), overlap-tile (valid-padding nets), flip TTA, label maps and cell
instances from a membrane probability map and nuclei from a nucleus probability map (seeded watersheds)."""

from .inferers import (
    ClassifierInferer,
    DeepMedicInferer,
    InferenceSettings,
    Inferer,
    OverlapTileInferer,
    SlidingWindowInferer,
    output_activation,
)
from .membrane_watershed import membrane_watershed, watershed_options
from .nuclei import nuclei_instances, nuclei_options
from .overlap_tile import mirror_pad, overlap_tile_inference
from .postprocess import (
    cell_instances,
    instance_method,
    instance_options,
    instance_postprocessing,
    instances_from_probabilities,
    labels_from_probabilities,
)
from .sliding_window import gaussian_importance_map, sliding_window_inference, window_starts
from .tta import flip_tta

__all__ = [
    "ClassifierInferer",
    "DeepMedicInferer",
    "InferenceSettings",
    "Inferer",
    "OverlapTileInferer",
    "SlidingWindowInferer",
    "cell_instances",
    "flip_tta",
    "gaussian_importance_map",
    "instance_method",
    "instance_options",
    "instance_postprocessing",
    "instances_from_probabilities",
    "labels_from_probabilities",
    "membrane_watershed",
    "mirror_pad",
    "nuclei_instances",
    "nuclei_options",
    "output_activation",
    "overlap_tile_inference",
    "sliding_window_inference",
    "watershed_options",
    "window_starts",
]
