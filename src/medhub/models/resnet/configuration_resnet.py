"""Configuration of ResNet (He et al. 2016) for fine-tuning on medical images.

The depth picks the block and the number of blocks per stage exactly as torchvision's resnet18..resnet152
(v1.5: in bottleneck blocks the stride sits on the 3x3 convolution), so ImageNet weights load unchanged.
`in_channels` defaults to 3 (the ImageNet layout); use 1 for X-rays with summed pretrained filters.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MedPreTrainedConfig, check_choice
from ...errors import ConfigError
from ...layers.classification_loss import PROBLEM_TYPES

# depth -> (block kind, blocks per stage), as in the paper's Table 1.
RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@strict
class ResNetConfig(MedPreTrainedConfig):
    """depth: 18, 34 (basic blocks) or 50, 101, 152 (bottleneck blocks).
    drop_rate: dropout before the final linear layer (0 = torchvision's head, which has none).
    """

    model_type = "medhub-resnet"

    in_channels: int = 3
    depth: int = 50
    drop_rate: float = 0.0

    # ResNet-18 fine-tuned on greyscale radiographs, normal vs pneumonia (the zoo's setting).
    REFERENCE = dict(depth=18, in_channels=1, id2label={0: "normal", 1: "pneumonia"})
    TINY = dict(depth=18, num_labels=2, in_channels=1)

    @classmethod
    def from_arch(cls, arch: str, **kwargs) -> ResNetConfig:
        """The config of a torchvision architecture name, e.g. `ResNetConfig.from_arch("resnet18", num_labels=2)`."""
        depths = {f"resnet{d}": d for d in RESNET_DEPTHS}
        if arch not in depths:
            raise ConfigError(f"arch={arch!r}: expected one of {list(depths)}")
        return cls(depth=depths[arch], **kwargs)

    @property
    def block_type(self) -> str:
        return RESNET_DEPTHS[self.depth][0]

    @property
    def stage_blocks(self) -> tuple[int, ...]:
        return RESNET_DEPTHS[self.depth][1]

    def check(self) -> None:
        check_choice(self, "depth", tuple(RESNET_DEPTHS))
        check_choice(self, "problem_type", (None, *PROBLEM_TYPES))
        if isinstance(self.drop_rate, bool) or not 0.0 <= float(self.drop_rate) < 1.0:
            raise ConfigError(f"ResNetConfig.drop_rate={self.drop_rate!r}: expected a probability in [0, 1)")
