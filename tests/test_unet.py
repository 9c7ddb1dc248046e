"""U-Net: the paper's shapes and parameter count, tiny 2D/3D variants, loss, save/load, input errors."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

import medhub
from medhub.errors import ConfigError, InputError
from medhub.losses import instances_from_mask, unet_weight_map
from medhub.models.unet import UNetConfig, UNetForSegmentation, UNetModel


def expected_parameter_count(in_channels, num_labels, base_width, depth, spatial_dims=2, norm=None,
                             upsampling="transposed"):
    """Count by layer arithmetic: 3x3 convs, 2x2 up-convs (or 1x1 convs), affine norms, 1x1 head."""
    k3, k2 = 3**spatial_dims, 2**spatial_dims
    norm_params = 0 if norm is None else 2

    def conv(c_in, c_out, kernel_volume):
        return kernel_volume * c_in * c_out + c_out

    def double_conv(c_in, c_out):
        return conv(c_in, c_out, k3) + conv(c_out, c_out, k3) + 2 * norm_params * c_out

    widths = [base_width * 2**i for i in range(depth + 1)]
    total = double_conv(in_channels, widths[0])
    for level in range(1, depth + 1):
        total += double_conv(widths[level - 1], widths[level])
    for level in range(depth):
        total += conv(widths[level + 1], widths[level], k2 if upsampling == "transposed" else 1)
        total += double_conv(2 * widths[level], widths[level])
    return total + conv(widths[0], num_labels, 1)


def test_paper_parameter_count():
    with torch.device("meta"):  # shapes only, nothing allocated
        model = UNetForSegmentation(UNetConfig.paper())
    count = sum(p.numel() for p in model.parameters())
    assert count == expected_parameter_count(1, 2, 64, 4) == 31_030_658


def test_paper_shapes_572_to_388():
    config = UNetConfig.paper()
    with torch.device("meta"):
        assert UNetForSegmentation(config).output_size(572) == (388, 388)
    # The sizes depend on depth and padding only, so the paper's tile goes through a 2-filter copy.
    model = UNetForSegmentation(UNetConfig.paper(base_width=2)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 572, 572), output_hidden_states=True)
    assert out.logits.shape == (1, 2, 388, 388)
    # Fig. 1 of the paper: 568, 280, 136, 64 on the way down, 28 at the bottom, 52, 100, 196, 388 up
    assert [h.shape[-1] for h in out.encoder_hidden_states] == [568, 280, 136, 64, 28]
    assert [h.shape[-1] for h in out.decoder_hidden_states] == [52, 100, 196, 388]
    assert [h.shape[1] for h in out.encoder_hidden_states] == [2, 4, 8, 16, 32]


TINY = [
    dict(spatial_dims=2, padding="valid", size=(44, 60)),
    dict(spatial_dims=2, padding="same", size=(16, 24), norm="batch", upsampling="interpolate"),
    dict(spatial_dims=3, padding="valid", size=(44, 44, 52), depth=2, base_width=2),
    dict(spatial_dims=3, padding="same", size=(8, 16, 8), norm="instance", depth=3, base_width=2),
]


@pytest.mark.parametrize("case", TINY, ids=lambda c: f"{c['spatial_dims']}d-{c['padding']}")
def test_tiny_forward_backward(case):
    case = dict(case)
    size = case.pop("size")
    config = UNetConfig(in_channels=2, num_labels=3, **{"base_width": 4, "depth": 2, "dropout": 0.0, **case})
    model = UNetForSegmentation(config)
    torch.manual_seed(0)
    pixel_values = torch.randn(2, 2, *size)
    labels = torch.randint(0, 3, (2, *size))
    out = model(pixel_values, labels=labels)
    out_size = model.output_size(size)
    assert out.logits.shape == (2, 3, *out_size)
    if case["padding"] == "same":
        assert out_size == size
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.num_parameters() == expected_parameter_count(
        2, 3, config.base_width, config.depth, config.spatial_dims, config.norm, config.upsampling)


def test_valid_sizes_and_messages():
    model = UNetForSegmentation(UNetConfig(base_width=1))  # paper depth 4, valid
    assert model.valid_input_size(570) == 572 and model.valid_input_size((100, 581)) == (188, 588)
    assert model.output_size((188, 572)) == (4, 388)
    with pytest.raises(InputError, match=r"too small .* the minimum input size is 188"):
        model(torch.zeros(1, 1, 100, 100))
    with pytest.raises(InputError, match=r"16\*k \+ 60 .* nearest valid input size is \(572, 572\)"):
        model(torch.zeros(1, 1, 570, 570))
    with pytest.raises(InputError, match=r"expected 1 channel\(s\)"):
        model(torch.zeros(1, 3, 572, 572))
    same = UNetForSegmentation(UNetConfig(base_width=1, depth=3, padding="same"))
    assert same.valid_input_size(21) == 24 and same.output_size(24) == (24, 24)
    with pytest.raises(InputError, match=r"multiples of 2\*\*depth = 8.*nearest valid input size is \(24, 16\)"):
        same(torch.zeros(1, 1, 22, 15))


def test_labels_at_input_size_are_centre_cropped():
    model = UNetForSegmentation(UNetConfig(base_width=2, depth=1, dropout=0.0, loss="ce")).eval()
    pixel_values = torch.randn(1, 1, 20, 20)
    labels = torch.randint(0, 2, (1, 20, 20))
    out = model(pixel_values, labels=labels)
    assert out.logits.shape == (1, 2, 4, 4)  # 20 -> 16 -> 8 -> 4 -> 8 -> 4
    expected = torch.nn.functional.cross_entropy(out.logits, labels[:, 8:12, 8:12])
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(InputError, match="labels"):
        model(pixel_values, labels=torch.zeros(1, 1, 20, 20, dtype=torch.long))


def without_paths(config_dict):
    """The config without where it was read from (auto_map names the saved repo's code files, not the model)."""
    return {k: v for k, v in config_dict.items() if k not in ("_name_or_path", "transformers_version", "auto_map")}


def test_save_load_round_trip(tmp_path):
    config = UNetConfig(base_width=2, depth=2, norm="batch", padding="same", num_labels=3,
                        channel_names=["em"], modality="EM")
    model = UNetForSegmentation(config).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "medhub-unet" and saved["padding"] == "same" and saved["norm"] == "batch"
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert type(loaded) is UNetForSegmentation
    assert without_paths(loaded.config.to_dict()) == without_paths(config.to_dict())
    for (key, a), (key_b, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert key == key_b and torch.equal(a, b)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, loaded(x).logits, rtol=0, atol=0)
    card = (tmp_path / "README.md").read_text()
    assert "U-Net: Convolutional Networks for Biomedical Image Segmentation" in card and "1505.04597" in card


def test_registry_and_outputs():
    config = UNetConfig(base_width=2, depth=1, padding="same")
    assert type(medhub.MedModel.from_config(config)) is UNetForSegmentation
    assert type(transformers.AutoModelForSemanticSegmentation.from_config(config)) is UNetForSegmentation
    assert type(transformers.AutoModel.from_config(config)) is UNetModel
    model = UNetForSegmentation(config).eval()
    as_tuple = model(torch.zeros(1, 1, 4, 4), labels=torch.zeros(1, 4, 4, dtype=torch.long), return_dict=False)
    assert len(as_tuple) == 2 and as_tuple[1].shape == (1, 2, 4, 4)
    assert UNetForSegmentation.paper.bibtex.strip().startswith("@inproceedings{ronneberger2015unet")
    assert UNetForSegmentation.pipeline_tag == "image-segmentation"


def test_state_dict_keys():
    model = UNetForSegmentation(UNetConfig(base_width=1, depth=1, norm="batch"))
    keys = [k for k in model.state_dict() if k.endswith("weight")]
    assert keys == [
        "unet.encoder_blocks.0.conv1.weight", "unet.encoder_blocks.0.norm1.weight",
        "unet.encoder_blocks.0.conv2.weight", "unet.encoder_blocks.0.norm2.weight",
        "unet.bottleneck.conv1.weight", "unet.bottleneck.norm1.weight",
        "unet.bottleneck.conv2.weight", "unet.bottleneck.norm2.weight",
        "unet.decoder_blocks.0.conv1.weight", "unet.decoder_blocks.0.norm1.weight",
        "unet.decoder_blocks.0.conv2.weight", "unet.decoder_blocks.0.norm2.weight",
        "unet.decoder_blocks.0.up.weight", "segmentation_head.weight",
    ]


@pytest.mark.parametrize("field, value, message", [
    ("spatial_dims", 1, "spatial_dims"),
    ("padding", "reflect", r"padding='reflect': expected one of \['valid', 'same'\]"),
    ("norm", "group", "norm"),
    ("upsampling", "nearest", "upsampling"),
    ("depth", 0, "depth"),
    ("dropout", 1.0, r"dropout=1.0: expected a probability"),
    ("loss", "focal", "loss"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        UNetConfig(**{field: value})


def test_paper_preset_is_the_default():
    assert UNetConfig.paper().to_dict() == UNetConfig().to_dict()
    config = UNetConfig.paper()
    assert (config.in_channels, config.num_labels, config.base_width, config.depth, config.padding, config.norm,
            config.dropout) == (1, 2, 64, 4, "valid", None, 0.5)


@pytest.mark.shared_data
def test_training_steps_on_isbi2012_reduce_weighted_loss():
    root = Path(os.environ.get("MEDHUB_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if not (root / "isbi2012-em" / "train" / "label" / "0.png").is_file():
        pytest.skip("needs ../shared/data/isbi2012-em (set MEDHUB_DATA_DIR)")
    from PIL import Image

    image = np.asarray(Image.open(root / "isbi2012-em" / "train" / "image" / "0.png"), dtype=np.float32)[:92, :92]
    label = np.asarray(Image.open(root / "isbi2012-em" / "train" / "label" / "0.png"))[:92, :92]
    weights = unet_weight_map(instances_from_mask(label == 255))
    pixel_values = torch.from_numpy((image - image.mean()) / image.std())[None, None]
    labels = torch.from_numpy((label == 255).astype(np.int64))[None]
    torch.manual_seed(0)
    model = UNetForSegmentation(UNetConfig(base_width=4, depth=2, dropout=0.0))  # 92 -> 52
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        out = model(pixel_values, labels=labels, weight_map=torch.from_numpy(weights)[None])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert out.logits.shape == (1, 2, 52, 52)
    assert losses[-1] < 0.8 * losses[0]
