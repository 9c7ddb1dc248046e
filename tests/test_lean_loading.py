"""from_pretrained's fast path gives exactly the model that building it and copying the weights in gives, and keeps
every check: NaN/Inf refused, missing keys refused, models built without weights initialised."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import medhub
from medhub.errors import CorruptWeightsError, WeightsMismatchError

ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
ZOO_IDS = ("chexnet-pneumonia", "resnet18-pneumonia", "vgg16-pneumonia", "unet-isbi2012", "attention-unet-brats",
           "deepmedic-brats")

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


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(-1).view(torch.uint8)


@pytest.mark.parametrize("zoo_id", ZOO_IDS)
def test_every_zoo_model_loads_bit_for_bit_what_load_state_dict_of_load_file_gives(zoo_id):
    """The fast path reads the file once and copies each tensor into the model itself; the weights are exactly
    those of the plain path (build, then `load_state_dict(load_file(...))`), dtype, layout and bits."""
    folder = ZOO / zoo_id
    loaded = medhub.MedModel.from_pretrained(str(folder))
    by_hand = _by_hand(folder)
    ours, theirs = loaded.state_dict(), by_hand.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        mine = ours[key]
        assert (mine.dtype, mine.shape, mine.stride()) == (value.dtype, value.shape, value.stride()), key
        assert torch.equal(_bits(mine), _bits(value)), key


def test_a_model_built_without_weights_is_initialised_and_a_missing_key_is_refused(tmp_path):
    """Loading skips the initialisation the file overwrites, and only there: a model built afterwards from a
    config is initialised as before (not torch.empty memory), and a checkpoint that lacks a key is refused, naming
    it, instead of leaving that tensor uninitialised."""
    saved = _saved(tmp_path / "full", half=False)
    medhub.MedModel.from_pretrained(str(tmp_path / "full"))
    torch.manual_seed(1)
    fresh = medhub.MedModel.from_config(saved.config)
    torch.manual_seed(1)
    reference = type(fresh)(saved.config)  # its class's own init, with the same draws
    for key, value in reference.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    for module in fresh.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
        if isinstance(module, torch.nn.Conv2d):
            assert 0 < float(module.weight.detach().std()) < 10

    state = load_file(str(tmp_path / "full" / "model.safetensors"))
    dropped = next(k for k in state if k.endswith("classifier.bias"))
    del state[dropped]
    _saved(tmp_path / "missing", half=False)
    save_file(state, str(tmp_path / "missing" / "model.safetensors"))
    with pytest.raises(WeightsMismatchError, match=f"missing from the weights.*{dropped}"):
        medhub.MedModel.from_pretrained(str(tmp_path / "missing"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_every_loading_path(tmp_path, dtype, bad):
    """resolve_model leaves model.safetensors to the loader, which checks the bytes it copies: NaN/Inf is still a
    CorruptWeightsError naming the tensor, through MedModel, the family class, and transformers' path."""
    saved = _saved(tmp_path, half=dtype == torch.float16)
    state = load_file(str(tmp_path / "model.safetensors"))
    key = sorted(k for k in state if k.endswith(".weight"))[-1]
    state[key].view(-1)[1] = bad
    save_file(state, str(tmp_path / "model.safetensors"))
    pattern = rf"model.safetensors: not a valid safetensors file: tensor '{key}' holds NaN or Inf"
    for load in (lambda: medhub.MedModel.from_pretrained(str(tmp_path)),
                 lambda: type(saved).from_pretrained(str(tmp_path)),
                 lambda: type(saved).from_pretrained(str(tmp_path), dtype=torch.float16)):  # transformers' loader
        with pytest.raises(CorruptWeightsError, match=pattern):
            load()


def test_resolve_model_defers_only_the_named_file_and_checks_the_rest(tmp_path):
    from medhub.hub import resolve_model

    _saved(tmp_path, half=False)
    state = load_file(str(tmp_path / "model.safetensors"))
    state[next(k for k, v in state.items() if v.is_floating_point())].view(-1)[0] = float("nan")
    save_file(state, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CorruptWeightsError, match="extra.safetensors"):  # another file of the folder: checked
        resolve_model(str(tmp_path), defer_check=("model.safetensors",))
    (tmp_path / "extra.safetensors").unlink()
    resolved = resolve_model(str(tmp_path), defer_check=("model.safetensors",))
    assert resolved.unchecked == (tmp_path / "model.safetensors",)
    assert resolve_model(str(tmp_path)).unchecked == ()


def test_a_model_with_load_state_dict_hooks_is_loaded_through_them(tmp_path):
    """A module with load_state_dict hooks (none of medhub's has one) is loaded by `load_state_dict`, hooks run."""
    saved = _saved(tmp_path, half=True)
    calls = []

    class Hooked(type(saved)):
        def __init__(self, config):
            super().__init__(config)
            self.register_load_state_dict_pre_hook(lambda *args, **kwargs: calls.append(1))

    loaded = Hooked.from_pretrained(str(tmp_path))
    assert calls == [1]
    for key, value in _by_hand(tmp_path).state_dict().items():
        assert torch.equal(_bits(loaded.state_dict()[key]), _bits(value)), key
