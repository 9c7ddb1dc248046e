"""ResNet family: torchvision parameter counts and keys, head/loss, fine-tuning, round trip, converter parity."""

from __future__ import annotations

import pytest
import torch
from classifier_finetune_checks import check_backward, check_fine_tuning, check_losses, check_round_trip
from reference_torchvision import resnet_forward, resnet_state_dict
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import medhub
from medhub.models.resnet import ResNetConfig, ResNetForImageClassification, ResNetModel
from medhub.models.resnet.conversion_resnet import ARCHS, convert_state_dict

TORCHVISION_PARAMS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}


def tiny(**kwargs) -> ResNetForImageClassification:
    torch.manual_seed(0)
    return ResNetForImageClassification(ResNetConfig(**{"depth": 18, "num_labels": 2, **kwargs}))


@pytest.fixture(scope="module")
def image():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", list(TORCHVISION_PARAMS))
def test_parameter_count_matches_torchvision(arch):
    with torch.device("meta"):
        model = ResNetForImageClassification(ResNetConfig.from_arch(arch, num_labels=1000))
    assert model.num_parameters() == TORCHVISION_PARAMS[arch]
    assert list(ARCHS) == list(TORCHVISION_PARAMS)


def test_state_dict_keys_are_torchvision_keys():
    with torch.device("meta"):
        basic = ResNetForImageClassification(ResNetConfig(depth=18, num_labels=1000)).state_dict()
        bottleneck = ResNetForImageClassification(ResNetConfig(depth=50, num_labels=1000))
    assert list(basic)[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                               "bn1.num_batches_tracked"]
    assert list(basic)[-2:] == ["fc.weight", "fc.bias"] and len(basic) == 122
    assert "layer1.0.downsample.0.weight" not in basic
    assert basic["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    keys = bottleneck.state_dict()
    assert keys["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert keys["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1) and keys["fc.weight"].shape == (1000, 2048)
    # v1.5: the stride of a bottleneck sits on its 3x3 convolution.
    assert bottleneck.layer2[0].conv1.stride == (1, 1) and bottleneck.layer2[0].conv2.stride == (2, 2)


def test_forward_shapes_and_hidden_states(image):
    model = tiny(num_labels=3).eval()
    out = model(image, output_hidden_states=True)
    assert out.logits.shape == (2, 3) and out.loss is None
    assert [tuple(h.shape) for h in out.hidden_states] == [
        (2, 64, 8, 8), (2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2), (2, 512, 1, 1)]
    assert model(image).hidden_states is None
    loss, logits = model(image, labels=torch.tensor([0, 1]), return_dict=False)
    assert logits.shape == (2, 3) and loss.ndim == 0
    backbone = ResNetModel(ResNetConfig(depth=50, in_channels=1)).eval()
    features = backbone(image[:, :1])
    assert features.pooler_output.shape == (2, 2048) and features.last_hidden_state.shape == (2, 2048, 1, 1)


def test_bad_input_is_refused(image):
    model = tiny()
    with pytest.raises(medhub.InputError, match="expected 3 channel"):
        model(image[:, :1])
    with pytest.raises(medhub.InputError, match="too small"):
        model(torch.zeros(1, 3, 16, 16))


def test_losses_on_fixed_inputs(image):
    def make(**kwargs):
        model = tiny(**kwargs)
        return model, model.fc

    check_losses(make, image)


def test_fine_tuning_freeze_and_parameter_groups():
    check_fine_tuning(tiny(), {"fc.weight", "fc.bias"})


def test_backward_gives_finite_gradients(image):
    check_backward(tiny(drop_rate=0.2), image)


def test_save_load_round_trip(image, tmp_path):
    model = tiny(id2label={0: "normal", 1: "pneumonia"}, drop_rate=0.3, modality="CR")
    check_round_trip(model, image, tmp_path)
    assert medhub.MedModel.from_pretrained(tmp_path).config.id2label == {0: "normal", 1: "pneumonia"}


def test_config_round_trip_and_validation():
    config = ResNetConfig.from_arch("resnet101", num_labels=14, problem_type="multi_label_classification",
                                    in_channels=1, drop_rate=0.2)
    again = ResNetConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict() and again.stage_blocks == (3, 4, 23, 3)
    assert again.block_type == "bottleneck"
    with pytest.raises(medhub.ConfigError, match="depth"):
        ResNetConfig(depth=20)
    with pytest.raises(medhub.ConfigError, match="drop_rate"):
        ResNetConfig(drop_rate=1.0)
    with pytest.raises(medhub.ConfigError, match="problem_type"):
        ResNetConfig(problem_type="regression")
    with pytest.raises(medhub.ConfigError, match="resnet18"):
        ResNetConfig.from_arch("resnet19")


def test_registered_with_auto_classes():
    config = AutoConfig.for_model("medhub-resnet", depth=18, num_labels=2)
    assert type(AutoModelForImageClassification.from_config(config)) is ResNetForImageClassification
    assert type(AutoModel.from_config(config)) is ResNetModel
    assert type(medhub.MedModel.from_config(config)) is ResNetForImageClassification
    assert ResNetForImageClassification.paper.title == "Deep Residual Learning for Image Recognition"
    assert "he2016deep" in ResNetForImageClassification.paper.bibtex


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_converter_matches_torchvision_forward(arch):
    state_dict = resnet_state_dict(arch)
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    model = convert_state_dict(state_dict, arch)
    assert model.config.num_labels == 1000 and not model.training
    with torch.no_grad():
        expected = resnet_forward(state_dict, x)
        torch.testing.assert_close(model(x).logits, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    # A new head: every other weight is the checkpoint's, the 2-class fc is fresh.
    finetune = convert_state_dict(state_dict, arch, num_labels=2)
    ours = finetune.state_dict()
    assert ours["fc.weight"].shape == (2, 2048 if arch == "resnet50" else 512)
    assert all(torch.equal(ours[k], v) for k, v in state_dict.items() if not k.startswith("fc."))
    assert finetune.config.weights_info["converted_from"] == f"torchvision {arch}"


def test_converter_one_channel_sums_rgb_filters():
    state_dict = resnet_state_dict("resnet18", seed=3)
    grey = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    rgb_model = convert_state_dict(state_dict, "resnet18", num_labels=2)
    grey_model = convert_state_dict(state_dict, "resnet18", num_labels=2, in_channels=1)
    grey_model.fc.load_state_dict(rgb_model.fc.state_dict())
    assert grey_model.conv1.weight.shape == (64, 1, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(grey_model(grey).logits, rgb_model(grey.expand(-1, 3, -1, -1)).logits,
                                   rtol=1e-4, atol=1e-4)


def test_converter_names_missing_unexpected_and_misshaped_keys():
    state_dict = resnet_state_dict("resnet18")
    broken = dict(state_dict)
    del broken["layer3.1.bn2.running_var"]
    broken["module.extra"] = torch.zeros(1)
    with pytest.raises(medhub.WeightsMismatchError, match=r"missing keys: layer3\.1\.bn2\.running_var.*unexpected "
                                                          r"keys: module\.extra"):
        convert_state_dict(broken, "resnet18")
    with pytest.raises(medhub.WeightsMismatchError, match=r"wrong shapes: fc\.bias \(10,\) \(expected \(1000,\)\), "
                                                          r"fc\.weight \(10, 512\)"):
        convert_state_dict(resnet_state_dict("resnet18", num_classes=10), "resnet18")
    with pytest.raises(medhub.WeightsMismatchError, match=r"missing keys: .*layer1\.0\.conv3\.weight"):
        convert_state_dict(state_dict, "resnet50")
    with pytest.raises(medhub.ConfigError, match="arch='resnet20'"):
        convert_state_dict(state_dict, "resnet20")
    # BatchNorm counters may be absent from old checkpoints: they do not change the outputs.
    old = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    assert convert_state_dict(old, "resnet18").config.num_labels == 1000
