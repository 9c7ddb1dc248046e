"""Image processors: every preprocessing step a named field saved in preprocessor_config.json.

- `RadiographImageProcessor`: 2D radiographs (DICOM windowing/VOI LUT, MONOCHROME1, resize, crop, mean/std);
- `GreyscaleImageProcessor`: 2D microscopy/EM greyscale (to [0, 1], optional resize and mean/std);
- `VolumeImageProcessor`: 3D volumes (orientation, spacing, z-score or CT window, channel order).

Each is registered under its class name (the JSON's `image_processor_type`, `medhub.registry`); each family
names its processor class (`processor_class` of its model), which registers it with `AutoImageProcessor`.
"""

from ..registry import register_processor
from .base import MedImageProcessor
from .greyscale import GreyscaleImageProcessor
from .radiograph import RadiographImageProcessor, apply_window
from .volume import ProcessedSubject, VolumeImageProcessor

for _cls in (RadiographImageProcessor, GreyscaleImageProcessor, VolumeImageProcessor):
    register_processor(None, _cls)


__all__ = ["GreyscaleImageProcessor", "MedImageProcessor", "ProcessedSubject", "RadiographImageProcessor",
           "VolumeImageProcessor", "apply_window"]
