"""from_pretrained's fast path gives exactly the model that building it and copying the weights in gives."""

import torch
from safetensors.torch import load_file, save_file

import medhub
from medhub.errors import WeightsMismatchError

TINY_CHEXNET = dict(growth_rate=4, block_config=[1, 2], num_init_features=8, bn_size=2, in_channels=1)


def _saved(tmp_path, half: bool):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(medhub.CheXNetConfig(**TINY_CHEXNET)).eval()
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    if half:
        model = model.half()
    model.save_pretrained(tmp_path)
    return model


def _by_hand(folder):
    config = medhub.MedConfig.from_pretrained(str(folder))
    model = type(medhub.MedModel.from_config(config))(config)
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()


def test_from_pretrained_logits_are_bit_for_bit_those_of_a_plain_load(tmp_path):
    for half in (False, True):
        folder = tmp_path / f"half{half}"
        _saved(folder, half)
        loaded, by_hand = medhub.MedModel.from_pretrained(str(folder)), _by_hand(folder)
        assert all(p.dtype in (torch.float32, torch.int64) for p in loaded.state_dict().values())
        x = torch.randn(2, 1, 32, 32)
        with torch.inference_mode():
            assert torch.equal(loaded(pixel_values=x).logits, by_hand(pixel_values=x).logits)
        for key, value in by_hand.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_integer_weights_where_floats_are_expected_are_still_refused(tmp_path):
    _saved(tmp_path, half=False)
    state = load_file(str(tmp_path / "model.safetensors"))
    key = next(k for k in state if k.endswith("conv0.weight") or k.endswith(".weight"))
    state[key] = state[key].to(torch.uint8)
    save_file(state, str(tmp_path / "model.safetensors"))
    try:
        medhub.MedModel.from_pretrained(str(tmp_path))
    except WeightsMismatchError as err:
        assert "integer weights" in str(err) and key in str(err)
    else:
        raise AssertionError("U8 weights loaded as floats")
