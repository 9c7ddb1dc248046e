"""Behaviour every registered medhub model type must have, parametrised over the registry.

Each family gets a tiny config here; a new family that registers itself without one fails
`test_every_family_has_a_tiny_config`.
"""

import json

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel

import medhub
from medhub.auto import MODEL_REGISTRY

TINY = {
    "medhub-unet": (lambda: medhub.UNetConfig(base_width=4, depth=2, padding="valid", num_labels=2),
                    (1, 1, 44, 44)),
    "medhub-attention-unet": (lambda: medhub.AttentionUNetConfig(spatial_dims=2, base_width=4, depth=3,
                                                                 num_labels=3), (1, 1, 32, 32)),
    "medhub-deepmedic": (lambda: medhub.DeepMedicConfig(
        normal_feature_maps=[4, 4, 6], normal_kernel_sizes=[[3, 3, 3]] * 3, normal_residual_layers=[3],
        subsample_factors=[[3, 3, 3]], fc_feature_maps=[8], fc_first_kernel_size=[3, 3, 3], fc_residual_layers=[],
        fc_dropout_rates=[0.0, 0.5], train_segment_size=[11, 11, 11], inference_segment_size=[11, 11, 11],
        num_labels=3), (2, 2, 21, 21, 21)),
    "medhub-chexnet": (lambda: medhub.CheXNetConfig(growth_rate=4, block_config=[1, 1], num_init_features=8,
                                                    in_channels=1), (2, 1, 32, 32)),
    "medhub-resnet": (lambda: medhub.ResNetConfig(depth=18, num_labels=2, in_channels=1), (2, 1, 32, 32)),
    "medhub-vgg": (lambda: medhub.VGGConfig(depth=11, batch_norm=True, classifier_type="gap", num_labels=2,
                                            in_channels=1), (2, 1, 32, 32)),
}
FAMILIES = sorted(t for t in MODEL_REGISTRY if not t.startswith("medhub-test"))


def build(model_type):
    make_config, shape = TINY[model_type]
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(make_config())
    return model, torch.randn(*shape)


def test_every_family_has_a_tiny_config():
    assert set(FAMILIES) <= set(TINY), f"add a tiny config for {set(FAMILIES) - set(TINY)}"
    assert len(FAMILIES) == 6


@pytest.mark.parametrize("model_type", FAMILIES)
def test_forward_backward_no_nans(model_type):
    model, x = build(model_type)
    model.train()
    out = model(pixel_values=x)
    assert out.logits.shape[0] == x.shape[0]
    assert out.logits.shape[1] == model.config.num_labels
    assert torch.isfinite(out.logits).all()
    out.logits.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    # deep-supervision heads do not feed `logits`, so a few parameters may get no gradient from this objective
    assert sum(g is not None for g in grads) >= 0.8 * len(grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_save_load_round_trip_is_bit_identical(model_type, tmp_path):
    model, x = build(model_type)
    model.eval()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in tmp_path.iterdir()}
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad():
        # weights are bit-identical; outputs may differ in the last ulp (memory alignment picks other kernels)
        torch.testing.assert_close(model(pixel_values=x).logits, loaded(pixel_values=x).logits, rtol=0, atol=1e-5)
    # the same folder through transformers' Auto classes after `import medhub` (AutoModel may give the backbone)
    backbone = AutoModel.from_pretrained(tmp_path)
    assert isinstance(backbone, medhub.MedPreTrainedModel) and backbone.config.model_type == model_type
    assert AutoConfig.from_pretrained(tmp_path).model_type == model_type


@pytest.mark.parametrize("model_type", FAMILIES)
def test_config_json_round_trip(model_type, tmp_path):
    config = TINY[model_type][0]()
    config.save_pretrained(tmp_path)
    again = medhub.MedConfig.from_pretrained(tmp_path)
    assert type(again) is type(config)
    strip = lambda d: {k: v for k, v in d.items() if k != "_name_or_path"}  # noqa: E731 (records the folder)
    assert strip(again.to_dict()) == strip(config.to_dict())
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == model_type


@pytest.mark.parametrize("model_type", FAMILIES)
def test_generated_card_has_hub_metadata_and_sections(model_type, tmp_path):
    model, _ = build(model_type)
    model.save_pretrained(tmp_path)
    text = (tmp_path / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["library_name"] == "medhub"
    assert "medical-imaging" in header["tags"]
    assert header["pipeline_tag"] in ("image-classification", "image-segmentation")
    assert header["license"]
    for section in ("## Intended use", "## Out-of-scope use", "## Training data", "## Evaluation results",
                    "## Limitations and bias", "## How to load", "## Citation"):
        assert section in text
    assert "Not a medical device" in text
    assert "randomly initialised" in text  # untrained weights say so plainly
    assert model.paper_title and model.paper_title in text
    assert "@" in model.paper_bibtex


@pytest.mark.parametrize("model_type", FAMILIES)
def test_wrong_channel_count_is_a_clear_error(model_type):
    model, x = build(model_type)
    wrong = torch.randn(x.shape[0], x.shape[1] + 1, *x.shape[2:])
    with pytest.raises(medhub.InputError, match="channel"):
        model(pixel_values=wrong)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_non_finite_pixels_are_a_clear_error(model_type):
    model, x = build(model_type)
    x = x.clone()
    x.view(-1)[3] = float("nan")
    with pytest.raises(medhub.InputError, match="non-finite"):
        model(pixel_values=x)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_absurd_config_sizes_are_refused_before_allocation(model_type, tmp_path):
    config = TINY[model_type][0]()
    data = config.to_dict()
    for key in ("base_width", "num_init_features", "in_channels"):
        if key in data:
            data[key] = 10**9
            break
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(medhub.ConfigError):
        medhub.MedConfig.from_pretrained(tmp_path)
