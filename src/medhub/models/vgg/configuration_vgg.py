"""Configuration of VGG (Simonyan & Zisserman 2015) for fine-tuning on medical images.

`depth` and `batch_norm` give torchvision's vgg11..vgg19 and vgg11_bn..vgg19_bn feature stacks. The head is
either torchvision's ImageNet classifier ("imagenet": 7x7 adaptive pooling and two fully connected layers of
`classifier_hidden` units, ~120M parameters) or a small one ("gap": global average pooling, dropout and one
linear layer), which is enough for, say, a 2-class chest X-ray task.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MAX_WIDTH, MedPreTrainedConfig, check_choice, check_int
from ...errors import ConfigError
from ...layers.classification_loss import PROBLEM_TYPES

POOL = "M"
# depth -> convolution widths with "M" for 2x2 max pooling (configurations A, B, D, E of the paper).
VGG_LAYOUTS = {
    11: (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    13: (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    16: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    19: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL,
         512, 512, 512, 512, POOL),
}
CLASSIFIER_TYPES = ("imagenet", "gap")


@strict
class VGGConfig(MedPreTrainedConfig):
    """depth: 11, 13, 16 or 19; batch_norm: a BatchNorm after every convolution (the *_bn variants).
    classifier_type: "imagenet" or "gap" (see the module docstring); classifier_hidden: width of the two
    hidden layers of the imagenet head; drop_rate: dropout in the head (0.5 as torchvision).
    """

    model_type = "medhub-vgg"

    in_channels: int = 3
    depth: int = 16
    batch_norm: bool = False
    classifier_type: str = "imagenet"
    classifier_hidden: int = 4096
    drop_rate: float = 0.5

    # VGG-16 with the global-average-pooling head on greyscale radiographs, normal vs pneumonia.
    REFERENCE = dict(depth=16, in_channels=1, classifier_type="gap", id2label={0: "normal", 1: "pneumonia"})
    TINY = dict(depth=11, batch_norm=True, classifier_type="gap", num_labels=2, in_channels=1)

    @classmethod
    def from_arch(cls, arch: str, **kwargs) -> VGGConfig:
        """The config of a torchvision architecture name, e.g. `VGGConfig.from_arch("vgg16_bn", num_labels=2)`."""
        archs = {f"vgg{d}{suffix}": (d, suffix == "_bn") for suffix in ("", "_bn") for d in VGG_LAYOUTS}
        if arch not in archs:
            raise ConfigError(f"arch={arch!r}: expected one of {list(archs)}")
        depth, batch_norm = archs[arch]
        return cls(depth=depth, batch_norm=batch_norm, **kwargs)

    @property
    def layout(self) -> tuple:
        return VGG_LAYOUTS[self.depth]

    def check(self) -> None:
        check_choice(self, "depth", tuple(VGG_LAYOUTS))
        check_choice(self, "classifier_type", CLASSIFIER_TYPES)
        check_int(self, "classifier_hidden", 1, MAX_WIDTH)
        check_choice(self, "problem_type", (None, *PROBLEM_TYPES))
        if not isinstance(self.batch_norm, bool):
            raise ConfigError(f"VGGConfig.batch_norm={self.batch_norm!r}: expected true or false")
        if isinstance(self.drop_rate, bool) or not 0.0 <= float(self.drop_rate) < 1.0:
            raise ConfigError(f"VGGConfig.drop_rate={self.drop_rate!r}: expected a probability in [0, 1)")
