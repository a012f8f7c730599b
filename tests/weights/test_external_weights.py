"""timm and torchvision weights through the zoo's verified download path (loopback server).

A tag on a bridged name always means those weights: fetched through
``modelzoo.weights.fetch`` (mirror, cache, sha256, offline rule), loaded with the
zoo's loader, with a ``load_report``; never silently a random model.
"""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, IntegrityError, OfflineError, WeightsError

TV_FILE = "resnet18-f37072fd.pth"  # torchvision's file for resnet18.IMAGENET1K_V1 (= DEFAULT)
TIMM_ARCH = "test_resnet"  # timm's smallest ResNet (0.47 M parameters), tag r160_in1k
TIMM_FILE = f"timm-{TIMM_ARCH}.r160_in1k.safetensors"  # its name under MODELZOO_MIRROR


def _outputs_equal(a: nn.Module, b: nn.Module, size: int) -> bool:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


# --------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("torchvision/resnet18.IMAGENET1K_V1", {}),
        ("torchvision/resnet18", {"pretrained": "IMAGENET1K_V1"}),
        ("torchvision/resnet18", {"pretrained": True}),  # DEFAULT
        ("torchvision/resnet18", {"weights": "IMAGENET1K_V1"}),  # torchvision's keyword
        ("torchvision/resnet18", {"weights": "DEFAULT"}),
    ],
)
def test_every_torchvision_spelling_fetches_the_same_verified_file(name, kwargs, monkeypatch):
    # Offline and uncached, each form must reach the download of the one file torchvision
    # publishes for these weights, checked against the hash prefix in its name.
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    with pytest.raises(OfflineError, match=rf"{TV_FILE} \(sha256 prefix f37072fd\)"):
        mz.create(name, **kwargs)


def test_torchvision_weights_are_checked_against_the_prefix_in_their_name(server):
    from torchvision.models import Weights, WeightsEnum

    data = b"not the published weights" * 100
    prefix = "0" * 8 if not hashlib.sha256(data).hexdigest().startswith("0" * 8) else "1" * 8
    url = server.add(f"/resnet18-{prefix}.pth", data)
    member = Weights(url=url, transforms=nn.Identity, meta={})
    weights = WeightsEnum("WrongWeights", {"V1": member}).V1
    with pytest.raises(IntegrityError, match=f"expected a digest starting with {prefix}"):
        mz.create("torchvision/resnet18", weights=weights)


def _served_weights_enum(server, arch: str, state: dict[str, torch.Tensor], tag: str):
    """A WeightsEnum whose one member is ``state``, served with its hash prefix in its name."""
    from torchvision.models import Weights, WeightsEnum

    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    url = server.add(f"/{arch}-{hashlib.sha256(data).hexdigest()[:8]}.pth", data)
    member = Weights(url=url, transforms=nn.Identity, meta={"categories": None})
    return WeightsEnum("ServedWeights", {tag: member})[tag]


def test_torchvision_weights_member_loads_with_a_report(server):
    torch.manual_seed(1)
    source = mz.create("torchvision/shufflenet_v2_x0_5")
    weights = _served_weights_enum(server, "shufflenet_v2_x0_5", source.state_dict(), "TEST_V1")

    model = mz.create("torchvision/shufflenet_v2_x0_5", weights=weights)
    assert _outputs_equal(model, source, 64)
    assert model.load_report.source == "torchvision/shufflenet_v2_x0_5.TEST_V1"
    assert model.load_report.exact
    assert model.init_kwargs == {}  # save_pretrained rebuilds the architecture, not the fetch

    # The same weights again come from the cache; a new head is re-initialized.
    again = mz.create("torchvision/shufflenet_v2_x0_5", pretrained=weights, num_classes=7)
    assert server.full_transfers(weights.url.removeprefix(server.base)) == 1
    assert {r.key for r in again.load_report.reinitialized} == {"fc.weight", "fc.bias"}
    assert torch.equal(again.conv1[0].weight, source.conv1[0].weight)


def test_weights_and_pretrained_cannot_both_choose(monkeypatch):
    with pytest.raises(ConfigError, match="weights= is an alias of pretrained="):
        mz.create("torchvision/resnet18", weights="IMAGENET1K_V1", pretrained="IMAGENET1K_V2")
    with pytest.raises(ConfigError, match="names the weights 'IMAGENET1K_V1'"):
        mz.create("torchvision/resnet18.IMAGENET1K_V1", pretrained="IMAGENET1K_V2")


# --------------------------------------------------------------------------- timm


@pytest.fixture
def timm_source() -> nn.Module:
    torch.manual_seed(2)
    return mz.create(f"timm/{TIMM_ARCH}").eval()


@pytest.fixture
def served_timm(server, monkeypatch, timm_source, tmp_path) -> str:
    """The timm weights on the loopback mirror, in timm's own (safetensors) format."""
    path = tmp_path / "served.safetensors"
    save_file({k: v.contiguous() for k, v in timm_source.state_dict().items()}, str(path))
    monkeypatch.setenv("MODELZOO_MIRROR", server.base)
    server.add(f"/{TIMM_FILE}", path.read_bytes())
    return f"/{TIMM_FILE}"


def test_timm_tag_needs_permission_to_download_unverified_weights(served_timm, server):
    with pytest.raises(WeightsError, match="timm publishes no sha256") as err:
        mz.create(f"timm/{TIMM_ARCH}.r160_in1k")
    assert "MODELZOO_ALLOW_UNVERIFIED=1" in str(err.value)
    assert "pretrained='path/to/file'" in str(err.value)
    assert not server.requests_for(served_timm)  # refused before touching the network


@pytest.mark.parametrize(
    "name, kwargs",
    [
        (f"timm/{TIMM_ARCH}.r160_in1k", {}),
        (f"timm/{TIMM_ARCH}", {"pretrained": "r160_in1k"}),
        (f"timm/{TIMM_ARCH}", {"pretrained": True}),  # timm's default tag for the arch
    ],
)
def test_timm_tag_loads_those_weights(name, kwargs, served_timm, server, monkeypatch, timm_source):
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    model = mz.create(name, **kwargs)
    assert _outputs_equal(model, timm_source, 64)
    assert model.load_report.source == f"timm/{TIMM_ARCH}.r160_in1k"
    assert model.load_report.exact
    assert model.pretrained_cfg["tag"] == "r160_in1k"  # timm's input facts for that tag
    assert server.full_transfers(served_timm) == 1

    # Recorded at download, the digest guards the cached copy from then on.
    monkeypatch.delenv("MODELZOO_ALLOW_UNVERIFIED")
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    assert _outputs_equal(mz.create(name, **kwargs), timm_source, 64)


def test_timm_weights_offline_and_uncached_raise_offline_error(monkeypatch):
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    with pytest.raises(OfflineError, match=TIMM_FILE):
        mz.create(f"timm/{TIMM_ARCH}.r160_in1k")


def test_timm_features_only_keeps_the_fetched_weights(served_timm, monkeypatch, timm_source):
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    features = mz.create(f"timm/{TIMM_ARCH}.r160_in1k", features_only=True, out_indices=(1, 3))
    assert features.load_report.source == f"timm/{TIMM_ARCH}.r160_in1k"
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = timm_source.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        got = features.eval()(x)
    assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, expected))
