"""Behaviour every registered medhub model type must have, parametrised over the registry.

Each family brings its tiny config (`Config.tiny()`, the family's TINY preset) and a valid input
(`model.dummy_inputs`); a new family that registers itself without them fails `test_every_family_has_presets`.
"""

import json

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel

import medhub
from medhub.registry import CONFIG_REGISTRY, MODEL_REGISTRY

FAMILIES = sorted(t for t in MODEL_REGISTRY if not t.startswith("medhub-test"))


def build(model_type):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(CONFIG_REGISTRY[model_type].tiny())
    return model, model.dummy_inputs["pixel_values"]


def test_every_family_has_presets():
    assert len(FAMILIES) == 6
    for model_type in FAMILIES:
        config_class = CONFIG_REGISTRY[model_type]
        assert config_class.TINY is not None, f"{model_type}: add a TINY preset"
        assert type(config_class.reference()) is config_class and type(config_class.tiny()) is config_class
        assert MODEL_REGISTRY[model_type].processor_class is not None, f"{model_type}: name its processor class"


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
    config = CONFIG_REGISTRY[model_type].tiny()
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
    assert model.paper.title and model.paper.title in text
    assert "@" in model.paper.bibtex


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
    config = CONFIG_REGISTRY[model_type].tiny()
    data = config.to_dict()
    for key in ("base_width", "num_init_features", "in_channels"):
        if key in data:
            data[key] = 10**9
            break
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(medhub.ConfigError):
        medhub.MedConfig.from_pretrained(tmp_path)
