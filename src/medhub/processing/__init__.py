"""Image processors: every preprocessing step a named field saved in preprocessor_config.json.

- `RadiographImageProcessor`: 2D radiographs (DICOM windowing/VOI LUT, MONOCHROME1, resize, crop, mean/std);
- `GreyscaleImageProcessor`: 2D microscopy/EM greyscale (to [0, 1], optional resize and mean/std);
- `VolumeImageProcessor`: 3D volumes (orientation, spacing, z-score or CT window, channel order).

Each is registered with `medhub.auto` under its class name (the JSON's `image_processor_type`); families
also register theirs with `AutoImageProcessor` for their config class via `medhub.register_processor`.
"""

from ..auto import register_processor
from .base import MedImageProcessor
from .greyscale import GreyscaleImageProcessor
from .radiograph import RadiographImageProcessor, apply_window
from .volume import VolumeImageProcessor

for _cls in (RadiographImageProcessor, GreyscaleImageProcessor, VolumeImageProcessor):
    register_processor(None, _cls)


def register_family_processors() -> None:
    """Tell transformers' AutoImageProcessor which processor each medhub config uses."""
    from ..models.attention_unet import AttentionUNetConfig
    from ..models.chexnet import CheXNetConfig
    from ..models.deepmedic import DeepMedicConfig
    from ..models.resnet import ResNetConfig
    from ..models.unet import UNetConfig
    from ..models.vgg import VGGConfig

    for config_class, processor_class in (
        (CheXNetConfig, RadiographImageProcessor), (ResNetConfig, RadiographImageProcessor),
        (VGGConfig, RadiographImageProcessor), (UNetConfig, GreyscaleImageProcessor),
        (AttentionUNetConfig, VolumeImageProcessor), (DeepMedicConfig, VolumeImageProcessor),
    ):
        register_processor(config_class, processor_class)


__all__ = ["GreyscaleImageProcessor", "MedImageProcessor", "RadiographImageProcessor", "VolumeImageProcessor",
           "apply_window"]
