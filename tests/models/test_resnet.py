"""ResNet family: torchvision parity, the paper's CIFAR nets, plain nets, a short learning run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import FeatureListNet
from modelzoo.models.resnet import BasicBlock, Bottleneck, PadShortcut

CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
# Table 6 of the paper, in millions, to the paper's own rounding.
PAPER_PARAMS = {
    "resnet20": "0.27",
    "resnet32": "0.46",
    "resnet44": "0.66",
    "resnet56": "0.85",
    "resnet110": "1.7",
}


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomize_norm_stats(model: nn.Module, seed: int) -> None:
    # Fresh BN layers are the identity in eval mode; random statistics and affine
    # parameters make parity sensitive to every normalization layer.
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_parity(name: str) -> None:
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)().eval()
    with torch.no_grad():
        _randomize_norm_stats(theirs, seed=1)
    ours = mz.create(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert _num_params(ours) == _num_params(theirs)
    if name == "resnet50":
        assert _num_params(ours) == 25_557_032
    # 128x128 keeps the test fast; every layer still sees a map larger than 1x1 before pooling.
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    assert expected.abs().max() > 1e-2  # a non-trivial output
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet34", "resnet101", "resnet152"])
def test_parameter_count_matches_torchvision(name: str) -> None:
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
        ours = mz.create(name)
    assert mz.model_card(name).num_params == _num_params(ours) == _num_params(theirs)
    assert set(ours.state_dict()) == set(theirs.state_dict())


@pytest.mark.parametrize("name", list(CIFAR_DEPTHS))
def test_cifar_resnet_matches_paper(name: str) -> None:
    n = CIFAR_DEPTHS[name]
    with torch.device("meta"):
        model = mz.create(name)
    millions = _num_params(model) / 1e6
    digits = len(PAPER_PARAMS[name].split(".")[1])
    assert f"{millions:.{digits}f}" == PAPER_PARAMS[name]
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 6 * n + 2
    assert [len(model.get_submodule(f"layer{i}")) for i in (1, 2, 3)] == [n, n, n]
    assert [f["num_chs"] for f in model.feature_info] == [16, 32, 64]
    assert model.default_input_size == (32, 32)


def test_option_a_shortcut_is_parameter_free_subsample_and_zero_pad() -> None:
    model = mz.create("resnet20")
    shortcut = model.layer2[0].downsample
    assert isinstance(shortcut, PadShortcut)
    assert not list(shortcut.parameters())
    x = torch.randn(2, 16, 9, 9)
    out = shortcut(x)
    assert out.shape == (2, 32, 5, 5)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert torch.all(out[:, 16:] == 0)
    # Odd sizes: the shortcut and the strided convolution path must agree in shape.
    assert model.layer2[0](torch.randn(2, 16, 9, 9)).shape == (2, 32, 5, 5)


def test_option_b_projects_only_where_the_shape_changes() -> None:
    model_a = mz.create("resnet20")
    model_b = mz.create("resnet20", shortcut="B")
    projections = {
        name: m.downsample
        for name, m in model_b.named_modules()
        if isinstance(m, BasicBlock) and m.downsample is not None
    }
    assert set(projections) == {"layer2.0", "layer3.0"}
    for proj in projections.values():
        conv, norm = proj
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
        assert isinstance(norm, nn.BatchNorm2d)
    extra = sum(_num_params(p) for p in projections.values())
    assert _num_params(model_b) == _num_params(model_a) + extra
    assert model_b(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    ("plain", "resnet", "n"), [("plain20", "resnet20", 3), ("plain56", "resnet56", 9)]
)
def test_plain_net_has_same_layers_and_no_shortcut(plain: str, resnet: str, n: int) -> None:
    torch.manual_seed(0)
    res = mz.create(resnet).eval()
    net = mz.create(plain).eval()
    assert set(net.state_dict()) == set(res.state_dict())
    weighted = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 6 * n + 2
    net.load_state_dict(res.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net(x), res(x), atol=1e-3)
        # Each plain block is relu(bn(conv(relu(bn(conv(x)))))) and nothing else, while the
        # residual block with the same weights is not.
        for first_block in (net.layer1[0], net.layer2[0]):
            h = torch.randn(2, first_block.conv1.in_channels, 16, 16)
            conv_path = first_block.bn2(
                first_block.conv2(F.relu(first_block.bn1(first_block.conv1(h))))
            )
            torch.testing.assert_close(first_block(h), F.relu(conv_path))
        h = torch.randn(2, 16, 16, 16)
        block = res.layer1[0]
        conv_path = block.bn2(block.conv2(F.relu(block.bn1(block.conv1(h)))))
        assert not torch.allclose(block(h), F.relu(conv_path))


def _block_io(
    model: nn.Module, x: torch.Tensor
) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    records = []
    handles = [
        m.register_forward_hook(lambda mod, i, o: records.append((mod, i[0].clone(), o.clone())))
        for m in model.modules()
        if isinstance(m, (BasicBlock, Bottleneck))
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return records


@pytest.mark.parametrize(("name", "size"), [("resnet18", 32), ("resnet50", 32), ("resnet20", 16)])
def test_zero_init_residual_blocks_start_as_their_shortcut(name: str, size: int) -> None:
    x = torch.randn(2, 3, size, size)
    for zero_init in (True, False):
        torch.manual_seed(0)
        model = mz.create(name, zero_init_residual=zero_init).eval()
        records = _block_io(model, x)
        assert len(records) == sum(len(model.get_submodule(s)) for s in model.stage_names)
        with torch.no_grad():
            same = [
                torch.allclose(out, F.relu(inp if m.downsample is None else m.downsample(inp)))
                for m, inp, out in records
            ]
        assert all(same) if zero_init else not any(same)


def test_zero_init_residual_rejected_without_shortcuts() -> None:
    with pytest.raises(ConfigError, match="zero_init_residual"):
        mz.create("plain20", zero_init_residual=True)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20"])
def test_one_channel_and_small_images(name: str) -> None:
    model = mz.create(name, in_chans=1, num_classes=7).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    features = FeatureListNet(model)
    with torch.no_grad():
        maps = features(x)
    for info, fmap in zip(features.feature_info, maps, strict=True):
        assert fmap.shape == (2, info["num_chs"], 32 // info["reduction"], 32 // info["reduction"])


@pytest.mark.parametrize(
    ("name", "shape", "expected", "actual"),
    [
        ("resnet18", (2, 1, 64, 64), "(B, 3, H, W)", "(2, 1, 64, 64)"),
        ("resnet18", (3, 64, 64), "(B, 3, H, W)", "(3, 64, 64)"),
        ("resnet18", (2, 3, 16, 16), "H, W >= 32", "(2, 3, 16, 16)"),
        ("resnet20", (2, 3, 2, 2), "H, W >= 4", "(2, 3, 2, 2)"),
    ],
)
def test_bad_input_shape_names_expected_and_actual(
    name: str, shape: tuple[int, ...], expected: str, actual: str
) -> None:
    model = mz.create(name)
    with pytest.raises(InputShapeError) as info:
        model(torch.randn(shape))
    message = str(info.value)
    assert name in message and expected in message and actual in message


def test_drop_rate_applies_before_the_classifier_in_training_only() -> None:
    model = mz.create("resnet20", drop_rate=0.5)
    feats = torch.randn(4, 64, 8, 8)
    model.train()
    pooled = model.forward_head(feats, pre_logits=True)
    assert (pooled == 0).any()
    model.eval()
    torch.testing.assert_close(model.forward_head(feats, pre_logits=True), feats.mean((2, 3)))


def test_act_and_norm_layers_are_configurable() -> None:
    model = mz.create("resnet18", act_layer="gelu", norm_layer=nn.Identity)
    assert not any(isinstance(m, (nn.ReLU, nn.BatchNorm2d)) for m in model.modules())
    assert any(isinstance(m, nn.GELU) for m in model.modules())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


@pytest.mark.parametrize(
    "kwargs",
    [dict(shortcut="C"), dict(block="wide"), dict(stem="deep"), dict(layers=(2, 2), widths=(8,))],
)
def test_bad_options_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        mz.create("resnet20", **kwargs)


def test_kaiming_init_of_convolutions() -> None:
    torch.manual_seed(0)
    model = mz.create("resnet50")
    conv = model.layer3[0].conv2  # 256 -> 256, 3x3: fan_out = 256 * 9
    expected_std = (2.0 / (conv.out_channels * 9)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.05)


def test_resnet20_learns_digits() -> None:
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1)  # (N, 1, 8, 8)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    train, test = perm[:1400], perm[1400:]

    model = mz.create("resnet20", in_chans=1, num_classes=10)
    epochs, batch = 3, 64
    # One thread: small convolutions gain little from two, and lose much on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    steps = epochs * (len(train) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    model.train()
    try:
        for _ in range(epochs):
            order = train[torch.randperm(len(train), generator=g)]
            for i in range(0, len(order) - batch + 1, batch):
                idx = order[i : i + batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    assert accuracy >= 0.85


def test_features_match_torchvision_feature_extractor() -> None:
    # features_only (forward_intermediates) returns what torchvision's FX feature extractor
    # takes from torchvision's own ResNet with the same weights, at every level.
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.manual_seed(0)
    theirs = torchvision.models.resnet18().eval()
    with torch.no_grad():
        _randomize_norm_stats(theirs, seed=1)
    ours = mz.create("resnet18", features_only=True).eval()
    ours.model.load_state_dict(theirs.state_dict(), strict=True)
    levels = [info["module"] for info in ours.feature_info]
    assert levels == ["act1", "layer1", "layer2", "layer3", "layer4"]
    nodes = {"relu": "act1", **{f"layer{i}": f"layer{i}" for i in range(1, 5)}}
    reference = create_feature_extractor(theirs, nodes)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(x)
        got = ours(x)
        (third,) = FeatureListNet(ours.model, out_indices=[2])(x)  # stops after layer2
    for level, feature in zip(levels, got, strict=True):
        torch.testing.assert_close(feature, expected[level], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(third, expected["layer2"], atol=1e-5, rtol=1e-5)
