"""The model contract, checked for every registered native model.

Adding a model to the registry adds it here. Each model is built once per
worker (module-scoped fixture) and the checks that change it work on copies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
import safetensors.torch
import torch
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError
from modelzoo.registry import output_shape
from modelzoo.utils import output_tensors

NAMES = mz.list_models()

# Models whose output torch.export cannot represent; each is traced with
# torch.jit.trace on its tensor-valued parts instead, or skipped with the reason.
EXPORT_EXCEPTIONS: dict[str, str] = {}


@dataclass
class Built:
    name: str
    card: mz.ModelCard
    model: nn.Module  # eval mode, built after torch.manual_seed(0)
    inputs: tuple[torch.Tensor, ...]
    output: Any


@pytest.fixture(scope="module", params=NAMES)
def built(request: pytest.FixtureRequest) -> Built:
    name = request.param
    torch.manual_seed(0)
    model = mz.create(name).eval()
    card = mz.model_card(name)
    inputs = card.example_inputs(2)
    with torch.no_grad():
        output = model(*inputs)
    return Built(name, card, model, inputs, output)


def _is_classifier(model: nn.Module) -> bool:
    return hasattr(model, "reset_classifier") and hasattr(model, "num_features")


def _assert_same(a: Any, b: Any, atol: float = 0.0) -> None:
    ta, tb = output_tensors(a), output_tensors(b)
    assert len(ta) == len(tb) > 0
    for x, y in zip(ta, tb):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, atol=atol, rtol=0 if atol == 0 else 1e-5)


def test_forward_is_finite_deterministic_and_shaped(built: Built) -> None:
    tensors = output_tensors(built.output)
    assert tensors, f"{built.name} returned no tensors"
    for t in tensors:
        if t.is_floating_point():
            assert torch.isfinite(t).all(), f"{built.name} output has NaN or inf"
    with torch.no_grad():
        _assert_same(built.output, built.model(*built.inputs))
    expected = output_shape(built.model, len(built.inputs[0]))
    if expected is not None:
        assert tuple(built.output.shape) == expected
    assert built.card.output_shape is None or expected is not None


def test_backward_reaches_every_parameter(built: Built) -> None:
    model = copy.deepcopy(built.model).train()
    torch.manual_seed(0)
    loss = sum(t.float().sum() for t in output_tensors(model(*built.inputs)) if t.requires_grad)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{built.name}: no gradient reaches {missing}"


def test_num_params_on_card_is_real(built: Built) -> None:
    assert built.card.num_params == sum(p.numel() for p in built.model.parameters())


def test_safetensors_round_trip_and_seeded_construction(built: Built, tmp_path) -> None:
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_model(built.model, str(path))
    torch.manual_seed(1)
    other = mz.create(built.name).eval()
    safetensors.torch.load_model(other, str(path))
    with torch.no_grad():
        _assert_same(built.output, other(*built.inputs))

    torch.manual_seed(0)
    again = mz.create(built.name)
    for (name, a), b in zip(built.model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), f"{built.name}: seeded construction differs at {name}"


def test_export(built: Built) -> None:
    if built.name in EXPORT_EXCEPTIONS:
        pytest.skip(EXPORT_EXCEPTIONS[built.name])
    exported = torch.export.export(built.model, built.inputs)
    with torch.no_grad():
        _assert_same(built.output, exported.module()(*built.inputs), atol=1e-5)


# --- classifiers -----------------------------------------------------------------------


def _meta_inputs(built: Built) -> tuple[torch.Tensor, ...]:
    return tuple(x.to("meta") for x in built.inputs)


def test_num_classes_override_reaches_output(built: Built) -> None:
    if not _is_classifier(built.model):
        pytest.skip("not a classifier")
    with torch.device("meta"):  # shapes only: the meta device computes no values
        model = mz.create(built.name, num_classes=7).eval()
        assert model.num_classes == 7
        assert model(*_meta_inputs(built)).shape == (len(built.inputs[0]), 7)


def test_reset_classifier_gives_features(built: Built) -> None:
    if not _is_classifier(built.model):
        pytest.skip("not a classifier")
    model = copy.deepcopy(built.model)
    model.reset_classifier(0)
    with torch.no_grad():
        features = model(*built.inputs)
        pre_logits = built.model.forward_head(
            built.model.forward_features(*built.inputs), pre_logits=True
        )
    assert features.shape == (len(built.inputs[0]), built.model.num_features)
    torch.testing.assert_close(features, pre_logits)
    assert model.get_classifier() is not None
    model.reset_classifier(3)
    assert model.forward_head(model.forward_features(*built.inputs)).shape[-1] == 3


def test_features_only_matches_feature_info(built: Built) -> None:
    if not _is_classifier(built.model):
        pytest.skip("not a classifier")
    info = getattr(built.model, "feature_info", None)
    if not info:
        with pytest.raises(ConfigError, match="feature_info"):
            mz.create(built.name, features_only=True)
        return
    with torch.device("meta"):
        extractor = mz.create(built.name, features_only=True).eval()
        features = extractor(*_meta_inputs(built))
        assert len(features) == len(info)
        x = built.inputs[0]
        for level, feature in zip(info, features):
            assert feature.shape[1] == level["num_chs"], level
            if x.ndim == 4:
                # reduction is the stride: unpadded convolutions (LeNet) may shave a border off
                size, reduction = x.shape[-1], level["reduction"]
                assert size // (2 * reduction) < feature.shape[-1] <= size // reduction, level
        last = mz.create(built.name, features_only=True, out_indices=[-1])
        assert last.feature_info == [info[-1]]
        with pytest.raises(ConfigError, match="out of range"):
            mz.create(built.name, features_only=True, out_indices=[len(info)])
    # the wrapper really returns the module outputs it names (values, not just shapes)
    extractor = mz.create(built.name, features_only=True, out_indices=[-1]).eval()
    extractor.model.load_state_dict(built.model.state_dict())
    with torch.no_grad():
        (feature,) = extractor(*built.inputs)
    assert torch.isfinite(feature).all()
