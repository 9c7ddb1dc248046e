"""DeepMedic configuration: the fields of the original's model config file (deepMedic/model/modelConfig.cfg).

Names map one to one onto the original's: numberFMsPerLayerNormal -> normal_feature_maps,
kernelDimPerLayerNormal -> normal_kernel_sizes, layersWithResidualConnNormal -> normal_residual_layers,
subsampleFactor -> subsample_factors, numberFMsPerLayerFC -> fc_feature_maps,
kernelDimFor1stFcLayer -> fc_first_kernel_size, layersWithResidualConnFC -> fc_residual_layers,
dropoutRates* -> *_dropout_rates, segmentsDim* -> *_segment_size, rollAverageForBNOverThatManyBatches ->
bn_moving_average_batches, convWeightsInit ["fanIn", s] -> conv_init_variance_scale = s.
Layer numbers in the residual lists count from 1, as in the original's file (layer 1 cannot have one).
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MAX_DEPTH, MAX_WIDTH, MedPreTrainedConfig, check_choice, check_int, check_int_list
from ...errors import ConfigError

# Labels of the BraTS 2015 data the released model is trained on (OTMultiClass.nii.gz).
BRATS_LABELS = ("background", "necrosis", "edema", "non-enhancing", "enhancing")
ACTIVATIONS = ("prelu", "relu", "elu", "linear")
MAX_LAYERS = 64
MAX_KERNEL = 15
MAX_FACTOR = 16
MAX_SEGMENT = 1024
PAPER_FEATURE_MAPS = (30, 30, 40, 40, 40, 40, 50, 50)


def _cubes(n: int, k: int = 3) -> list[list[int]]:
    return [[k, k, k] for _ in range(n)]


@strict
class DeepMedicConfig(MedPreTrainedConfig):
    """A multi-scale 3D CNN: one normal-resolution pathway, parallel subsampled pathways, FC layers as convs.

    The defaults are the `released` preset: the original repository's current modelConfig.cfg
    (2 channels, 5 classes, pathways at x1, x3 and x5, residuals at layers 4, 6, 8, FC 250-250 with a 3^3
    first kernel, 2,008,901 parameters). `DeepMedicConfig.paper()` is the MedIA 2017 network.

    normal_feature_maps / normal_kernel_sizes: output channels and kernel (3 ints) of each layer.
    subsampled_feature_maps / subsampled_kernel_sizes / subsampled_residual_layers / subsampled_dropout_rates:
        the same for every subsampled pathway; None mirrors the normal pathway. Every pathway must have
        the normal pathway's receptive field (as the original requires).
    subsample_factors: one [f, f, f] per subsampled pathway (input = every f-th voxel); [] for none.
    fc_feature_maps: hidden FC layers (1^3 convs) after the concatenation; the classification layer is extra.
    fc_first_kernel_size: kernel of the first FC layer, mirror-padded so the output keeps its size.
    fc_residual_layers: residuals in the FC layers (counting the first FC layer as 1; hidden layers only).
    fc_dropout_rates: one rate per FC layer including the classification layer ([] = no dropout).
    bn_moving_average_batches: batch norm averages its inference statistics over about this many batches
        (the original keeps a window of N batches; torch keeps an exponential average with momentum
        2/(N+1), the same centre of mass); 0 disables batch norm (per-channel biases instead).
    class_weights: per-class weights of the cross-entropy (the original's weightPerClass); None = equal.
    """

    model_type = "medhub-deepmedic"

    in_channels: int = 2
    channel_names: list[str] | None = field(default_factory=lambda: ["flair", "t1c"])
    modality: str | None = "MR"
    normal_feature_maps: list[int] = field(default_factory=lambda: list(PAPER_FEATURE_MAPS))
    normal_kernel_sizes: list[list[int]] = field(default_factory=lambda: _cubes(8))
    normal_residual_layers: list[int] = field(default_factory=lambda: [4, 6, 8])
    normal_dropout_rates: list[float] = field(default_factory=list)
    subsample_factors: list[list[int]] = field(default_factory=lambda: [[3, 3, 3], [5, 5, 5]])
    subsampled_feature_maps: list[int] | None = None
    subsampled_kernel_sizes: list[list[int]] | None = None
    subsampled_residual_layers: list[int] | None = None
    subsampled_dropout_rates: list[float] = field(default_factory=list)
    fc_feature_maps: list[int] = field(default_factory=lambda: [250, 250])
    fc_first_kernel_size: list[int] = field(default_factory=lambda: [3, 3, 3])
    fc_residual_layers: list[int] = field(default_factory=lambda: [2])
    fc_dropout_rates: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.5])
    activation: Literal["prelu", "relu", "elu", "linear"] = "prelu"
    prelu_init: float = 0.01
    bn_moving_average_batches: int = 60
    conv_init_variance_scale: float = 2.0
    train_segment_size: list[int] = field(default_factory=lambda: [37, 37, 37])
    inference_segment_size: list[int] = field(default_factory=lambda: [45, 45, 45])
    class_weights: list[float] | None = None

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels", len(BRATS_LABELS)) == len(BRATS_LABELS):
            self.id2label = dict(enumerate(BRATS_LABELS))
            self.label2id = {name: i for i, name in self.id2label.items()}
        super().__post_init__(**kwargs)
        if self.label2id is None or len(self.label2id) != len(self.id2label):
            self.label2id = {name: i for i, name in self.id2label.items()}

    # -- presets ------------------------------------------------------------------------------------
    # Kamnitsas et al., MedIA 2017: normal + one x3 pathway, FC 150-150, no residuals, 25^3 -> 9^3.
    PAPER = dict(normal_residual_layers=[], subsample_factors=[[3, 3, 3]], fc_feature_maps=[150, 150],
                 fc_first_kernel_size=[1, 1, 1], fc_residual_layers=[], train_segment_size=[25, 25, 25],
                 inference_segment_size=[45, 45, 45])
    REFERENCE = {}  # the released model (the defaults)
    TINY = dict(normal_feature_maps=[4, 4, 6], normal_kernel_sizes=[[3, 3, 3]] * 3, normal_residual_layers=[3],
                subsample_factors=[[3, 3, 3]], fc_feature_maps=[8], fc_first_kernel_size=[3, 3, 3],
                fc_residual_layers=[], fc_dropout_rates=[0.0, 0.5], train_segment_size=[11, 11, 11],
                inference_segment_size=[11, 11, 11], num_labels=3)

    @classmethod
    def released(cls, **kwargs) -> DeepMedicConfig:
        """The original repository's examples/configFiles/deepMedic/model/modelConfig.cfg (2024)."""
        return cls(**kwargs)

    # -- derived architecture (read by the model) ---------------------------------------------------------
    @property
    def pathway_feature_maps(self) -> list[list[int]]:
        sub = self.subsampled_feature_maps or self.normal_feature_maps
        return [list(self.normal_feature_maps)] + [list(sub) for _ in self.subsample_factors]

    @property
    def pathway_kernel_sizes(self) -> list[list[list[int]]]:
        sub = self.subsampled_kernel_sizes or self.normal_kernel_sizes
        return [self.normal_kernel_sizes] + [sub for _ in self.subsample_factors]

    @property
    def pathway_residual_layers(self) -> list[list[int]]:
        sub = self.subsampled_residual_layers
        sub = self.normal_residual_layers if sub is None else sub
        return [self.normal_residual_layers] + [sub for _ in self.subsample_factors]

    @property
    def pathway_dropout_rates(self) -> list[list[float]]:
        return [self.normal_dropout_rates] + [self.subsampled_dropout_rates for _ in self.subsample_factors]

    @property
    def pathway_factors(self) -> list[list[int]]:
        return [[1, 1, 1]] + [list(f) for f in self.subsample_factors]

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        """Receptive field of the normal pathway at its output (17^3 for 8 layers of 3^3)."""
        return receptive_field_of(self.normal_kernel_sizes)

    # -- validation -------------------------------------------------------------------------------------
    def check(self) -> None:
        name = type(self).__name__
        check_choice(self, "activation", ACTIVATIONS)
        check_int_list(self, "normal_feature_maps", 1, MAX_WIDTH)
        if self.fc_feature_maps:  # [] is allowed: the classification layer follows the concatenation
            check_int_list(self, "fc_feature_maps", 1, MAX_WIDTH)
        if self.subsampled_feature_maps is not None:
            check_int_list(self, "subsampled_feature_maps", 1, MAX_WIDTH)
        check_int_list(self, "fc_first_kernel_size", 1, MAX_KERNEL, length=3)
        check_int_list(self, "train_segment_size", 1, MAX_SEGMENT, length=3)
        check_int_list(self, "inference_segment_size", 1, MAX_SEGMENT, length=3)
        if len(self.normal_feature_maps) > MAX_LAYERS or len(self.fc_feature_maps) > MAX_DEPTH:
            raise ConfigError(f"{name}: at most {MAX_LAYERS} pathway layers and {MAX_DEPTH} FC layers")
        check_int(self, "bn_moving_average_batches", 0, 10**6)
        if any(k % 2 == 0 for k in self.fc_first_kernel_size):
            raise ConfigError(f"{name}.fc_first_kernel_size={self.fc_first_kernel_size}: expected odd sizes "
                              "(the mirror padding keeps the size only for odd kernels)")
        self._check_factors()
        self._check_pathways()
        self._check_rates("fc_dropout_rates", len(self.fc_feature_maps) + 1)
        self._check_layers("fc_residual_layers", self.fc_residual_layers, len(self.fc_feature_maps))
        if self.class_weights is not None and (
            len(self.class_weights) != self.num_labels or any(not w >= 0 for w in self.class_weights)
        ):
            raise ConfigError(f"{name}.class_weights={self.class_weights}: expected {self.num_labels} weights >= 0")
        for f in ("prelu_init", "conv_init_variance_scale"):
            value = getattr(self, f)
            if not isinstance(value, (int, float)) or not 0 <= value < 1e3:
                raise ConfigError(f"{name}.{f}={value!r}: expected a number in [0, 1000)")
        rf = self.receptive_field
        for f in ("train_segment_size", "inference_segment_size"):
            if any(s < r for s, r in zip(getattr(self, f), rf)):
                raise ConfigError(f"{name}.{f}={getattr(self, f)}: must be at least the receptive field {list(rf)}")

    def _check_factors(self) -> None:
        name = type(self).__name__
        for factor in self.subsample_factors:
            if (not isinstance(factor, list) or len(factor) != 3
                    or not all(isinstance(v, int) and 1 <= v <= MAX_FACTOR for v in factor)):
                raise ConfigError(f"{name}.subsample_factors={self.subsample_factors}: expected a list of "
                                  f"[f, f, f] with integers in [1, {MAX_FACTOR}]")

    def _check_pathways(self) -> None:
        name = type(self).__name__
        normal_rf = receptive_field_of(self._checked_kernels("normal_kernel_sizes", len(self.normal_feature_maps)))
        self._check_rates("normal_dropout_rates", len(self.normal_feature_maps))
        self._check_layers("normal_residual_layers", self.normal_residual_layers, len(self.normal_feature_maps))
        if not self.subsample_factors:
            return
        n_sub = len(self.pathway_feature_maps[1])
        sub_rf = receptive_field_of(self._checked_kernels(
            "subsampled_kernel_sizes" if self.subsampled_kernel_sizes is not None else "normal_kernel_sizes", n_sub))
        if sub_rf != normal_rf:
            raise ConfigError(f"{name}.subsampled_kernel_sizes: the subsampled pathways' receptive field "
                              f"{list(sub_rf)} "
                              f"must equal the normal pathway's {list(normal_rf)} (as in the original)")
        self._check_rates("subsampled_dropout_rates", n_sub)
        self._check_layers("subsampled_residual_layers", self.pathway_residual_layers[1], n_sub)

    def _checked_kernels(self, field_name: str, n_layers: int) -> list[list[int]]:
        kernels = getattr(self, field_name)
        ok = isinstance(kernels, list) and len(kernels) == n_layers and all(
            isinstance(k, list) and len(k) == 3 and all(isinstance(v, int) and 1 <= v <= MAX_KERNEL for v in k)
            for k in kernels)
        if not ok:
            raise ConfigError(f"{type(self).__name__}.{field_name}={kernels}: expected {n_layers} kernels "
                              f"[kx, ky, kz] (one per layer) with sizes in [1, {MAX_KERNEL}]")
        return kernels

    def _check_rates(self, field_name: str, n_layers: int) -> None:
        rates = getattr(self, field_name)
        if rates and (len(rates) != n_layers or not all(isinstance(r, (int, float)) and 0 <= r < 1 for r in rates)):
            raise ConfigError(f"{type(self).__name__}.{field_name}={rates}: expected [] or {n_layers} rates in [0, 1)")

    def _check_layers(self, field_name: str, layers: list[int], n_layers: int) -> None:
        if any(not isinstance(i, int) or not 2 <= i <= n_layers for i in layers):
            raise ConfigError(f"{type(self).__name__}.{field_name}={layers}: expected layer numbers in "
                              f"[2, {n_layers}] (counting from 1; a residual adds the input of the previous layer)")


def receptive_field_of(kernel_sizes: list[list[int]]) -> tuple[int, int, int]:
    """Receptive field of a stack of stride-1 convolutions."""
    return tuple(1 + sum(k[d] - 1 for k in kernel_sizes) for d in range(3))
