"""Vision Transformer family: timm parity, input checks, features, stochastic depth, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import DropPath
from modelzoo.models.vit import Block, VisionTransformer

timm = pytest.importorskip("timm")
from timm.models.vision_transformer import VisionTransformer as TimmViT  # noqa: E402

# A small config shared by the tests that are not about a specific builder.
SMALL = dict(img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=7)


def _images(batch: int, chans: int = 3, size: int = 224, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, chans, size, size, generator=torch.Generator().manual_seed(seed))


def _load_timm_weights(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    ours.load_state_dict(theirs.state_dict(), strict=True)


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "vit_base_patch16_224"])
def test_parameter_count_matches_timm(name: str) -> None:
    with torch.device("meta"):
        theirs = timm.create_model(name, pretrained=False)
    expected = sum(p.numel() for p in theirs.parameters())
    assert mz.model_card(name).num_params == expected
    with torch.device("meta"):
        ours = mz.create(name)
    assert sum(p.numel() for p in ours.parameters()) == expected
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_tiny_parity_with_timm() -> None:
    torch.manual_seed(0)
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    ours = mz.create("vit_tiny_patch16_224").eval()
    _load_timm_weights(ours, theirs)
    x = _images(2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            ours.forward_features(x), theirs.forward_features(x), atol=1e-5, rtol=0
        )
        # Feature maps: what timm's features_only returns for the same blocks.
        want = theirs.forward_intermediates(x, indices=[2, 11], intermediates_only=True)
        got = ours.forward_intermediates(x, indices=[2, 11])
    assert len(got) == len(want) == 2
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)


def test_base_parity_with_timm() -> None:
    torch.manual_seed(0)
    theirs = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    with torch.device("meta"):  # skip our own init: every tensor comes from timm
        ours = mz.create("vit_base_patch16_224")
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    ours.eval()
    x = _images(1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


def test_avg_pool_parity_with_timm() -> None:
    torch.manual_seed(0)
    kwargs = dict(SMALL, global_pool="avg")
    theirs = TimmViT(**kwargs).eval()
    ours = VisionTransformer(**kwargs).eval()
    # With average pooling the final norm moves after the pooling, as in timm.
    assert "fc_norm.weight" in ours.state_dict() and "norm.weight" not in ours.state_dict()
    _load_timm_weights(ours, theirs)
    x = _images(2, size=32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            ours.forward_head(ours.forward_features(x), pre_logits=True),
            theirs.forward_head(theirs.forward_features(x), pre_logits=True),
            atol=1e-5,
            rtol=0,
        )


def test_stochastic_depth_schedule_matches_timm() -> None:
    theirs = TimmViT(**SMALL, drop_path_rate=0.3)
    ours = VisionTransformer(**SMALL, drop_path_rate=0.3)
    want = [getattr(b.drop_path1, "drop_prob", 0.0) for b in theirs.blocks]
    got = [b.drop_path.drop_prob for b in ours.blocks]
    assert got == pytest.approx(want)
    assert got[0] == 0.0 and got[-1] == pytest.approx(0.3)


def test_overrides_in_chans_img_size_patch_size() -> None:
    model = mz.create("vit_tiny_patch16_224", in_chans=1, img_size=48, patch_size=8, depth=2)
    assert model.default_input_size == (48, 48)
    assert model.pos_embed.shape == (1, 1 + 6 * 6, 192)
    (x,) = mz.example_inputs(model, batch_size=2)
    assert x.shape == (2, 1, 48, 48)
    assert model(x).shape == (2, 1000)

    wide = VisionTransformer(**dict(SMALL, img_size=(16, 40)))
    assert wide.grid_size == (2, 5)
    assert wide(torch.randn(2, 3, 16, 40)).shape == (2, 7)


def test_patch_size_must_divide_img_size() -> None:
    with pytest.raises(ConfigError, match="patch_size"):
        VisionTransformer(**dict(SMALL, img_size=30))


def test_unknown_global_pool_raises() -> None:
    with pytest.raises(ConfigError, match="global_pool"):
        VisionTransformer(**dict(SMALL, global_pool="max"))


def test_head_interface() -> None:
    model = VisionTransformer(**SMALL).eval()
    x = _images(2, size=32)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 1 + 16, 64)
    with torch.no_grad():
        pooled = model.forward_head(tokens, pre_logits=True)
        assert pooled.shape == (2, 64)
        torch.testing.assert_close(model.get_classifier()(pooled), model(x))
        model.reset_classifier(0)
        assert model.num_classes == 0
        torch.testing.assert_close(model(x), pooled)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3) and model.get_classifier().out_features == 3


def test_features_only_returns_nchw_block_outputs() -> None:
    model = mz.create("vit_tiny_patch4_32", features_only=True, out_indices=(1, -1), depth=4)
    model.eval()
    x = _images(2, size=32)
    with torch.no_grad():
        maps = model(x)
    assert [m.shape for m in maps] == [(2, 192, 8, 8)] * 2
    assert model.channels() == [192, 192] and model.reductions() == [4, 4]

    # The maps are the patch tokens of blocks 1 and 3, laid back on the grid.
    captured = {}
    vit = model.model
    hooks = [
        vit.blocks[i].register_forward_hook(lambda _m, _i, out, i=i: captured.setdefault(i, out))
        for i in (1, 3)
    ]
    with torch.no_grad():
        vit.forward_features(x)
    for h in hooks:
        h.remove()
    for got, i in zip(maps, (1, 3), strict=True):
        tokens = captured[i][:, 1:]  # drop the class token: (B, 64, 192)
        torch.testing.assert_close(got.flatten(2).transpose(1, 2), tokens)


def test_features_only_rejects_out_of_range_index() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        mz.create("vit_tiny_patch4_32", features_only=True, out_indices=(6,))


def test_attention_uses_scaled_dot_product_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model = VisionTransformer(**SMALL).eval()
    with torch.no_grad():
        model(_images(2, size=32))
    # One call per block on (B, heads, 1 + N, head_dim).
    assert calls == [(2, 4, 17, 16)] * SMALL["depth"]


@pytest.mark.parametrize(
    ("shape", "expected_fragment"),
    [
        ((2, 1, 32, 32), "1 channels"),  # wrong channels
        ((2, 3, 64, 64), "img_size=64"),  # wrong size: fixed by the position embedding
        ((3, 32, 32), "unsqueeze(0)"),  # missing batch dimension
    ],
)
def test_bad_input_shape_names_expected_and_actual(
    shape: tuple[int, ...], expected_fragment: str
) -> None:
    model = mz.create("vit_tiny_patch4_32", depth=1)
    with pytest.raises(InputShapeError) as info:
        model(torch.randn(shape))
    message = str(info.value)
    assert "vit_tiny_patch4_32" in message
    assert "(B, 3, 32, 32)" in message  # expected
    assert str(shape) in message  # actual
    assert expected_fragment in message
    with pytest.raises(InputShapeError):
        model.forward_intermediates(torch.randn(shape), indices=[0])


def test_drop_path_drops_whole_samples_in_training_only() -> None:
    torch.manual_seed(0)
    layer = DropPath(0.5)
    x = torch.ones(2000, 3, 4)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    y = layer(x)
    # Each sample is all zeros or all 1 / keep_prob.
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])
    assert set(per_sample[:, 0].unique().tolist()) == {0.0, 2.0}
    assert 0.4 < (per_sample[:, 0] > 0).float().mean().item() < 0.6


def test_block_with_drop_path_one_is_identity_in_training() -> None:
    block = Block(16, 2, 2.0, True, 0.0, 0.0, 1.0, torch.nn.GELU, torch.nn.LayerNorm, 1e-6)
    x = torch.randn(3, 5, 16)
    block.train()
    torch.testing.assert_close(block(x), x)
    block.eval()
    assert not torch.allclose(block(x), x)


def test_model_drop_path_inactive_in_eval() -> None:
    torch.manual_seed(0)
    stochastic = VisionTransformer(**SMALL, drop_path_rate=0.5)
    plain = VisionTransformer(**SMALL)
    plain.load_state_dict(stochastic.state_dict())
    x = _images(4, size=32)
    stochastic.eval()
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(stochastic(x), plain(x), atol=0, rtol=0)
        stochastic.train()
        plain.train()
        a, b = stochastic(x), stochastic(x)
        assert not torch.allclose(a, b)
        torch.testing.assert_close(plain(x), plain(x), atol=0, rtol=0)


@pytest.mark.usefixtures("one_thread")
def test_learns_digits() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    torch.manual_seed(0)
    digits = datasets.load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    y = torch.tensor(digits.target)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=generator)
    train, test = order[:1400], order[1400:]

    model = VisionTransformer(
        img_size=8,
        patch_size=2,
        in_chans=1,
        num_classes=10,
        embed_dim=64,
        depth=2,
        num_heads=4,
        mlp_ratio=2.0,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    for _ in range(20):
        model.train()
        for batch in train[torch.randperm(len(train), generator=generator)].split(64):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy >= 0.8
