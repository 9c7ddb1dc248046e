"""CheXNet / DenseNet-121: layout, parameter counts, loss, converters (against an independent forward), hub round
trip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from reference_densenet import densenet_forward, legacy_key, random_densenet121_state_dict

import medhub
from medhub.errors import ConfigError, InputError, WeightsMismatchError
from medhub.losses.weighted_bce import bce_class_weights, weighted_bce_with_logits
from medhub.models.chexnet import (
    ARCHS,
    CHESTXRAY14_FINDINGS,
    CheXNetConfig,
    CheXNetForImageClassification,
    CheXNetModel,
    convert_state_dict,
)

TINY = dict(growth_rate=4, block_config=[1, 2], num_init_features=8, bn_size=2)


def tiny_model(**kwargs) -> CheXNetForImageClassification:
    torch.manual_seed(0)
    return CheXNetForImageClassification(CheXNetConfig(**{**TINY, **kwargs})).eval()


@pytest.fixture(scope="module")
def imagenet_sd() -> dict:
    return random_densenet121_state_dict(num_classes=1000)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


# -- architecture ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_labels, expected", [(14, 6_968_206), (1000, 7_978_856)])
def test_densenet121_parameter_count(num_labels, expected):
    with torch.device("meta"):
        model = CheXNetForImageClassification(CheXNetConfig(in_channels=3, num_labels=num_labels))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_state_dict_keys_are_torchvision_densenet121(imagenet_sd):
    with torch.device("meta"):
        model = CheXNetForImageClassification(CheXNetConfig(in_channels=3, num_labels=1000))
    keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(imagenet_sd)
    assert len(keys) == 727 - 121  # 727 tensors in torchvision's file minus its 121 BN batch counters
    assert {k: tuple(v.shape) for k, v in model.state_dict().items() if k in imagenet_sd} == {
        k: tuple(v.shape) for k, v in imagenet_sd.items()
    }


def test_config_defaults_are_the_paper():
    config = CheXNetConfig()
    densenet121 = (32, [6, 12, 24, 16], 64, 4)
    assert (config.growth_rate, config.block_config, config.num_init_features, config.bn_size) == densenet121
    assert config.labels == list(CHESTXRAY14_FINDINGS)
    assert config.labels[6] == "Pneumonia" and config.label2id["Hernia"] == 13
    assert config.problem_type == "multi_label_classification"
    assert config.min_input_size == 32
    pneumonia = CheXNetConfig.pneumonia(in_channels=1)
    assert (pneumonia.num_labels, pneumonia.problem_type, pneumonia.labels) == (
        2, "single_label_classification", ["normal", "pneumonia"])
    assert CheXNetConfig(num_labels=3).labels == ["LABEL_0", "LABEL_1", "LABEL_2"]


@pytest.mark.parametrize("bad, field", [
    (dict(growth_rate=0), "growth_rate"),
    (dict(block_config=[]), "block_config"),
    (dict(drop_rate=1.0), "drop_rate"),
    (dict(problem_type="regression"), "problem_type"),
    (dict(class_pos_weights=[0.5] * 14), "class_pos_weights"),
    (dict(class_pos_weights=[0.5] * 13, class_neg_weights=[0.5] * 13), "class_pos_weights"),
])
def test_config_rejects(bad, field):
    with pytest.raises(ConfigError, match=field):
        CheXNetConfig(**bad)


def test_forward_shapes_and_hidden_states():
    model = tiny_model(in_channels=1)
    out = model(torch.randn(2, 1, 32, 32), output_hidden_states=True)
    assert out.logits.shape == (2, 14) and out.loss is None
    # stem (8 @ 8x8), block1 (8+4), block2 (6+2*4 after transition 12->6, at 4x4), final maps
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 8, 8, 8), (2, 12, 8, 8), (2, 14, 4, 4), (2, 14, 4, 4)]
    assert (out.hidden_states[-1] >= 0).all()
    backbone = CheXNetModel(CheXNetConfig(**TINY, in_channels=1)).eval()
    backbone.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("classifier")})
    base = backbone(torch.ones(1, 1, 32, 32))
    assert base.pooler_output.shape == (1, 14)
    torch.testing.assert_close(base.last_hidden_state.mean(dim=(2, 3)), base.pooler_output)


def test_input_errors_name_the_problem():
    model = tiny_model(in_channels=1)
    with pytest.raises(InputError, match="expected 1 channel"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(InputError, match="too small"):
        model(torch.randn(1, 1, 4, 4))
    with pytest.raises(InputError, match="labels"):
        model(torch.randn(2, 1, 16, 16), labels=torch.ones(2, 13))


def test_fine_tune_freezes_backbone_only():
    model = tiny_model()
    model.freeze_backbone()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
    model.unfreeze()
    assert all(p.requires_grad for p in model.parameters())


# -- loss -------------------------------------------------------------------------------------------------
def test_weighted_bce_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = 1/2 and 3/4
    labels = torch.tensor([[1.0, 0.0]])
    # -0.8 log(1/2) and -0.5 log(1 - 3/4) = 0.8 ln 2 and ln 2; mean over 2 classes
    loss = weighted_bce_with_logits(logits, labels, [0.8, 0.5], [0.2, 0.5])
    assert loss.item() == pytest.approx(0.9 * math.log(2.0), rel=1e-6)


def test_weighted_bce_batch_weights_when_unset():
    # class 0: one positive of two -> w+ = w- = 1/2; class 1: no positive -> w+ = 1, w- = 0 (contributes 0)
    loss = weighted_bce_with_logits(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(2.0) / 4, rel=1e-6)


def test_bce_class_weights_from_counts():
    assert bce_class_weights([10, 50], 100) == ([0.9, 0.5], [0.1, 0.5])
    with pytest.raises(InputError, match="class 0"):
        bce_class_weights([101], 100)


def test_model_loss_uses_config_weights_and_cross_entropy():
    pos, neg = [0.9] * 14, [0.1] * 14
    model = tiny_model(class_pos_weights=pos, class_neg_weights=neg)
    x, labels = torch.randn(3, 1, 32, 32), (torch.rand(3, 14) > 0.5).float()
    out = model(x, labels=labels)
    torch.testing.assert_close(out.loss, weighted_bce_with_logits(out.logits, labels, pos, neg))
    single = CheXNetForImageClassification(CheXNetConfig.pneumonia(**TINY)).eval()
    y = torch.tensor([0, 1, 1])
    out = single(x, labels=y)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, y))


# -- converters -----------------------------------------------------------------------------------------
def test_torchvision_densenet121_parity(imagenet_sd, image):
    model = convert_state_dict(dict(imagenet_sd), "densenet121")
    assert model.config.num_labels == 1000 and model.config.in_channels == 3
    with torch.no_grad():
        torch.testing.assert_close(model(image).logits, densenet_forward(imagenet_sd, image), rtol=1e-4, atol=1e-5)
    legacy = convert_state_dict({legacy_key(k): v for k, v in imagenet_sd.items()}, "densenet121")
    assert all(torch.equal(a, b) for a, b in zip(legacy.state_dict().values(), model.state_dict().values()))


def test_grey_adaptation_equals_replicated_rgb(imagenet_sd, image):
    rgb = convert_state_dict(dict(imagenet_sd), "densenet121")
    grey = convert_state_dict(dict(imagenet_sd), "densenet121", in_channels=1)
    assert grey.config.in_channels == 1
    x = image[:, :1]
    with torch.no_grad():
        torch.testing.assert_close(grey(x).logits, rgb(x.repeat(1, 3, 1, 1)).logits, rtol=1e-4, atol=1e-5)


def test_new_head_keeps_backbone(imagenet_sd, image):
    model = convert_state_dict(dict(imagenet_sd), "densenet121", num_labels=14)
    assert model.config.labels == list(CHESTXRAY14_FINDINGS) and model.classifier.out_features == 14
    assert model.config.weights_info["trained"] is False
    assert torch.equal(model.features.denseblock4.denselayer16.conv2.weight,
                       imagenet_sd["features.denseblock4.denselayer16.conv2.weight"])


def test_chexnet_reproduction_checkpoint_parity(image):
    sd = random_densenet121_state_dict(num_classes=14, seed=2)
    checkpoint = {"epoch": 1, "best_loss": 0.5, "state_dict": {
        "module.densenet121." + legacy_key(k).replace("classifier.", "classifier.0."): v for k, v in sd.items()
    }}
    assert "module.densenet121.features.denseblock1.denselayer1.norm.1.weight" in checkpoint["state_dict"]
    assert "module.densenet121.classifier.0.weight" in checkpoint["state_dict"]
    model = convert_state_dict(checkpoint, "chexnet")
    assert model.config.labels == list(CHESTXRAY14_FINDINGS)
    with torch.no_grad():
        torch.testing.assert_close(model(image).logits, densenet_forward(sd, image), rtol=1e-4, atol=1e-5)


def test_converter_reports_missing_and_unexpected_keys(imagenet_sd):
    sd = dict(imagenet_sd)
    del sd["features.denseblock2.denselayer3.conv1.weight"]
    sd["features.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsMismatchError) as err:
        convert_state_dict(sd, "densenet121")
    assert "features.denseblock2.denselayer3.conv1.weight" in str(err.value)
    assert "features.extra.weight" in str(err.value)
    with pytest.raises(WeightsMismatchError, match=r"wrong shapes: features.norm5.bias \(3,\) \(expected \(1024,\)\)"):
        convert_state_dict({**imagenet_sd, "features.norm5.bias": torch.zeros(3)}, "densenet121")
    with pytest.raises(ConfigError, match="arch"):
        convert_state_dict(imagenet_sd, "resnet50")
    assert ARCHS == ("densenet121", "chexnet")


# -- hub ------------------------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    model = tiny_model(in_channels=1, class_pos_weights=[0.7] * 14, class_neg_weights=[0.3] * 14)
    model.save_pretrained(tmp_path)
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert type(loaded) is CheXNetForImageClassification
    assert loaded.config.labels == list(CHESTXRAY14_FINDINGS) and loaded.config.class_pos_weights == [0.7] * 14
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    assert "CheXNet: Radiologist-Level Pneumonia Detection" in (tmp_path / "README.md").read_text()
    processor = loaded.image_processor  # the paper's preprocessing travels with the weights
    assert (processor.num_channels, processor.size, processor.image_mean) == (1, {"height": 224, "width": 224}, [0.449])
