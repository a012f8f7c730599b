"""LeNet-5, the small CNN and VGG: torchvision parity, shapes, input errors, learning."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import modelzoo as mz
from modelzoo.errors import InputShapeError


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits as (B, 1, 8, 8) images in [0, 1], split 75/25, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    def images(a):
        return torch.tensor(a, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0

    return images(x_tr), torch.tensor(y_tr), images(x_te), torch.tensor(y_te)


# --- VGG: torchvision parity ------------------------------------------------------------


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_vgg_matches_torchvision_given_the_same_weights(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    state = theirs.state_dict()
    # Non-zero biases and non-trivial batch-norm statistics, so every term is exercised.
    for key, value in state.items():
        if not key.startswith("features."):
            continue
        if key.endswith("running_var") or (key.endswith("weight") and value.ndim == 1):
            value.uniform_(0.5, 2.0)
        elif key.endswith(("running_mean", "bias")):
            value.normal_(0, 0.1)
    with torch.device("meta"):
        ours = mz.create(name)
    ours.load_state_dict(state, strict=True, assign=True)
    ours.eval()
    assert _num_params(ours) == _num_params(theirs)

    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_vgg_parameter_count_matches_torchvision(name):
    with torch.device("meta"):
        ours = mz.create(name)
        theirs = getattr(torchvision.models, name)()
    assert _num_params(ours) == _num_params(theirs)
    assert mz.model_card(name).num_params == _num_params(theirs)
    assert ours.state_dict().keys() == theirs.state_dict().keys()


def test_vgg_head_and_overrides():
    with torch.device("meta"):
        model = mz.create("vgg13_bn", num_classes=7, in_chans=1, drop_rate=0.2)
        x = torch.empty(2, 1, 64, 96)  # any size >= 32 works through the adaptive pool
        assert model(x).shape == (2, 7)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 4096)
        assert all(m.p == 0.2 for m in model.modules() if isinstance(m, nn.Dropout))
        assert model.get_classifier() is model.classifier[6]
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)
    assert [f["num_chs"] for f in model.feature_info] == [64, 128, 256, 512, 512]


# --- LeNet-5 ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [28, 32])
def test_lenet5_shapes(size):
    model = mz.create("lenet5").eval()
    x = torch.randn(3, 1, size, size)
    assert model(x).shape == (3, 10)
    assert model.forward_features(x).shape == (3, 16, 5, 5)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (3, 84)


def test_lenet5_centres_small_images_in_its_32x32_field():
    model = mz.create("lenet5").eval()
    x = torch.randn(2, 1, 28, 28)
    padded = torch.zeros(2, 1, 32, 32)
    padded[:, :, 2:30, 2:30] = x
    torch.testing.assert_close(model(x), model(padded))


def test_lenet5_options():
    model = mz.create("lenet5", act_layer="relu", num_classes=4, in_chans=3, drop_rate=0.1)
    assert isinstance(model.act1, nn.ReLU) and isinstance(model.act4, nn.ReLU)
    assert model.drop.p == 0.1
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    model.reset_classifier(0)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 84)


def test_lenet5_refuses_images_larger_than_its_field():
    with pytest.raises(InputShapeError, match=r"H, W <= 32.*\(2, 1, 40, 40\)"):
        mz.create("lenet5")(torch.randn(2, 1, 40, 40))


# --- cnn_small ----------------------------------------------------------------------------


def test_cnn_small_on_8x8_images():
    model = mz.create("cnn_small", in_chans=1, img_size=8).eval()
    (x,) = mz.example_inputs(model, 4)
    assert x.shape == (4, 1, 8, 8)
    assert model(x).shape == (4, 10)
    feats = mz.create("cnn_small", in_chans=1, img_size=8, features_only=True)(x)
    assert [tuple(f.shape) for f in feats] == [(4, 32, 4, 4), (4, 64, 2, 2), (4, 128, 1, 1)]


def test_cnn_small_options():
    model = mz.create(
        "cnn_small", channels=(8, 16), norm_layer="identity", act_layer="gelu", drop_rate=0.25
    )
    assert len(model.stages) == 2 and len(model.feature_info) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.stages[0].conv.bias is not None  # no norm after it, so it keeps a bias
    assert isinstance(model.stages[1].act, nn.GELU)
    assert model.drop.p == 0.25
    x = torch.randn(2, 3, 4, 4)  # two stages need only 4x4
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 16)
    model.reset_classifier(0)
    assert model(x).shape == (2, 16)
    with pytest.raises(ValueError, match="img_size>=8"):
        mz.create("cnn_small", img_size=4)


# --- input errors -------------------------------------------------------------------------


def test_wrong_channels_names_expected_and_actual_shape():
    model = mz.create("cnn_small", in_chans=1)
    with pytest.raises(InputShapeError, match=r"\(B, 1, H, W\).*\(2, 3, 8, 8\).*in_chans=3"):
        model(torch.randn(2, 3, 8, 8))


def test_wrong_rank_names_expected_and_actual_shape():
    model = mz.create("lenet5")
    with pytest.raises(InputShapeError, match=r"\(B, 1, H, W\).*\(1, 28, 28\).*unsqueeze"):
        model(torch.randn(1, 28, 28))


@pytest.mark.parametrize(("name", "size", "min_size"), [("cnn_small", 4, 8), ("vgg11", 16, 32)])
def test_too_small_images_name_expected_and_actual_shape(name, size, min_size):
    with torch.device("meta"):
        model = mz.create(name)
        x = torch.empty(2, 3, size, size)
    with pytest.raises(InputShapeError, match=rf">= {min_size}.*\(2, 3, {size}, {size}\)"):
        model(x)


# --- learning -----------------------------------------------------------------------------


def test_cnn_small_learns_digits(one_thread):
    x_tr, y_tr, x_te, y_te = _digits()
    torch.manual_seed(0)
    model = mz.create("cnn_small", in_chans=1, img_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(4):
        for idx in torch.randperm(len(x_tr), generator=generator).split(64):
            loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_te).argmax(1) == y_te).float().mean().item()
    assert accuracy >= 0.90
