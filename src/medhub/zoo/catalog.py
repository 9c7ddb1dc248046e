"""The catalogue of medhub's zoo checkpoints: one typed record per id (what torchvision's `Weights` and timm's
`PretrainedCfg` are), read by `medhub zoo list`, the model cards, the Spaces, the demo, the zoo build and the tests.

Adding a checkpoint is one `Checkpoint` here plus one recipe (`recipes/zoo/<id>.yaml` in a checkout); adding a
family is one folder under `medhub/models/`. The architecture and processor are plain data resolved through the
registry (`config()`, `processor()`), so this module imports no model code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ModelNotFoundError
from ..registry import CONFIG_REGISTRY, PROCESSOR_REGISTRY

ORG = "medhub"
SIZE_BUDGET_MB = 100.0  # all committed zoo weights together
DEMO_KINDS = ("classify", "segment2d", "segment3d")


def _frozen(values: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class SpaceExample:
    """A file a checkpoint's Space ships in its `examples/` folder (`medhub spaces build` writes it).

    path: relative to a folder laid out like ../shared/data, which it is cut from, and to the Space's `examples/`
    (so the demo finds it there as it finds the shared data); crop: (start, stop) per array axis (rows, columns of
    an image; the voxel axes of a NIfTI volume, whose affine follows the crop), () for the whole file; credit: the
    source and the licence that allows shipping it.
    """

    path: str
    credit: str
    crop: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Checkpoint:
    """One zoo checkpoint, published as `medhub/<id>`.

    model_type / config_kwargs: the architecture (`config()`), which the demo runs with random weights, under a
    banner, while the weights are missing; processor_kwargs: its preprocessing (`processor()`), the same as
    the stored `preprocessor_config.json`; demo: the Space kind ("classify", "segment2d", "segment3d") and
    `examples`, paths relative to a folder laid out like ../shared/data; headline / headline_metric: the table's
    metric label and its key in the card's metrics; license: the weights' licence (a Hub licence id);
    budget_mb: the most its float16 weights may take; data: the dataset's short name, data_credit: its source and
    licence in a sentence; hardware: the Space's suggested hardware; usage: what the Space asks of its user (its
    README); space_examples: the files its Space ships (cut from `examples` and what goes with them, e.g. a
    ground-truth mask), only those whose licence allows it.
    """

    id: str
    model_type: str
    task: str
    title: str
    description: str
    data: str
    data_credit: str
    license: str
    headline: str
    headline_metric: str
    budget_mb: float
    demo: str
    config_kwargs: Mapping[str, Any] = field(default_factory=_frozen)
    processor_kwargs: Mapping[str, Any] = field(default_factory=_frozen)
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    hardware: str = "zero-a10g"
    usage: str = ""
    space_examples: tuple[SpaceExample, ...] = ()

    @property
    def repo_id(self) -> str:
        return f"{ORG}/{self.id}"

    @property
    def recipe(self) -> str:
        """The recipe that builds it, relative to a medhub checkout."""
        return f"recipes/zoo/{self.id}.yaml"

    @property
    def family(self) -> str:
        return self.model_type.removeprefix("medhub-")

    @property
    def short_title(self) -> str:
        """The title without its parenthesised task (a tab label)."""
        return self.title.split(" (")[0]

    @property
    def slug(self) -> str:
        return self.id.replace("-", "_")

    def config(self, **overrides: Any):
        """The checkpoint's architecture as a config (random weights until trained), with `overrides`."""
        return CONFIG_REGISTRY[self.model_type](**{**self.config_kwargs, **overrides})

    def processor(self):
        """The checkpoint's image processor (the one its weights are stored with)."""
        values = dict(self.processor_kwargs)
        return PROCESSOR_REGISTRY[values["image_processor_type"]].from_dict(values)


_PNEUMONIA = {"in_channels": 1, "id2label": {0: "normal", 1: "pneumonia"}}
_BRATS_LABELS = {0: "background", 1: "necrosis", 2: "edema", 3: "non-enhancing", 4: "enhancing"}
_BRATS = {"in_channels": 2, "channel_names": ["flair", "t1c"], "num_labels": 5, "id2label": _BRATS_LABELS}
_XRAYS = ("chest-xray-samples/00000001_000.png", "chest-xray-samples/16747_3_1.jpg",
          "chest-xray-samples/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
          "chest-xray-samples/Fake_MONOHR1.dcm", "chest-xray-samples/tb0005.png")
_BRATS_EXAMPLES = ("brats2015-examples/brats_2013_pat0003_1/Flair_subtrMeanDivStd.nii.gz",
                   "brats2015-examples/brats_2013_pat0003_1/T1c_subtrMeanDivStd.nii.gz")
_PNEUMONIA_DATA = ("PneumoniaMNIST (MedMNIST v2, CC BY 4.0; Kermany et al. 2018 source images)")
_BRATS_DATA = "BraTS 2015 (Menze et al. 2015; CC BY-NC-SA 3.0: non-commercial use only)"
_NIH = "NIH ChestX-ray14 (NIH Clinical Center; public, no restrictions on use; Wang et al. 2017)"
_ISBI = "ISBI 2012 EM challenge data (Cardona et al. 2010; free for research use), cropped to 256x256 pixels"
_BRATS_CROP = ((58, 138), (113, 193), (56, 104))  # 80x80x48 voxels around the tumour core of brats_2013_pat0003_1
_BRATS_CREDIT = ("BraTS 2015 (Menze et al. 2015), CC BY-NC-SA 3.0 "
                 "(https://creativecommons.org/licenses/by-nc-sa/3.0/), "
                 "cropped to 80x80x48 voxels around the tumour")
_CLASSIFY_USAGE = ("Upload a chest radiograph (PNG, JPEG or DICOM). The app shows the image as the model sees it "
                   "(DICOM window / VOI LUT and MONOCHROME1 inversion applied), the probability of each label, and the "
                   "class activation map (CAM, or Grad-CAM) over the image with an opacity slider.")
_BRATS_USAGE = ("Upload one NIfTI file per MRI channel (FLAIR, T1c; or each as a zip of a DICOM series). The app "
                "segments a centred sub-volume by default (whole-volume inference takes minutes on a CPU; the choice "
                "is shown with the result), shows axial / coronal / sagittal slices with sliders, the volume of each "
                "class in ml, and the mask as a NIfTI in the input's geometry.")
_BRATS_SPACE_EXAMPLES = tuple(SpaceExample(path, _BRATS_CREDIT, _BRATS_CROP) for path in _BRATS_EXAMPLES)
# The BraTS examples as the original DeepMedic redistributes them: LPS-stored, 1 mm, already z-scored in the
# brain (background a constant), skull-stripped: the processor keeps them as they are, as training saw them.
_BRATS_PROCESSOR = {"image_processor_type": "VolumeImageProcessor", "channel_names": ["flair", "t1c"],
                    "orientation": "LPS", "target_spacing": [1.0, 1.0, 1.0], "intensity_normalization": "none",
                    "mask_name": "brainmask", "mask_fallback": "foreground"}


def _radiograph(size: int) -> dict[str, Any]:
    return {"image_processor_type": "RadiographImageProcessor", "num_channels": 1, "do_resize": True,
            "size": {"height": size, "width": size}, "resample": "bilinear", "do_normalize": True,
            "image_mean": [0.5], "image_std": [0.25]}


def _pneumonia(id: str, model_type: str, family: str, paper: str, size: int, budget: float,
               aliases: tuple[str, ...] = (), **config: Any) -> Checkpoint:
    return Checkpoint(
        id=id, model_type=model_type, task="image-classification", title=f"{family} (pneumonia)",
        description=f"Chest radiograph -> normal / pneumonia, with the class activation map ({paper}).",
        data="PneumoniaMNIST", data_credit=_PNEUMONIA_DATA, license="cc-by-4.0", headline="AUROC",
        headline_metric="auroc", budget_mb=budget, demo="classify", config_kwargs=_frozen({**_PNEUMONIA, **config}),
        processor_kwargs=_frozen(_radiograph(size)), examples=_XRAYS, aliases=aliases, usage=_CLASSIFY_USAGE,
        space_examples=(SpaceExample(_XRAYS[0], _NIH),))


CHECKPOINTS: tuple[Checkpoint, ...] = (
    _pneumonia("chexnet-pneumonia", "medhub-chexnet", "CheXNet", "Rajpurkar et al. 2017", 48, 15.0,
               aliases=("chexnet",), problem_type="single_label_classification"),
    _pneumonia("resnet18-pneumonia", "medhub-resnet", "ResNet-18", "He et al. 2016", 64, 23.0, depth=18,
               problem_type="single_label_classification"),
    _pneumonia("vgg16-pneumonia", "medhub-vgg", "VGG-16", "Simonyan & Zisserman 2015", 32, 30.0, depth=16,
               batch_norm=True, classifier_type="gap", problem_type="single_label_classification"),
    Checkpoint(
        id="unet-isbi2012", model_type="medhub-unet", task="image-segmentation", title="U-Net (ISBI 2012 EM)",
        description="Electron-microscopy section -> membrane / cell interior (Ronneberger et al. 2015).",
        data="ISBI 2012 EM",
        data_credit="ISBI 2012 EM segmentation challenge (Cardona et al. 2010; free for research use)",
        license="other", headline="Rand error (watershed cells)", headline_metric="rand_error_watershed",
        budget_mb=16.0, demo="segment2d",
        config_kwargs=_frozen({"in_channels": 1, "num_labels": 2, "id2label": {0: "membrane", 1: "cell"},
                               "base_width": 32, "depth": 4, "padding": "same", "norm": "batch", "dropout": 0.0,
                               "loss": "weighted_ce"}),
        processor_kwargs=_frozen({"image_processor_type": "GreyscaleImageProcessor", "do_normalize": True,
                                  "image_mean": [0.5], "image_std": [0.2]}),
        examples=("isbi2012-em/train/image/0.png", "isbi2012-em/unlabeled/test_0.png"),
        usage="Upload an EM section (PNG, JPEG or DICOM). The app overlays the predicted mask (opacity slider), lists "
              "the area of each class and offers the mask as a PNG of label values; upload the ground-truth label "
              "image as well to see the Dice score per class.",
        space_examples=tuple(SpaceExample(f"isbi2012-em/train/{kind}/0.png", _ISBI, ((128, 384), (128, 384)))
                             for kind in ("image", "label"))),
    Checkpoint(
        id="attention-unet-brats", model_type="medhub-attention-unet", task="image-segmentation",
        title="Attention U-Net (BraTS)",
        description="Brain MRI (FLAIR + T1c) -> tumour sub-regions, with the attention gates' maps "
                    "(Oktay et al. 2018).",
        data="BraTS 2015 examples", data_credit=_BRATS_DATA, license="cc-by-nc-sa-3.0",
        headline="whole-tumour Dice", headline_metric="dice_whole_tumor", budget_mb=10.0, demo="segment3d",
        config_kwargs=_frozen({**_BRATS, "spatial_dims": 3, "base_width": 8, "depth": 4, "norm": "batch",
                               "deep_supervision": True, "loss": "dice_ce"}),
        processor_kwargs=_frozen(_BRATS_PROCESSOR), examples=_BRATS_EXAMPLES, usage=_BRATS_USAGE,
        space_examples=_BRATS_SPACE_EXAMPLES),
    Checkpoint(
        id="deepmedic-brats", model_type="medhub-deepmedic", task="image-segmentation", title="DeepMedic (BraTS)",
        description="Brain MRI (FLAIR + T1c) -> tumour sub-regions, multi-scale 3D CNN (Kamnitsas et al. 2017).",
        data="BraTS 2015 examples", data_credit=_BRATS_DATA, license="cc-by-nc-sa-3.0",
        headline="whole-tumour Dice", headline_metric="dice_whole_tumor", budget_mb=10.0, demo="segment3d",
        config_kwargs=_frozen({**_BRATS, "normal_feature_maps": [15, 15, 20, 20, 20, 20, 25, 25],
                               "fc_feature_maps": [100, 100], "fc_dropout_rates": [0.0, 0.5, 0.5],
                               "train_segment_size": [37, 37, 37], "inference_segment_size": [61, 61, 61],
                               "modality": "MR"}),
        processor_kwargs=_frozen(_BRATS_PROCESSOR), examples=_BRATS_EXAMPLES, usage=_BRATS_USAGE,
        space_examples=_BRATS_SPACE_EXAMPLES),
)


def canonical_id(name: str) -> str:
    """`name` without the `medhub/` prefix, aliases resolved ("medhub/chexnet" -> "chexnet-pneumonia")."""
    name = name.removeprefix(f"{ORG}/")
    for checkpoint in CHECKPOINTS:
        if name in checkpoint.aliases:
            return checkpoint.id
    return name


def checkpoint(name: str) -> Checkpoint:
    """The record of zoo id `name` (with or without `medhub/`, aliases allowed)."""
    wanted = canonical_id(name)
    for candidate in CHECKPOINTS:
        if candidate.id == wanted:
            return candidate
    raise ModelNotFoundError(f"{name!r} is not a medhub zoo checkpoint; the zoo has "
                             f"{', '.join(c.id for c in CHECKPOINTS)}")


__all__ = ["CHECKPOINTS", "Checkpoint", "DEMO_KINDS", "ORG", "SIZE_BUDGET_MB", "SpaceExample", "canonical_id",
           "checkpoint"]
