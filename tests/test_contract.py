"""The model contract, checked for every registered native model.

Adding a model to the registry adds it here. Each model is built once per
worker (module-scoped fixture) and the checks that change it work on copies.

Graph capture is part of the contract: every model exports with ``torch.export``
with a dynamic batch size, traces with ``torch.fx.symbolic_trace`` (outputs equal
to eager, input checks kept in the graph), and every classifier with feature levels
works with torchvision's ``create_feature_extractor``, as timm's
``test_model_forward_fx`` checks for timm models. ONNX export (run in onnxruntime) and
pt2 files are checked through ``modelzoo export`` in tests/test_export.py.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import pytest
import safetensors.torch
import torch
import torch.fx
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import FeatureListNet
from modelzoo.registry import output_shape
from modelzoo.utils import output_tensors

NAMES = mz.list_models()

# Graph capture (export, FX) costs seconds per model; the default run covers the smallest model
# of every model class and the models the issues name, and -m slow covers the rest.
NAMED_IN_ISSUES = {"resnet18", "resnet20", "resnet50", "vit_tiny_patch16_224", "gpt_nano",
                   "lstm_classifier"}  # fmt: skip


def _graph_sample() -> list[Any]:
    smallest: dict[type, str] = {}
    for name in NAMES:
        with torch.device("meta"):
            cls = type(mz.create(name))
        if cls not in smallest or (
            mz.model_card(name).num_params < mz.model_card(smallest[cls]).num_params
        ):
            smallest[cls] = name
    default = set(smallest.values()) | NAMED_IN_ISSUES
    return [n if n in default else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]


GRAPH_SAMPLE = _graph_sample()

# Models that torch.export cannot capture with a dynamic batch size, with the reason. They
# are reported as expected failures (xfail, strict), so one that starts to work is noticed.
EXPORT_EXCEPTIONS: dict[str, str] = {}

# Models that torch.fx.symbolic_trace cannot trace, with the reason (xfail, strict).
FX_EXCEPTIONS: dict[str, str] = {
    "wav2vec2_base": "torchaudio's wav2vec2 feature extractor and encoder branch on input "
    "shapes (torchaudio code, not the zoo's); torch.export handles it",
}


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
    torch.manual_seed(0)
    other = mz.create(built.name).eval()
    for (name, a), b in zip(built.model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), f"{built.name}: seeded construction differs at {name}"

    # The file restores every saved tensor: loaded into a copy whose tensors were all
    # overwritten, it gives the original outputs again.
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_model(built.model, str(path))
    with torch.no_grad():
        for tensor in other.state_dict().values():
            tensor.zero_()
    safetensors.torch.load_model(other, str(path))
    with torch.no_grad():
        _assert_same(built.output, other(*built.inputs))


def _expect_failure(exceptions: dict[str, str], name: str) -> None:
    if name in exceptions:
        pytest.xfail(exceptions[name])


@pytest.mark.parametrize("built", GRAPH_SAMPLE, indirect=True)
def test_export_with_dynamic_batch(built: Built) -> None:
    """Exported once at batch 2 with a symbolic batch size, the program runs at batch 3."""
    _expect_failure(EXPORT_EXCEPTIONS, built.name)
    batch = torch.export.Dim("batch")
    dynamic = tuple({0: batch} for _ in built.inputs)
    exported = torch.export.export(built.model, built.inputs, dynamic_shapes=dynamic).module()
    other = built.card.example_inputs(3, seed=1)
    with torch.no_grad():
        _assert_same(built.output, exported(*built.inputs), atol=1e-5)
        _assert_same(built.model(*other), exported(*other), atol=1e-5)


# --- torch.fx ------------------------------------------------------------------------------


def _concrete_args(model: nn.Module, num_inputs: int) -> dict[str, Any]:
    """The defaults of the forward arguments after the example inputs (masks, lengths,
    targets, states): FX traces the path where they are left out."""
    params = list(inspect.signature(model.forward).parameters.values())[num_inputs:]
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _bad_image(x: torch.Tensor) -> torch.Tensor:
    """An image batch with one channel too many."""
    return torch.cat([x, x[:, :1]], dim=1)


@pytest.mark.parametrize("built", GRAPH_SAMPLE, indirect=True)
def test_fx_symbolic_trace_matches_eager(built: Built) -> None:
    _expect_failure(FX_EXCEPTIONS, built.name)
    model = built.model
    traced = torch.fx.symbolic_trace(model, concrete_args=_concrete_args(model, len(built.inputs)))
    with torch.no_grad():
        _assert_same(built.output, traced(*built.inputs))
        other = built.card.example_inputs(3, seed=1)
        _assert_same(model(*other), traced(*other))
    # The input checks are recorded in the graph, not dropped: bad images still raise.
    if built.card.input_spec[0].name == "images":
        bad = (_bad_image(built.inputs[0]), *built.inputs[1:])
        for module in (model, traced):
            with pytest.raises(InputShapeError, match="channels"):
                module(*bad)


def _levels(model: nn.Module) -> list[str]:
    return [info["module"] for info in getattr(model, "feature_info", None) or []]


@pytest.mark.parametrize("built", GRAPH_SAMPLE, indirect=True)
def test_fx_feature_extraction(built: Built) -> None:
    """torchvision's create_feature_extractor returns what the modules in feature_info output,
    for every classifier with feature levels and for the backbone of every dense model."""
    backbone = getattr(built.model, "backbone", None)
    if isinstance(backbone, FeatureListNet):
        # The backbone wrapper itself traces, and so does the classifier inside it.
        traced = torch.fx.symbolic_trace(backbone)
        with torch.no_grad():
            _assert_same(backbone(*built.inputs), traced(*built.inputs))
        model = backbone.model
    elif _is_classifier(built.model) and _levels(built.model):
        model = built.model
    else:
        pytest.skip("neither a classifier with feature levels nor a dense model with a backbone")
    levels = _levels(model)
    captured: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(level).register_forward_hook(
            lambda _m, _i, out, level=level: captured.__setitem__(level, out)
        )
        for level in levels
    ]
    try:
        with torch.no_grad():
            model.forward_features(*built.inputs)
    finally:
        for handle in handles:
            handle.remove()
    extractor = create_feature_extractor(
        model,
        {level: level for level in levels},
        concrete_args=_concrete_args(model, len(built.inputs)),
    )
    with torch.no_grad():
        features = extractor(*built.inputs)
    assert list(features) == levels
    for level in levels:
        torch.testing.assert_close(features[level], captured[level], atol=0, rtol=0)


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
