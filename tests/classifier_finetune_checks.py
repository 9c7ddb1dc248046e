"""Checks shared by the fine-tuning classifier tests (ResNet, VGG): each takes a small task model whose
head is the linear layer `head` (any module with weight/bias) and asserts real numbers."""

from __future__ import annotations

import math

import pytest
import torch

import medhub

FIXED_BIAS = [1.0, 0.0, -1.0]


def _logsumexp(values):
    return math.log(sum(math.exp(v) for v in values))


def _softplus(v):
    return math.log1p(math.exp(v))


# Expected losses when the logits are FIXED_BIAS for every image (head weight zeroed), computed by hand.
SINGLE_LABELS = [0, 2]
SINGLE_LOSS = sum(_logsumexp(FIXED_BIAS) - FIXED_BIAS[y] for y in SINGLE_LABELS) / 2  # 1.4076059...
MULTI_LABELS = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
MULTI_LOSS = sum(_softplus(-b if y else b) for row in MULTI_LABELS for b, y in zip(FIXED_BIAS, row)) / 6  # 0.7732235...


def fix_head(head: torch.nn.Linear) -> None:
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor(FIXED_BIAS))


def check_losses(make_model, pixel_values: torch.Tensor) -> None:
    """Softmax cross-entropy for single-label, BCE with logits for multi-label, on fixed logits."""
    assert SINGLE_LOSS == pytest.approx(1.4076059644, abs=1e-9)
    assert MULTI_LOSS == pytest.approx(0.7732235185, abs=1e-9)
    for problem_type, labels, expected in (
        (None, torch.tensor(SINGLE_LABELS), SINGLE_LOSS),
        ("single_label_classification", torch.tensor(SINGLE_LABELS), SINGLE_LOSS),
        ("multi_label_classification", torch.tensor(MULTI_LABELS), MULTI_LOSS),
    ):
        model, head = make_model(num_labels=3, problem_type=problem_type)
        fix_head(head)
        model.eval()
        out = model(pixel_values, labels=labels)
        assert out.logits.tolist() == [FIXED_BIAS, FIXED_BIAS]
        assert out.loss.item() == pytest.approx(expected, rel=1e-6)
        assert model(pixel_values).loss is None
    model, _ = make_model(num_labels=3, problem_type=None)
    with pytest.raises(medhub.InputError, match="single-label"):
        model(pixel_values, labels=torch.tensor(MULTI_LABELS))
    with pytest.raises(medhub.InputError, match=r"\[0, 2\]"):
        model(pixel_values, labels=torch.tensor([0, 3]))
    model, _ = make_model(num_labels=3, problem_type="multi_label_classification")
    with pytest.raises(medhub.InputError, match="multi-label"):
        model(pixel_values, labels=torch.tensor(SINGLE_LABELS))


def check_fine_tuning(model, head_names: set[str]) -> None:
    """freeze_backbone() leaves exactly the head trainable; parameter_groups() split the same way."""
    all_names = {n for n, _ in model.named_parameters()}
    total = sum(p.numel() for p in model.parameters())
    head_count = sum(p.numel() for n, p in model.named_parameters() if n in head_names)
    model.freeze_backbone()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == head_names
    groups = model.parameter_groups(backbone_lr=1e-5, head_lr=1e-3)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 1e-5), ("head", 1e-3)]
    assert groups[0]["params"] == [] and sum(p.numel() for p in groups[1]["params"]) == head_count
    model.unfreeze()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == all_names
    groups = model.parameter_groups(backbone_lr=1e-5, head_lr=1e-3)
    assert sum(p.numel() for g in groups for p in g["params"]) == total
    assert sum(p.numel() for p in groups[1]["params"]) == head_count
    optimizer = torch.optim.SGD(groups, lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-5, 1e-3]


def check_round_trip(model, pixel_values: torch.Tensor, tmp_path) -> None:
    """save_pretrained -> medhub.MedModel.from_pretrained: same class, config, bit-identical weights/outputs."""
    model.eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "README.md").is_file()
    loaded = medhub.MedModel.from_pretrained(tmp_path)
    assert type(loaded) is type(model)
    # auto_map and custom_pipelines name the saved repo's code files
    unnamed = {"_name_or_path": None, "auto_map": None, "custom_pipelines": None}
    assert loaded.config.to_diff_dict() | unnamed == model.config.to_diff_dict() | unnamed
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with torch.no_grad():
        assert torch.equal(model(pixel_values).logits, loaded(pixel_values).logits)
    config = medhub.MedConfig.from_pretrained(tmp_path)
    assert type(config) is type(model.config) and config.to_dict()["model_type"] == model.config.model_type


def check_backward(model, pixel_values: torch.Tensor) -> None:
    model.train()
    out = model(pixel_values, labels=torch.zeros(pixel_values.shape[0], dtype=torch.long))
    out.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
