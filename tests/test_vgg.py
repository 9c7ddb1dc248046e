"""VGG family: torchvision parameter counts and keys, both heads, fine-tuning, round trip, converter parity."""

from __future__ import annotations

import pytest
import torch
from classifier_finetune_checks import check_backward, check_fine_tuning, check_losses, check_round_trip
from reference_torchvision import vgg_features, vgg_forward, vgg_state_dict
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import medhub
from medhub.models.vgg import VGGConfig, VGGForImageClassification, VGGModel
from medhub.models.vgg.conversion_vgg import ARCHS, convert_state_dict

TORCHVISION_PARAMS = {
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
}


def tiny(**kwargs) -> VGGForImageClassification:
    """vgg11_bn with the small global-average-pooling head (9.2M parameters)."""
    torch.manual_seed(0)
    return VGGForImageClassification(VGGConfig(**{"depth": 11, "batch_norm": True, "classifier_type": "gap",
                                                  "num_labels": 2, **kwargs}))


@pytest.fixture(scope="module")
def image():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def vgg11_checkpoint():
    """A full-size random vgg11 ImageNet checkpoint in torchvision's layout (~0.5 GB, built once)."""
    return vgg_state_dict("vgg11", seed=5)


@pytest.mark.parametrize("arch", list(TORCHVISION_PARAMS))
def test_parameter_count_matches_torchvision(arch):
    with torch.device("meta"):
        model = VGGForImageClassification(VGGConfig.from_arch(arch, num_labels=1000))
    assert model.num_parameters() == TORCHVISION_PARAMS[arch]
    assert sorted(ARCHS) == sorted(TORCHVISION_PARAMS)


def test_state_dict_keys_are_torchvision_keys():
    with torch.device("meta"):
        plain = VGGForImageClassification(VGGConfig.from_arch("vgg16", num_labels=1000)).state_dict()
        bn = VGGForImageClassification(VGGConfig.from_arch("vgg16_bn", num_labels=1000)).state_dict()
        gap = VGGForImageClassification(VGGConfig.from_arch("vgg16", num_labels=2, classifier_type="gap"))
    conv_indices = [int(k.split(".")[1]) for k in plain if k.startswith("features") and k.endswith("weight")]
    assert conv_indices == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert [int(k.split(".")[1]) for k in bn if k.startswith("features") and k.endswith("running_var")][:3] == [1, 4, 8]
    assert "features.40.weight" in bn and "features.41.running_mean" in bn
    assert [k for k in plain if k.startswith("classifier")] == [
        f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert plain["classifier.0.weight"].shape == (4096, 25088)
    assert [k for k in gap.state_dict() if not k.startswith("features")] == ["classifier.weight", "classifier.bias"]
    assert gap.num_parameters() == 14_714_688 + 512 * 2 + 2  # torchvision vgg16 features + Linear(512, 2)


def test_forward_shapes_and_hidden_states(image):
    model = tiny(num_labels=3).eval()
    out = model(image, output_hidden_states=True)
    assert out.logits.shape == (2, 3) and out.loss is None
    assert [tuple(h.shape) for h in out.hidden_states] == [
        (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2), (2, 512, 1, 1)]
    small_imagenet_head = VGGForImageClassification(VGGConfig(depth=11, num_labels=5, classifier_hidden=32)).eval()
    assert small_imagenet_head(image).logits.shape == (2, 5)
    assert small_imagenet_head.classifier[0].weight.shape == (32, 512 * 7 * 7)
    features = VGGModel(VGGConfig(depth=13, in_channels=1)).eval()(image[:, :1])
    assert features.pooler_output.shape == (2, 512) and features.last_hidden_state.shape == (2, 512, 1, 1)


def test_bad_input_is_refused(image):
    model = tiny()
    with pytest.raises(medhub.InputError, match="expected 3 channel"):
        model(image[:, :1])
    with pytest.raises(medhub.InputError, match="too small"):
        model(torch.zeros(1, 3, 16, 16))


def test_losses_on_fixed_inputs(image):
    def make(**kwargs):
        model = tiny(**kwargs)
        return model, model.classifier

    check_losses(make, image)


def test_losses_with_the_imagenet_head(image):
    def make(**kwargs):
        model = VGGForImageClassification(VGGConfig(depth=11, classifier_hidden=16, **kwargs))
        return model, model.classifier[6]

    check_losses(make, image)


def test_fine_tuning_freeze_and_parameter_groups():
    check_fine_tuning(tiny(), {"classifier.weight", "classifier.bias"})
    imagenet_head = VGGForImageClassification(VGGConfig(depth=11, num_labels=2, classifier_hidden=16))
    check_fine_tuning(imagenet_head, {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")})


def test_backward_gives_finite_gradients(image):
    check_backward(tiny(), image)


def test_save_load_round_trip(image, tmp_path):
    model = tiny(id2label={0: "normal", 1: "pneumonia"}, in_channels=3, modality="CR")
    check_round_trip(model, image, tmp_path / "gap")
    small_imagenet_head = VGGForImageClassification(VGGConfig(depth=11, num_labels=2, classifier_hidden=16))
    check_round_trip(small_imagenet_head, image, tmp_path / "imagenet")


def test_config_round_trip_and_validation():
    config = VGGConfig.from_arch("vgg19_bn", num_labels=14, problem_type="multi_label_classification",
                                 in_channels=1, classifier_type="gap", drop_rate=0.2)
    again = VGGConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict() and (again.depth, again.batch_norm) == (19, True)
    assert again.layout.count("M") == 5 and len(again.layout) == 21
    for kwargs, field in (({"depth": 12}, "depth"), ({"classifier_type": "fc"}, "classifier_type"),
                          ({"classifier_hidden": 0}, "classifier_hidden"), ({"drop_rate": -0.1}, "drop_rate"),
                          ({"problem_type": "regression"}, "problem_type")):
        with pytest.raises(medhub.ConfigError, match=field):
            VGGConfig(**kwargs)
    with pytest.raises(medhub.ConfigError, match="vgg11_bn"):
        VGGConfig.from_arch("vgg16bn")


def test_registered_with_auto_classes():
    config = AutoConfig.for_model("medhub-vgg", depth=11, classifier_type="gap", num_labels=2)
    assert type(AutoModelForImageClassification.from_config(config)) is VGGForImageClassification
    assert type(AutoModel.from_config(config)) is VGGModel
    assert VGGForImageClassification.paper.title == "Very Deep Convolutional Networks for Large-Scale Image Recognition"
    assert "simonyan2015very" in VGGForImageClassification.paper.bibtex


def test_converter_full_imagenet_head_matches_torchvision_forward(vgg11_checkpoint):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    model = convert_state_dict(vgg11_checkpoint, "vgg11")
    assert model.num_parameters() == TORCHVISION_PARAMS["vgg11"] and not model.training
    with torch.no_grad():
        expected = vgg_forward(vgg11_checkpoint, x, "vgg11")
        torch.testing.assert_close(model(x).logits, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_converter_new_head_keeps_classifier_0_and_3(vgg11_checkpoint):
    model = convert_state_dict(vgg11_checkpoint, "vgg11", num_labels=2)
    ours = model.state_dict()
    assert ours["classifier.6.weight"].shape == (2, 4096)
    assert all(torch.equal(ours[k], v) for k, v in vgg11_checkpoint.items() if not k.startswith("classifier.6."))
    assert model.config.weights_info["head"].startswith("ImageNet classifier.0/.3 kept")


def test_converter_gap_head_matches_torchvision_features(arch="vgg11_bn"):
    state_dict = vgg_state_dict(arch, seed=6)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    model = convert_state_dict(state_dict, arch, num_labels=2, classifier_type="gap")
    assert model.config.classifier_type == "gap" and model.classifier.weight.shape == (2, 512)
    with torch.no_grad():
        expected = vgg_features(state_dict, x, arch)
        torch.testing.assert_close(model(x, output_hidden_states=True).hidden_states[-1], expected)
        pooled = expected.mean(dim=(2, 3))
        torch.testing.assert_close(model(x).logits, pooled @ model.classifier.weight.T + model.classifier.bias)


def test_converter_one_channel_sums_rgb_filters():
    state_dict = vgg_state_dict("vgg11_bn", seed=7)
    grey = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    rgb_model = convert_state_dict(state_dict, "vgg11_bn", num_labels=2, classifier_type="gap")
    grey_model = convert_state_dict(state_dict, "vgg11_bn", num_labels=2, in_channels=1, classifier_type="gap")
    grey_model.classifier.load_state_dict(rgb_model.classifier.state_dict())
    assert grey_model.features[0].weight.shape == (64, 1, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(grey_model(grey).logits, rgb_model(grey.expand(-1, 3, -1, -1)).logits,
                                   rtol=1e-4, atol=1e-5)


def test_converter_names_missing_unexpected_and_misshaped_keys():
    state_dict = vgg_state_dict("vgg11_bn", seed=8)
    broken = {k: v for k, v in state_dict.items() if k != "features.5.running_mean"}
    broken["features.3.weight"] = torch.zeros(3)
    with pytest.raises(medhub.WeightsMismatchError,
                       match=r"missing keys: features\.5\.running_mean; unexpected keys: features\.3\.weight"):
        convert_state_dict(broken, "vgg11_bn", classifier_type="gap")
    with pytest.raises(medhub.WeightsMismatchError, match=r"missing keys: features\.10\.bias.*unexpected keys: "
                                                          r"features\.12\.bias"):
        convert_state_dict(state_dict, "vgg13_bn", classifier_type="gap")
    with pytest.raises(medhub.ConfigError, match="arch='vgg12'"):
        convert_state_dict(state_dict, "vgg12")
