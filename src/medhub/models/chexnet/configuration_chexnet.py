"""CheXNet configuration: DenseNet-121 with a 14-finding multi-label head (Rajpurkar et al. 2017)."""

from __future__ import annotations

import math
from typing import Literal

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MAX_DEPTH, MAX_WIDTH, MedPreTrainedConfig, check_choice, check_int, check_int_list
from ...errors import ConfigError

# The 14 ChestX-ray14 findings in the order of the published label vector (Wang et al. 2017; CheXNet).
CHESTXRAY14_FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
PROBLEM_TYPES = ("multi_label_classification", "single_label_classification")
MAX_LAYERS_PER_BLOCK = 256


@strict
class CheXNetConfig(MedPreTrainedConfig):
    """DenseNet hyper-parameters plus the CheXNet loss weights.

    Defaults are DenseNet-121 (growth 32, blocks 6-12-24-16, bottleneck 4, 64 initial features,
    compression 0.5) with the 14 ChestX-ray14 findings as labels, multi-label (one sigmoid per finding).
    in_channels: 1 for a greyscale radiograph (first conv adapted from RGB by the converter) or 3.
    class_pos_weights / class_neg_weights: the paper's w+ = |N| / (|P| + |N|) and w- = |P| / (|P| + |N|)
        per class, from the training-set counts (`medhub.losses.weighted_bce.bce_class_weights`).
        Left unset, the loss computes them from each batch's labels.
    """

    model_type = "medhub-chexnet"

    growth_rate: int = 32
    block_config: list[int] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    drop_rate: float = 0.0
    problem_type: Literal["multi_label_classification", "single_label_classification"] | None = (
        "multi_label_classification"
    )
    class_pos_weights: list[float] | None = None
    class_neg_weights: list[float] | None = None

    def __post_init__(self, **kwargs):
        # No labels given and 14 outputs: name them after the ChestX-ray14 findings, in the published order.
        if self.id2label is None and kwargs.get("num_labels", len(CHESTXRAY14_FINDINGS)) == len(CHESTXRAY14_FINDINGS):
            self.id2label = dict(enumerate(CHESTXRAY14_FINDINGS))
            self.label2id = {name: i for i, name in self.id2label.items()}
        self.block_config = list(self.block_config)
        super().__post_init__(**kwargs)
        if self.label2id is None or len(self.label2id) != len(self.id2label):
            self.label2id = {name: i for i, name in self.id2label.items()}

    def check(self) -> None:
        check_int(self, "growth_rate", 1, MAX_WIDTH)
        check_int_list(self, "block_config", 1, MAX_LAYERS_PER_BLOCK)
        if len(self.block_config) > MAX_DEPTH:
            raise ConfigError(f"CheXNetConfig.block_config={self.block_config}: expected at most {MAX_DEPTH} blocks")
        check_int(self, "num_init_features", 1, MAX_WIDTH)
        check_int(self, "bn_size", 1, 64)
        if not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError(f"CheXNetConfig.drop_rate={self.drop_rate!r}: expected a probability in [0, 1)")
        check_choice(self, "problem_type", PROBLEM_TYPES)
        self._check_class_weights()

    def _check_class_weights(self) -> None:
        pos, neg = self.class_pos_weights, self.class_neg_weights
        if pos is None and neg is None:
            return
        if pos is None or neg is None:
            raise ConfigError("CheXNetConfig.class_pos_weights and class_neg_weights: set both or neither")
        if self.problem_type != "multi_label_classification":
            raise ConfigError(
                f"CheXNetConfig.class_pos_weights: only used by the multi-label loss, but "
                f"problem_type={self.problem_type!r}"
            )
        for name, values in (("class_pos_weights", pos), ("class_neg_weights", neg)):
            if len(values) != self.num_labels or not all(math.isfinite(v) and v >= 0 for v in values):
                raise ConfigError(
                    f"CheXNetConfig.{name}={values!r}: expected {self.num_labels} finite non-negative numbers "
                    f"(one per label)"
                )

    @property
    def min_input_size(self) -> int:
        """Smallest height/width every pooling stage can take: the stem and each transition halve it twice/once."""
        return 2 ** (len(self.block_config) + 1)

    # -- presets ----------------------------------------------------------------------------------------
    REFERENCE = {}  # the paper's model: the defaults
    TINY = dict(growth_rate=4, block_config=[1, 1], num_init_features=8, in_channels=1)

    @classmethod
    def chexnet(cls, **kwargs) -> CheXNetConfig:
        """The paper's model: DenseNet-121, 14 findings, multi-label."""
        return cls(**kwargs)

    @classmethod
    def pneumonia(cls, **kwargs) -> CheXNetConfig:
        """DenseNet-121 for normal vs pneumonia as two classes with a softmax (cross-entropy loss)."""
        kwargs.setdefault("id2label", {0: "normal", 1: "pneumonia"})
        kwargs.setdefault("problem_type", "single_label_classification")
        return cls(**kwargs)
