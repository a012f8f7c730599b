"""Weight cards: the index, the shipped manifest, the anchor cards, and loading them end to end."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

import modelzoo
from modelzoo.errors import ConfigError, IntegrityError, WeightsError
from modelzoo.weights import (
    WeightFile,
    WeightSet,
    add_shipped_weight_set,
    all_weight_sets,
    fetch,
    fetch_weight_set,
    get_weight_set,
    is_tag,
    load_manifest,
    manifest,
    read_weights,
    register_weights,
    save_weights,
    sha256_file,
    shipped_dir,
    unregister_weights,
    weight_sets,
)
from modelzoo.weights.published import published_weight_sets


def _card(arch="mlp", tag="t", **changes) -> WeightSet:
    ws = WeightSet(
        arch=arch,
        tag=tag,
        files=(WeightFile(name=f"{arch}.{tag}.safetensors", size=10, sha256="a" * 64),),
        model_kwargs={"num_classes": 10, "in_chans": 1},
        metrics={"digits": {"top1": 97.5}},
        license="bsd-3-clause",
        recipe={"model": {"name": arch}},
        input_spec={"size": 8, "in_chans": 1, "mean": [0.5], "std": [0.5]},
    )
    return dataclasses.replace(ws, **changes)


@pytest.fixture
def registered():
    """Register cards for one test and remove them afterwards."""
    added = []

    def add(ws: WeightSet) -> WeightSet:
        register_weights(ws)
        added.append(ws)
        return ws

    yield add
    for ws in added:
        unregister_weights(ws.arch, ws.tag)


def test_card_json_round_trip_and_validation():
    ws = _card(default=True, num_params=123, description="d")
    again = WeightSet.from_dict(json.loads(json.dumps(ws.to_dict())))
    assert again == ws
    with pytest.raises(WeightsError, match="unknown metricz"):
        WeightSet.from_dict({**ws.to_dict(), "metricz": {}})
    with pytest.raises(WeightsError, match="missing license"):
        WeightSet.from_dict({k: v for k, v in ws.to_dict().items() if k != "license"})
    with pytest.raises(WeightsError, match="sha256"):
        WeightFile(name="x", size=1, sha256="abc")
    with pytest.raises(WeightsError, match="tag"):
        _card(tag="a.b")


def test_index_default_unknown_tags_and_duplicates(registered):
    registered(_card(arch="zz_arch", tag="first"))
    registered(_card(arch="zz_arch", tag="best", default=True))
    assert get_weight_set("zz_arch").tag == "best"
    assert get_weight_set("zz_arch", "first").tag == "first"
    assert is_tag("zz_arch", "first") and not is_tag("zz_arch", "nope")
    assert [ws.tag for ws in weight_sets("zz_arch")] == ["best", "first"]
    assert {"zz_arch.best", "zz_arch.first"} <= {ws.name for ws in all_weight_sets()}
    with pytest.raises(WeightsError, match="zz_arch.best, zz_arch.first"):
        get_weight_set("zz_arch", "nope")
    with pytest.raises(ConfigError, match="registered already"):
        register_weights(_card(arch="zz_arch", tag="first"))
    with pytest.raises(WeightsError, match="no pretrained weight sets.*pretrained=False"):
        get_weight_set("lenet5")  # a model that ships no weight sets


def test_shipped_manifest_is_valid_and_every_claim_holds():
    path = shipped_dir() / "manifest.json"
    data = json.loads(path.read_text())
    assert data["format"] == 1 and isinstance(data["weight_sets"], list)
    for ws in load_manifest():
        assert ws.source_format == "safetensors"  # nothing shipped is pickled
        for wf in ws.files:
            local = manifest.shipped_file(wf.path)
            assert local.stat().st_size == wf.size, wf.name
            assert sha256_file(local) == wf.sha256, wf.name
        if ws.num_params is not None:
            # The model the weights fit: the builder with the card's model_kwargs.
            with torch.device("meta"):
                model = modelzoo.create(ws.arch, **ws.model_kwargs)
            assert sum(p.numel() for p in model.parameters()) == ws.num_params, ws.name


def test_add_shipped_weight_set_writes_file_and_sorted_manifest(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    src = save_weights({"w": torch.arange(4.0)}, tmp_path / "trained.safetensors")
    b = add_shipped_weight_set(_card(arch="mlp", tag="b", files=()), src, root=root)
    a = add_shipped_weight_set(_card(arch="mlp", tag="a", files=()), src, root=root)
    shipped = root / "mlp.b.safetensors"
    assert b.files[0].path == "weights/mlp.b.safetensors"
    assert b.files[0].sha256 == sha256_file(shipped) and b.files[0].size == shipped.stat().st_size
    assert [ws.name for ws in load_manifest(root)] == ["mlp.a", "mlp.b"]
    # Re-shipping replaces the card instead of duplicating it.
    src2 = save_weights({"w": torch.zeros(4)}, tmp_path / "retrained.safetensors")
    b2 = add_shipped_weight_set(_card(arch="mlp", tag="b", files=()), src2, root=root)
    assert [ws.name for ws in load_manifest(root)] == ["mlp.a", "mlp.b"]
    assert b2.files[0].sha256 != b.files[0].sha256
    assert load_manifest(root)[0] == a
    # fetch() finds shipped files through their path, and catches damage.
    monkeypatch.setattr(manifest, "shipped_dir", lambda: root)
    assert fetch(b2.files[0]) == shipped.resolve()
    assert torch.equal(read_weights(shipped)["w"], torch.zeros(4))
    shipped.write_bytes(shipped.read_bytes()[:-4])
    with pytest.raises(WeightsError, match="truncated"):
        fetch(b2.files[0])
    torch.save({"w": torch.ones(1)}, tmp_path / "pickled.pth")
    with pytest.raises(WeightsError, match="pickled.pth"):
        add_shipped_weight_set(_card(tag="c", files=()), tmp_path / "pickled.pth", root=root)


def test_damaged_shipped_file_says_how_to_restore(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    src = save_weights({"w": torch.arange(4.0)}, tmp_path / "trained.safetensors")
    ws = add_shipped_weight_set(_card(arch="mlp", tag="x", files=()), src, root=root)
    monkeypatch.setattr(manifest, "shipped_dir", lambda: root)
    save_weights({"w": torch.arange(4.0) + 1}, root / "mlp.x.safetensors")  # valid, but other
    with pytest.raises(IntegrityError, match="git checkout weights/mlp.x.safetensors"):
        fetch(ws.files[0])


@pytest.mark.parametrize("ws", published_weight_sets(), ids=lambda ws: ws.name)
def test_anchor_cards_fit_the_zoo_architectures(ws):
    card = modelzoo.model_card(ws.arch)
    assert card.num_params == ws.num_params
    assert ws.model_kwargs["num_classes"] == card.defaults["num_classes"] == 1000
    assert ws.name in modelzoo.list_models(f"{ws.arch}.*", pretrained=True)
    assert ws in card.weights
    (wf,) = ws.files
    assert all(url.startswith("https://") for url in wf.urls)
    if ws.source_format == "pytorch":  # torchvision: the published prefix is in the name
        assert re.fullmatch(rf"{ws.arch}-{wf.sha256}\.pth", wf.name)
        assert wf.urls == (f"https://download.pytorch.org/models/{wf.name}",)
    else:
        assert wf.urls[0].endswith(f"/timm/{ws.name}/resolve/main/model.safetensors")
    assert 0 < ws.metrics["imagenet-1k"]["top1"] < ws.metrics["imagenet-1k"]["top5"] < 100


def test_torchvision_style_card_through_a_loopback_server(server, registered):
    state = {"conv1.weight": torch.randn(4, 3, 3, 3), "fc.bias": torch.randn(5)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"resnet18-{prefix}.pth"
    anchor = get_weight_set("resnet18", "tv_in1k")
    wf = WeightFile(name=name, size=0, sha256=prefix, urls=(server.add("/models/" + name, data),))
    registered(dataclasses.replace(anchor, tag="loopback_tv", default=False, files=(wf,)))
    (path,) = fetch_weight_set("resnet18.loopback_tv", progress=False)
    loaded = read_weights(path)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    # A file that does not start with the published prefix is refused.
    other = dataclasses.replace(wf, sha256="0" * 8)
    with pytest.raises(IntegrityError, match="starting with 00000000"):
        fetch(other, progress=False)


def test_timm_style_card_through_a_loopback_server(server, registered, monkeypatch):
    state = {"patch_embed.proj.weight": torch.randn(8, 3, 4, 4), "head.bias": torch.randn(10)}
    data = safetensors_bytes(state)
    anchor = get_weight_set("vit_tiny_patch16_224")
    url = server.add("/timm/vit_tiny/resolve/main/model.safetensors", data)
    wf = WeightFile(
        name="vit_tiny_patch16_224.loopback.safetensors", size=0, sha256="", urls=(url,)
    )
    registered(dataclasses.replace(anchor, tag="loopback", default=False, files=(wf,)))
    with pytest.raises(WeightsError, match="no published sha256"):
        fetch_weight_set("vit_tiny_patch16_224.loopback", progress=False)
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    (path,) = fetch_weight_set("vit_tiny_patch16_224.loopback", progress=False)
    loaded = read_weights(path)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
