"""MLPs: variants, options, input handling and a short learning run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as 64-feature vectors in [0, 1], split 75/25, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    def features(a):
        return torch.tensor(a, dtype=torch.float32) / 16.0

    return features(x_tr), torch.tensor(y_tr), features(x_te), torch.tensor(y_te)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.blocks.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize(
    ("name", "in_features", "hidden"),
    [("mlp_small", 64, [64]), ("mlp", 64, [256, 256]), ("mlp_large", 784, [1024] * 3)],
)
def test_variants(name, in_features, hidden):
    model = mz.create(name).eval()
    x = torch.randn(3, in_features)
    assert model(x).shape == (3, 10)
    assert [m.out_features for m in _linears(model)] == hidden
    assert model.num_features == hidden[-1]
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (3, hidden[-1])
    assert mz.create(name, num_classes=3)(x).shape == (3, 3)


def test_hidden_sizes_and_head_reset():
    model = mz.create("mlp", in_features=20, hidden_sizes=(32, 16, 8), num_classes=4)
    assert [(m.in_features, m.out_features) for m in _linears(model)] == [
        (20, 32),
        (32, 16),
        (16, 8),
    ]
    x = torch.randn(5, 20)
    assert model(x).shape == (5, 4)
    assert model.get_classifier().in_features == 8
    model.reset_classifier(0)
    assert model(x).shape == (5, 8)
    model.reset_classifier(6)
    assert model(x).shape == (5, 6)
    with pytest.raises(ValueError, match="hidden_sizes"):
        mz.create("mlp", hidden_sizes=())


@pytest.mark.parametrize(("act", "cls"), [("gelu", nn.GELU), (nn.Tanh, nn.Tanh), ("silu", nn.SiLU)])
def test_activation_option(act, cls):
    model = mz.create("mlp_small", act_layer=act)
    assert isinstance(model.blocks[0].act, cls)


@pytest.mark.parametrize(
    ("norm", "cls"), [("batchnorm1d", nn.BatchNorm1d), ("layernorm", nn.LayerNorm)]
)
def test_norm_option(norm, cls):
    model = mz.create("mlp", norm_layer=norm)
    assert all(isinstance(block.norm, cls) for block in model.blocks)
    assert all(block.fc.bias is None for block in model.blocks)  # the norm's shift replaces it
    assert model(torch.randn(4, 64)).shape == (4, 10)
    assert mz.create("mlp").blocks[0].fc.bias is not None


def test_dropout_option():
    model = mz.create("mlp", drop_rate=0.5)
    assert all(block.drop.p == 0.5 for block in model.blocks)
    x = torch.randn(8, 64)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_images_are_flattened():
    model = mz.create("mlp").eval()
    images = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(model(images), model(images.reshape(4, 64)))


def test_wrong_input_size_names_expected_and_actual_shape():
    model = mz.create("mlp")
    with pytest.raises(InputShapeError, match=r"\(B, 64\).*\(2, 10\)"):
        model(torch.randn(2, 10))


def test_wrong_image_size_names_the_shape_the_user_passed():
    with pytest.raises(InputShapeError, match=r"\(B, 64\).*\(2, 1, 28, 28\)"):
        mz.create("mlp")(torch.randn(2, 1, 28, 28))


def test_unknown_activation_name():
    with pytest.raises(ConfigError, match=r"unknown activation 'gelus'.*Did you mean: gelu"):
        mz.create("mlp", act_layer="gelus")


def test_mlp_learns_digits(one_thread):
    x_tr, y_tr, x_te, y_te = _digits()
    torch.manual_seed(0)
    model = mz.create("mlp_small")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(15):
        for idx in torch.randperm(len(x_tr), generator=generator).split(64):
            loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_te).argmax(1) == y_te).float().mean().item()
    assert accuracy >= 0.90
