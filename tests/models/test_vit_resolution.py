"""ViT at any resolution: weights loaded at another img_size, and dynamic_img_size, as timm."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

import modelzoo as mz
from modelzoo.errors import ConfigError, InputShapeError, WeightsError
from modelzoo.transfer.adapt import resample_grid_embedding


def _images(*size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def timm_tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    with torch.no_grad():  # a position embedding with structure, not just init noise
        model.pos_embed.add_(torch.randn_like(model.pos_embed))
    return model


@pytest.fixture(scope="module")
def weights_file(timm_tiny: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vit") / "vit_tiny_224.safetensors"
    save_file({k: v.contiguous() for k, v in timm_tiny.state_dict().items()}, path)
    return path


@pytest.mark.parametrize("img_size", [384, 160, (320, 192)])
def test_weights_at_another_img_size_match_timm(
    img_size: int | tuple[int, int],
    timm_tiny: torch.nn.Module,
    weights_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Up, down (antialiased) and to a non-square grid, each against timm loading the same
    file at that size (its checkpoint filter resamples the position embedding)."""
    with caplog.at_level(logging.INFO, logger="modelzoo.transfer"):
        ours = mz.create("vit_tiny_patch16_224", img_size=img_size, pretrained=str(weights_file))
    theirs = timm.create_model(
        "vit_tiny_patch16_224",
        img_size=img_size,
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(weights_file)),
    )
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    grid = (h // 16, w // 16)
    report = ours.load_report
    assert [a.key for a in report.adapted] == ["pos_embed"]
    assert report.adapted[0].to_shape == (1, 1 + grid[0] * grid[1], 192)
    assert (
        "14x14" in report.adapted[0].reason and f"{grid[0]}x{grid[1]}" in report.adapted[0].reason
    )
    assert not report.missing and not report.dropped and not report.reinitialized
    assert any(
        "resampled" in r.getMessage() and "pos_embed" in r.getMessage() for r in caplog.records
    )

    torch.testing.assert_close(ours.pos_embed, theirs.pos_embed, atol=1e-6, rtol=0)
    x = _images(h, w)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-5, rtol=0)
    with pytest.raises(InputShapeError, match="img_size"):
        ours(_images(224, 224))  # the model is built for its new size


def test_resample_function_matches_timm(timm_tiny: torch.nn.Module) -> None:
    pos = timm_tiny.pos_embed.detach()
    for new in [(24, 24), (7, 9), (14, 14)]:
        want = resample_abs_pos_embed(pos, new_size=list(new), num_prefix_tokens=1)
        got = resample_grid_embedding(pos, new, num_prefix_tokens=1)
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, pos)  # the same grid gives the embedding back
    assert torch.equal(got[:, :1], pos[:, :1])  # the class token's row is never resampled
    with pytest.raises(ValueError, match="square"):
        resample_grid_embedding(pos[:, :-1], (4, 4))


def test_save_pretrained_folder_loads_at_another_img_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    small = mz.create("vit_tiny_patch4_32", depth=2).eval()
    folder = mz.save_pretrained(small, tmp_path / "vit32")
    big = mz.create("vit_tiny_patch4_32", depth=2, img_size=48, pretrained=str(folder)).eval()
    assert [a.key for a in big.load_report.adapted] == ["pos_embed"]
    state = small.state_dict()
    expected = resample_grid_embedding(state["pos_embed"], (12, 12), num_prefix_tokens=1)
    torch.testing.assert_close(big.pos_embed, expected, atol=0, rtol=0)
    for key, value in state.items():  # everything else unchanged
        if key != "pos_embed":
            assert torch.equal(big.state_dict()[key], value), key
    again = mz.from_pretrained(folder, img_size=48)  # the folder's own config, a new size
    assert torch.equal(again.pos_embed, big.pos_embed)
    # The resampled model computes what the small one would with dynamic_img_size.
    dynamic = mz.create("vit_tiny_patch4_32", depth=2, dynamic_img_size=True).eval()
    dynamic.load_state_dict(state)
    x = _images(48, 48)
    with torch.no_grad():
        torch.testing.assert_close(big(x), dynamic(x), atol=1e-5, rtol=0)


def test_strict_refuses_to_resample(weights_file: Path) -> None:
    with pytest.raises(WeightsError, match="pos_embed") as err:
        mz.create("vit_tiny_patch16_224", img_size=384, pretrained=str(weights_file), strict=True)
    assert "resample" in str(err.value)


@pytest.mark.parametrize("size", [(160, 256), (288, 288)])
def test_dynamic_img_size_matches_timm(size: tuple[int, int], timm_tiny: torch.nn.Module) -> None:
    theirs = timm.create_model("vit_tiny_patch16_224", pretrained=False, dynamic_img_size=True)
    theirs.load_state_dict(timm_tiny.state_dict())
    ours = mz.create("vit_tiny_patch16_224", dynamic_img_size=True)
    ours.load_state_dict(timm_tiny.state_dict())
    x = _images(*size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), atol=1e-5, rtol=0)
        feats = ours.forward_intermediates(x, indices=[-1])
        want = theirs.forward_intermediates(x, indices=[11], intermediates_only=True)
    assert feats[0].shape == (1, 192, size[0] // 16, size[1] // 16)
    torch.testing.assert_close(feats[0], want[0], atol=1e-5, rtol=0)


def test_dynamic_img_size_at_the_built_size_is_the_plain_model() -> None:
    torch.manual_seed(0)
    plain = mz.create("vit_tiny_patch4_32", depth=2).eval()
    dynamic = mz.create("vit_tiny_patch4_32", depth=2, dynamic_img_size=True).eval()
    dynamic.load_state_dict(plain.state_dict())
    x = _images(32, 32)
    with torch.no_grad():
        assert torch.equal(dynamic(x), plain(x))
    # Traced with torch.fx, the graph still takes any multiple of the patch size.
    traced = torch.fx.symbolic_trace(dynamic)
    y = _images(40, 24)
    with torch.no_grad():
        torch.testing.assert_close(traced(y), dynamic(y))


def test_dynamic_img_size_refuses_a_size_that_is_not_a_multiple() -> None:
    model = mz.create("vit_tiny_patch16_224", dynamic_img_size=True)
    with pytest.raises(InputShapeError) as err:
        model(_images(230, 224))
    message = str(err.value)
    assert "multiple of 16" in message and "(1, 3, 230, 224)" in message
    assert "224x224" in message and "240x224" in message  # the sizes nearest that work
    with pytest.raises(InputShapeError, match="multiple of 16"):
        model(_images(8, 16))  # smaller than one patch


def test_dynamic_img_size_is_a_checked_keyword() -> None:
    with pytest.raises(ConfigError, match="dynamic_img_size"):
        mz.create("vit_tiny_patch4_32", dynamic_img_size="yes")
    with pytest.raises(ConfigError, match="dynamic_img_size"):
        mz.create("vit_tiny_patch4_32", dynamic_imgsize=True)
