"""Configs and the metadata weights carry are validated where they are read (issue 15 §4).

Each test feeds the exact input the issue describes: a config implying 7.9 G parameters, `weights_info` of
the wrong type or out of range, JSON numbers that overflow to infinity, label numbers with a gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import medhub
from medhub import config_size
from medhub.auto import load_config, load_image_processor
from medhub.errors import ConfigError
from medhub.processing import VolumeImageProcessor
from medhub.registry import CONFIG_REGISTRY, MODEL_REGISTRY

FAMILIES = sorted(t for t in MODEL_REGISTRY if not t.startswith("medhub-test"))
ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
ZOO_CONFIGS = sorted(ZOO.glob("*/config.json"))


def real_count(config) -> int:
    return sum(p.numel() for p in medhub.MedModel.from_config(config).parameters())


# -- the parameter count a config implies --------------------------------------------------------------------
@pytest.mark.parametrize("model_type", FAMILIES)
def test_counted_parameters_are_exact_for_default_configs(model_type):
    config = CONFIG_REGISTRY[model_type]()
    assert config_size.count_parameters(config) == real_count(config)


def test_counted_parameters_are_exact_for_3d_unet_and_tiny_presets():
    for config in [medhub.UNetConfig(spatial_dims=3, base_width=16, depth=3, padding="same", norm="instance"),
                   *(CONFIG_REGISTRY[t].tiny() for t in FAMILIES)]:
        assert config_size.count_parameters(config) == real_count(config), config.model_type


@pytest.mark.parametrize("folder", [p.parent for p in ZOO_CONFIGS], ids=lambda p: p.name)
def test_counted_parameters_are_exact_for_zoo_configs(folder):
    config = load_config(folder)
    assert config_size.count_parameters(config) == real_count(config)


def test_unet_of_7_9_g_parameters_is_refused_before_allocating():
    with pytest.raises(ConfigError, match=r"7,942,035,458 parameters.*1,073,741,824.*base_width=1024, depth=4"):
        medhub.UNetConfig(base_width=1024, depth=4)


def test_unet_of_7_9_g_parameters_in_config_json_is_refused(tmp_path):
    medhub.MedModel.from_config(medhub.UNetConfig.tiny()).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "base_width": 1024, "depth": 4}))
    with pytest.raises(ConfigError, match=r"config.json.*7,942,035,458 parameters"):
        medhub.MedModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_every_family_is_bounded(model_type, monkeypatch):
    config_class = CONFIG_REGISTRY[model_type]
    count = config_size.count_parameters(config_class())
    monkeypatch.setattr(config_size, "MAX_PARAMETERS", count - 1)  # the limit, not the count, is changed
    with pytest.raises(ConfigError, match=f"{count:,} parameters.*limit of {count - 1:,}"):
        config_class()
    config_class.tiny()  # smaller architectures still pass


# -- weights_info: a schema with ranges ------------------------------------------------------------------
@pytest.mark.parametrize("info", ["abc", [1], ["metrics"]])
def test_weights_info_of_the_wrong_type_is_a_config_error(info, tmp_path):
    with pytest.raises(ConfigError, match="weights_info: expected a JSON object"):
        medhub.UNetConfig.tiny(weights_info=info)
    medhub.UNetConfig.tiny().save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "weights_info": info}))
    with pytest.raises(ConfigError, match="config.json.*weights_info: expected a JSON object"):
        load_config(tmp_path)


@pytest.mark.parametrize("info", ["abc", [1]])
def test_weights_info_set_after_loading_is_checked_by_predict_and_save(info, tmp_path):
    model = medhub.MedModel.from_config(medhub.UNetConfig.tiny(padding="same"))
    model.config.weights_info = info
    with pytest.raises(ConfigError, match="weights_info: expected a JSON object"):
        medhub.inference.instance_options(model)  # what `medhub predict` reads first
    with pytest.raises(ConfigError, match="weights_info: expected a JSON object"):
        model.inferer()
    with pytest.raises(ConfigError, match="weights_info: expected a JSON object"):
        model.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()  # never a folder without its README.md


def test_watershed_smoothing_of_a_million_pixels_is_refused():
    instances = {"method": "membrane_watershed", "seed_threshold": 0.9, "min_seed_size": 25, "smoothing": 1e6}
    with pytest.raises(ConfigError, match=r"weights_info.instances.smoothing=1000000.0: expected a number in "
                                          r"\[0.0, 16.0\]"):
        medhub.UNetConfig.tiny(weights_info={"instances": instances})
    ok = medhub.UNetConfig.tiny(weights_info={"instances": {**instances, "smoothing": 2.0}})
    assert medhub.inference.instance_options(medhub.MedModel.from_config(ok))["smoothing"] == 2.0


@pytest.mark.parametrize("info, where", [
    ({"metrics": [{"value": 0.9}]}, r"metrics\[0\].name=None"),
    ({"metrics": [{"name": "dice"}]}, r"metrics\[0\].value=None"),
    ({"metrics": [{"name": "dice", "value": "high"}]}, r"metrics\[0\].value='high'"),
    ({"metrics": ["dice"]}, r"metrics\[0\]: expected an object"),
    ({"metrics": {"name": "dice"}}, r"metrics: expected a list"),
    ({"tags": "chest-x-ray"}, r"tags='chest-x-ray'"),
    ({"tags": [1, 2]}, r"tags='\[1, 2\]'"),
    ({"trained": "yes"}, r"trained='yes'"),
    ({"threshold": 7}, r"threshold=7"),
    ({"inference": {"overlap": 3}}, r"inference.overlap=3"),
])
def test_bad_metrics_tags_and_ranges_are_config_errors(info, where, tmp_path):
    with pytest.raises(ConfigError, match=where):
        medhub.UNetConfig.tiny(weights_info=info)
    model = medhub.MedModel.from_config(medhub.UNetConfig.tiny())
    model.config.weights_info = info
    with pytest.raises(ConfigError, match=where):  # the model card used to raise KeyError: 'name'
        model.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


def test_zoo_weights_info_fits_the_schema():
    for file in ZOO_CONFIGS:
        medhub.weights_info.check_weights_info(json.loads(file.read_text())["weights_info"], str(file))


# -- non-finite numbers wherever JSON is read -----------------------------------------------------------------
def _ct_processor_folder(tmp_path: Path, field: str, text: str) -> Path:
    VolumeImageProcessor(channel_names=["ct"], intensity_normalization="ct_window", window_center=40,
                         window_width=400).save_pretrained(tmp_path)
    file = tmp_path / "preprocessor_config.json"
    before = file.read_text()
    after = before.replace(f'"{field}": {40.0 if field == "window_center" else 400.0}', f'"{field}": {text}')
    assert after != before
    file.write_text(after)
    return tmp_path


@pytest.mark.parametrize("field, text", [("window_width", "1e999"), ("window_center", "-1e999")])
def test_json_overflow_in_preprocessor_config_is_refused(field, text, tmp_path):
    folder = _ct_processor_folder(tmp_path, field, text)
    with pytest.raises(ConfigError, match=f"preprocessor_config.json: {field}: expected a finite number"):
        load_image_processor(folder)
    with pytest.raises(ConfigError, match=f"{field}: expected a finite number"):  # transformers' reading too
        VolumeImageProcessor.from_pretrained(folder)
    with pytest.raises(ConfigError, match=f"{field}=-?inf: expected a finite number"):
        VolumeImageProcessor(channel_names=["ct"], intensity_normalization="ct_window",
                             **{"window_center": 40, "window_width": 400, field: float(text)})


@pytest.mark.parametrize("field, value", [("dropout", "1e999"), ("weights_info", '{"metrics": [{"name": "dice", '
                                                                                '"value": -1e999}]}')])
def test_json_overflow_in_config_json_is_refused(field, value, tmp_path):
    medhub.UNetConfig.tiny().save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data[field] = "@@"
    (tmp_path / "config.json").write_text(json.dumps(data).replace('"@@"', value))
    where = "dropout" if field == "dropout" else r"weights_info.metrics\[0\].value"
    with pytest.raises(ConfigError, match=f"config.json: {where}: expected a finite number"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="expected a finite number|dropout=inf"):
        medhub.UNetConfig.from_pretrained(tmp_path)  # transformers' own JSON reading


# -- labels are numbered 0..n-1 ----------------------------------------------------------------------------------
def test_id2label_with_a_gap_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"id2label keys \['0', '5'\]: expected the label numbers 0..1"):
        medhub.UNetConfig.tiny(id2label={"0": "background", "5": "membrane"})
    medhub.UNetConfig.tiny().save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data.update(id2label={"0": "background", "5": "membrane"}, label2id={"background": 0, "membrane": 5})
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"config.json.*id2label keys \['0', '5'\]"):
        load_config(tmp_path)
    assert medhub.UNetConfig.tiny(id2label={"0": "background", "1": "membrane"}).labels == ["background", "membrane"]
