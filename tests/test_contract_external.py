"""The ``features_only`` contract over bridged timm and torchvision models (a sample of each).

What ``create(name, features_only=True)`` promises for native models holds across the
bridges: the call returns a list of maps, one per level; ``channels()`` and
``reductions()`` describe those maps as they come out; ``out_indices`` picks levels
without changing them; bad indices raise ``ConfigError``.
"""

from __future__ import annotations

import functools

import pytest
import torch

import modelzoo as mz
from modelzoo.errors import ConfigError

# name -> number of feature levels the library's design gives the architecture
SAMPLE = {
    "timm/resnet18": 5,  # stem activation + 4 stages
    "timm/efficientnet_b0": 5,
    "timm/convnext_atto": 4,  # 4 stages, the stem already at stride 4
    "timm/vit_tiny_patch16_224": 12,  # one map per block, all at stride 16
    "torchvision/resnet18": 5,
    "torchvision/mobilenet_v3_small": 5,
    "torchvision/convnext_tiny": 4,
    "torchvision/regnet_x_400mf": 5,  # its builder cannot run on the meta device
}


def _size(name: str) -> int:
    return 224 if "vit" in name else 64  # ViTs take their fixed image size


def _build(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)  # the same weights for the same name
    return mz.create(name, features_only=True, **kwargs).eval()


@functools.cache
def _full(name: str) -> torch.nn.Module:
    return _build(name)  # every level; built once for the tests below (they do not change it)


def _run(model: torch.nn.Module, size: int) -> list[torch.Tensor]:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", list(SAMPLE))
def test_features_only_returns_the_maps_its_info_describes(name: str) -> None:
    model = _full(name)
    size = _size(name)
    maps = _run(model, size)
    assert isinstance(maps, list) and all(isinstance(m, torch.Tensor) for m in maps)
    assert len(maps) == SAMPLE[name] == len(model.channels()) == len(model.feature_info)
    assert model.channels() == [m.shape[1] for m in maps]
    assert all(m.shape[0] == 2 and m.dim() == 4 for m in maps)
    assert model.reductions() == [size // m.shape[-1] for m in maps]
    assert model.reductions() == [size // m.shape[-2] for m in maps]
    assert model.reductions() == sorted(model.reductions())
    assert model.out_indices == list(range(SAMPLE[name]))


@pytest.mark.parametrize("name", list(SAMPLE))
def test_out_indices_pick_levels_without_changing_them(name: str) -> None:
    size = _size(name)
    full = _full(name)
    picked = _build(name, out_indices=(1, -1))
    last = SAMPLE[name] - 1
    assert picked.out_indices == [1, last]
    assert picked.channels() == [full.channels()[1], full.channels()[-1]]
    assert picked.reductions() == [full.reductions()[1], full.reductions()[-1]]
    full_maps, picked_maps = _run(full, size), _run(picked, size)
    assert len(picked_maps) == 2
    torch.testing.assert_close(picked_maps[0], full_maps[1])
    torch.testing.assert_close(picked_maps[1], full_maps[last])


@pytest.mark.parametrize("name", ["timm/resnet18", "torchvision/resnet18"])
def test_bad_out_indices_raise(name: str) -> None:
    with pytest.raises(ConfigError, match=r"out_indices=\[5\] is out of range"):
        mz.create(name, features_only=True, out_indices=(5,))
    with pytest.raises(ConfigError, match="names a feature level twice"):
        mz.create(name, features_only=True, out_indices=(1, -4))


def test_features_only_trains() -> None:
    # A feature extractor is a backbone to train: every map takes gradients in train mode.
    model = _build("torchvision/resnet18", out_indices=(2, 4)).train()
    maps = model(torch.randn(2, 3, 64, 64))
    sum(m.mean() for m in maps).backward()
    assert model.model.conv1.weight.grad is not None
    with pytest.raises(ConfigError, match="out_indices only applies with features_only"):
        mz.create("timm/resnet18", out_indices=(1,))
