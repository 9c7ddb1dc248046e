"""medhub.pipelines with two tiny test-only models (a 1-conv classifier and a 1-conv segmenter).

They go through the same registry as the families; the pipelines rely only on forward(pixel_values)
-> .logits, the config and the attached image processor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from torch import nn
from transformers.utils import ModelOutput

import medhub
from medhub.errors import ConfigError
from medhub.inference import OverlapTileInferer, SlidingWindowInferer
from medhub.pipelines import SegmentationPipeline, pipeline
from medhub.processing import GreyscaleImageProcessor, RadiographImageProcessor, VolumeImageProcessor

DICOM_NAME = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


class PipeClsConfig(medhub.MedPreTrainedConfig):
    model_type = "medhub-test-pipe-cls"


class PipeSegConfig(medhub.MedPreTrainedConfig):
    """padding=0 gives a 'valid' conv whose output is 2 pixels smaller than its input (like U-Net)."""

    model_type = "medhub-test-pipe-seg"
    spatial_dims: int = 2
    padding: int = 1


@dataclass
class PipeOutput(ModelOutput):
    logits: torch.Tensor | None = None


class PipeClassifier(medhub.MedPreTrainedModel):
    config_class = PipeClsConfig

    def __init__(self, config):
        super().__init__(config)
        self.conv = nn.Conv2d(config.in_channels, config.num_labels, kernel_size=1)
        self.post_init()

    def forward(self, pixel_values, labels=None):
        return PipeOutput(logits=self.conv(pixel_values).mean(dim=(2, 3)))


class PipeSegmenter(medhub.MedPreTrainedModel):
    """A 'valid' conv (padding=0) declares the overlap-tile inferer, as the paper's U-Net does."""

    config_class = PipeSegConfig

    def __init__(self, config):
        super().__init__(config)
        conv = nn.Conv3d if config.spatial_dims == 3 else nn.Conv2d
        self.conv = conv(config.in_channels, config.num_labels, kernel_size=3, padding=config.padding)
        self.post_init()

    def forward(self, pixel_values, labels=None):
        return PipeOutput(logits=self.conv(pixel_values))

    def inferer_class(self):
        return OverlapTileInferer if self.config.padding == 0 else SlidingWindowInferer

    def valid_input_size(self, size):
        return size

    def output_size(self, size):
        return tuple(s - 2 for s in size)


medhub.register_model(PipeClsConfig, PipeClassifier, task="image-classification")
medhub.register_model(PipeSegConfig, PipeSegmenter, task="image-segmentation")
medhub.register_processor(PipeClsConfig, RadiographImageProcessor)


def _classifier(problem_type=None, num_labels=3):
    torch.manual_seed(0)
    labels = {i: name for i, name in enumerate(["normal", "pneumonia", "effusion"][:num_labels])}
    model = PipeClassifier(PipeClsConfig(num_labels=num_labels, id2label=labels, problem_type=problem_type))
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([1.0, -1.0, 0.5][:num_labels]).view(-1, 1, 1, 1))
        model.conv.bias.copy_(torch.tensor([0.0, 0.2, -0.3][:num_labels]))
    return model.eval()


def _threshold_segmenter(padding=1, spatial_dims=2):
    """Two classes; logit of class 1 = 20 * (centre pixel - 0.5), class 0 = 0: 'foreground' = bright pixels."""
    config = PipeSegConfig(num_labels=2, id2label={0: "background", 1: "cell"}, padding=padding,
                           spatial_dims=spatial_dims)
    model = PipeSegmenter(config)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.bias.zero_()
        centre = (1, 0) + (1,) * spatial_dims
        model.conv.weight[centre] = 20.0
        model.conv.bias[1] = -10.0
    return model.eval()


# -- classification -------------------------------------------------------------------------------------------


def _index(model, label):
    return {name: i for i, name in model.config.id2label.items()}[label]


def _expected_scores(model, processor, image, activation):
    with torch.no_grad():
        logits = model(processor(image)["pixel_values"]).logits[0]
    return activation(logits).tolist()


def test_transformers_pipeline_with_medhub_classifier(shared_data):
    path = shared_data / "chest-xray-samples" / "00000001_000.png"
    model, processor = _classifier(), RadiographImageProcessor(size=64)
    classify = transformers.pipeline("image-classification", model=model, image_processor=processor)
    result = classify(str(path), top_k=3)
    expected = _expected_scores(model, processor, Image.open(path).convert("RGB"), lambda x: x.softmax(-1))
    ranked = sorted(model.config.id2label.values(), key=lambda n: -expected[_index(model, n)])
    assert [r["label"] for r in result] == ranked
    assert sum(r["score"] for r in result) == pytest.approx(1.0)
    for r in result:
        assert r["score"] == pytest.approx(expected[_index(model, r["label"])], rel=1e-5)


def test_multi_label_classifier_gives_sigmoid_scores_and_reads_dicom(shared_data):
    model = _classifier(problem_type="multi_label_classification")
    model.image_processor = RadiographImageProcessor(size=64)  # as from_pretrained attaches it
    classify = pipeline("image-classification", model)
    path = shared_data / "chest-xray-samples" / "Fake_MONOHR1.dcm"
    result = classify(str(path), top_k=3)
    expected = _expected_scores(model, model.image_processor, path, torch.sigmoid)
    assert sum(r["score"] for r in result) != pytest.approx(1.0)
    for r in result:
        assert r["score"] == pytest.approx(expected[_index(model, r["label"])], rel=1e-5)


def test_classifier_without_processor_is_a_clear_error():
    with pytest.raises(ConfigError, match="has no image processor"):
        pipeline("image-classification", _classifier())


def test_processor_registers_with_auto_image_processor(tmp_path):
    model = _classifier()
    model.image_processor = RadiographImageProcessor(num_channels=1, size=32)
    model.save_pretrained(tmp_path)
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert isinstance(loaded.image_processor, RadiographImageProcessor)
    assert loaded.image_processor.to_dict() == model.image_processor.to_dict()
    auto = transformers.AutoImageProcessor.from_pretrained(tmp_path)
    assert type(auto) is RadiographImageProcessor and auto.size == {"height": 32, "width": 32}


# -- segmentation ------------------------------------------------------------------------------------------------


def test_segmentation_masks_at_input_size_on_real_em(shared_data):
    path = shared_data / "isbi2012-em" / "train" / "image" / "0.png"
    raw = np.asarray(Image.open(path), dtype=np.float32) / 255.0
    segment = pipeline("image-segmentation", _threshold_segmenter(), image_processor=GreyscaleImageProcessor())
    result = segment(str(path))
    assert [r["label"] for r in result] == ["background", "cell"]
    cell = result[1]
    assert cell["mask"].mode == "L" and cell["mask"].size == (512, 512)
    mask = np.asarray(cell["mask"]) == 255
    np.testing.assert_array_equal(mask, raw > 0.5)
    assert cell["area"] == int((raw > 0.5).sum()) and result[0]["area"] == 512 * 512 - cell["area"]
    assert 0.5 < cell["score"] <= 1.0


def test_segmentation_resizes_back_and_handles_valid_convolutions():
    image = np.zeros((40, 60), np.uint8)
    image[10:30, 20:50] = 255
    processor = GreyscaleImageProcessor(do_resize=True, size=32)
    segment = pipeline("image-segmentation", _threshold_segmenter(padding=0), image_processor=processor)
    result = segment(image)  # valid conv: the overlap-tile strategy mirror-pads the border, full coverage
    mask = np.asarray(result[1]["mask"]) == 255
    assert mask.shape == (40, 60) and "border" not in result[1]
    assert mask[12:28, 22:48].all() and not mask[:8].any() and not mask[:, :18].any()
    assert mask.sum() == pytest.approx(20 * 30, rel=0.1)


def test_segmentation_single_label_sigmoid_and_3d():
    config = PipeSegConfig(num_labels=1, id2label={0: "tumour"}, spatial_dims=3)
    model = PipeSegmenter(config)
    with torch.no_grad():
        model.conv.weight.zero_()
        model.conv.weight[0, 0, 1, 1, 1] = 10.0
        model.conv.bias.fill_(-5.0)
    volume = np.zeros((6, 7, 8), np.float32)
    volume[2:4, 3:5, 4:7] = 1.0
    segment = SegmentationPipeline(model.eval(), VolumeImageProcessor(orientation=None))
    (tumour,) = segment(volume)
    assert tumour["label"] == "tumour" and tumour["mask"].shape == (6, 7, 8)
    np.testing.assert_array_equal(tumour["mask"], volume.astype(np.uint8))
    assert tumour["area"] == 12 and tumour["score"] == pytest.approx(1 / (1 + np.exp(-5.0)), rel=1e-5)
    np.testing.assert_array_equal(tumour["affine"], np.eye(4))
