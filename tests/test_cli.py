"""The `medhub` command line end to end: the main job (demo), convert, zoo list, info."""

import csv

import pytest
import torch

import medhub
from medhub.cli import main


def test_demo_runs_every_family_on_real_scans(shared_data, tmp_path, capsys):
    assert main(["demo", "--batch", "--out", str(tmp_path), "--data", str(shared_data)]) == 0
    text = capsys.readouterr().out
    for model_id in ("chexnet-pneumonia", "resnet18-pneumonia", "vgg16-pneumonia", "unet-isbi2012",
                     "attention-unet-brats", "deepmedic-brats"):
        assert f"medhub/{model_id} [" in text
        assert any((tmp_path / model_id).iterdir())
    rows = list(csv.DictReader(open(tmp_path / "chexnet-pneumonia" / "predictions.csv")))
    assert len(rows) == 3
    for row in rows:
        assert abs(float(row["normal"]) + float(row["pneumonia"]) - 1) < 1e-5
    assert (tmp_path / "unet-isbi2012" / "test_0_overlay.png").is_file()
    assert (tmp_path / "deepmedic-brats" / "brats_pat0003_crop_seg.nii.gz").is_file()
    if "UNTRAINED" in text:  # never silently: untrained models are named in the closing line too
        assert "ran with untrained weights" in text


def test_convert_cli_round_trip(tmp_path, capsys):
    torch.manual_seed(0)
    source = medhub.MedModel.from_config(medhub.ResNetConfig(depth=18, num_labels=1000))
    checkpoint = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), checkpoint)
    assert main(["convert", str(checkpoint), str(tmp_path / "out"), "--arch", "resnet18", "--num-labels", "2",
                 "--in-channels", "1"]) == 0
    model = medhub.MedModel.from_pretrained(tmp_path / "out")
    assert model.config.num_labels == 2 and model.config.in_channels == 1
    assert torch.equal(model.state_dict()["layer4.1.conv2.weight"], source.state_dict()["layer4.1.conv2.weight"])
    card = (tmp_path / "out" / "README.md").read_text()
    assert "resnet18.pth" in card


@pytest.fixture
def resnet18_checkpoint(tmp_path):
    torch.manual_seed(0)
    state = medhub.MedModel.from_config(medhub.ResNetConfig(depth=18, num_labels=1000)).state_dict()
    torch.save(state, tmp_path / "resnet18.pth")
    return tmp_path / "resnet18.pth", state


def test_convert_refuses_nan_and_inf_weights_at_convert_time(tmp_path, capsys, resnet18_checkpoint):
    _, state = resnet18_checkpoint
    for bad in (float("nan"), float("inf")):
        state["layer1.0.conv1.weight"][0, 0, 0, 0] = bad
        torch.save(state, tmp_path / "bad.pth")
        assert main(["convert", str(tmp_path / "bad.pth"), str(tmp_path / "out"), "--arch", "resnet18"]) == 2
        err = capsys.readouterr().err
        assert "bad.pth: tensor 'layer1.0.conv1.weight' holds 1 NaN or Inf value(s)" in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--num-labels", "--in-channels"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_convert_refuses_non_positive_counts(tmp_path, capsys, resnet18_checkpoint, option, value):
    checkpoint, _ = resnet18_checkpoint
    with pytest.raises(SystemExit) as exited:
        main(["convert", str(checkpoint), str(tmp_path / "out"), "--arch", "resnet18", option, value])
    assert exited.value.code == 2
    assert f"argument {option}: {value} is not positive (expected 1 or more)" in capsys.readouterr().err
    from medhub.convert import convert_checkpoint
    from medhub.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{option[2:].replace('-', '_')}={value}: expected a positive whole number"):
        convert_checkpoint(checkpoint, tmp_path / "out", "resnet18", **{option[2:].replace("-", "_"): int(value)})
    assert not (tmp_path / "out").exists()


def test_convert_output_path_that_is_a_file_and_truncated_sources_are_clear_errors(tmp_path, capsys,
                                                                                   resnet18_checkpoint):
    checkpoint, state = resnet18_checkpoint
    (tmp_path / "taken").write_text("a file")
    assert main(["convert", str(checkpoint), str(tmp_path / "taken"), "--arch", "resnet18"]) == 2
    assert "taken: the output path is a file; expected a folder" in capsys.readouterr().err
    from safetensors.torch import save_file

    save_file(state, tmp_path / "resnet18.safetensors")
    data = (tmp_path / "resnet18.safetensors").read_bytes()
    for name, cut in [("resnet18.safetensors", data), ("resnet18.pth", checkpoint.read_bytes())]:
        (tmp_path / f"cut-{name}").write_bytes(cut[:len(cut) // 2])
        assert main(["convert", str(tmp_path / f"cut-{name}"), str(tmp_path / "out"), "--arch", "resnet18"]) == 2
        err = capsys.readouterr().err
        assert f"cut-{name}: " in err and "Traceback" not in err
        assert ("not a valid safetensors file" if name.endswith("safetensors") else "unreadable") in err
    assert not (tmp_path / "out").exists()


def test_convert_refuses_pickled_code(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    bad = tmp_path / "evil.pth"
    bad.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    assert main(["convert", str(bad), str(tmp_path / "out"), "--arch", "resnet18"]) == 2
    assert "weights_only" in capsys.readouterr().err
    assert not marker.exists()


def test_zoo_list_and_unknown_model(capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never reach for a real Hub from the tests
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "medhub/chexnet-pneumonia" in out and "medhub/deepmedic-brats" in out
    assert main(["info", "medhub/no-such-model"]) == 2
    assert "Sources tried" in capsys.readouterr().err


def test_version_names_medhub_torch_and_transformers(capsys):
    import transformers

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == (f"medhub {medhub.__version__} (torch {torch.__version__}, "
                                               f"transformers {transformers.__version__})")
