"""Names from outside never write or read outside their root.

Hostile URLs are served by the loopback server and fetched into a cache that
sits a few folders below the test's own temporary tree; afterwards nothing may
exist anywhere in that tree (or in its parent folders) but inside the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as safetensors_bytes

import modelzoo
from modelzoo.errors import UnknownModelError, WeightsError
from modelzoo.weights import (
    WeightFile,
    WeightSet,
    cache_entries,
    clean_cache,
    fetch,
    get_weight_set,
    load_manifest,
    manifest,
)
from modelzoo.weights.pretrained import from_pretrained, save_pretrained


@pytest.fixture
def owned(tmp_path, monkeypatch):
    """A cache root three folders below tmp_path, so an escape of any depth lands in view."""
    home = tmp_path / "owned" / "deep" / "cache"
    monkeypatch.setenv("MODELZOO_HOME", str(home))
    return home


def _snapshot(tmp_path: Path) -> set[str]:
    """Everything under tmp_path, and the entries of its parent folder.

    (The parent holds only this session's test folders; the folder above it is shared
    with other pytest runs on the machine, so it is not watched: the deepest hostile
    name below escapes exactly into the parent.)
    """
    return {str(p) for p in tmp_path.rglob("*")} | {str(p) for p in tmp_path.parent.iterdir()}


def _new_outside(before: set[str], tmp_path: Path, home: Path) -> list[str]:
    after = _snapshot(tmp_path)
    home_ancestors = {str(p) for p in home.parents}
    return sorted(
        p
        for p in after - before
        if not Path(p).is_relative_to(home) and p not in home_ancestors  # its own folders
    )


# A fixed name: pytest-xdist workers must collect the same test ids.
_ESCAPE_NAME = "modelzoo-hostile-name-test-escape.bin"

# (last path segment as sent, the cache entry name it must get, or None: must raise)
HOSTILE = [
    ("..%2F..%2F..%2Fescaped.bin", "escaped.bin"),
    ("..%2F..%2F..%2F..%2F..%2F..%2Fescaped6.bin", "escaped6.bin"),
    (f"%2Ftmp%2F{_ESCAPE_NAME}", _ESCAPE_NAME),
    ("%252F..%252F..%252F..%252Fdouble.bin", "double.bin"),
    ("%25252F..%25252F..%25252Ftriple.bin", "triple.bin"),
    ("..%5C..%5C..%5Cbackslash.bin", "backslash.bin"),
    ("%2e%2e%2f%2e%2e%2f%2e%2e%2fdots.bin", "dots.bin"),
    ("C:%5Cwindows.bin", "windows.bin"),
    ("C:drive.bin", None),
    ("nul%00.bin", None),
    ("newline%0A.bin", None),
    ("a" * 300 + ".bin", None),
    ("..", None),
    ("%2e%2e", None),
    ("x%2F..", None),
    ("w.bin.meta.json", None),
    ("w.bin.lock", None),
    (".hidden.bin", None),
]


@pytest.mark.parametrize(("segment", "expected"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_url_downloads_under_a_safe_name_or_raises(
    server, owned, tmp_path, payload, segment, expected
):
    Path("/tmp", _ESCAPE_NAME).unlink(missing_ok=True)  # left by an older, broken run
    data = payload(5000)
    url = server.add(f"/x/{segment}", data)
    before = _snapshot(tmp_path)
    sha = hashlib.sha256(data).hexdigest()
    if expected is None:
        with pytest.raises(WeightsError) as err:
            fetch(url, sha256=sha, progress=False)
        assert url in str(err.value)
        assert server.log == []  # refused before any request
    else:
        path = fetch(url, sha256=sha, progress=False)
        assert path.name == expected
        assert path.is_relative_to(owned.resolve())
        assert path.read_bytes() == data
    assert _new_outside(before, tmp_path, owned) == []
    assert not Path("/tmp", _ESCAPE_NAME).exists()


def test_a_url_ending_in_a_folder_is_stored_as_download(server, owned, payload):
    data = payload(100)
    url = server.add("/x/", data)
    path = fetch(url, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert path.name == "download" and path.is_relative_to(owned.resolve())


def _lenet_bytes() -> tuple[bytes, dict[str, torch.Tensor]]:
    state = {k: v.clone() for k, v in modelzoo.create("lenet5").state_dict().items()}
    for v in state.values():
        if v.is_floating_point():
            v.normal_()
    return safetensors_bytes(state), state


def test_create_with_a_hostile_url_loads_from_inside_the_cache(
    server, owned, tmp_path, monkeypatch
):
    data, state = _lenet_bytes()
    url = server.add("/x/..%2F..%2F..%2F..%2Fweights.safetensors", data)
    monkeypatch.setenv("MODELZOO_ALLOW_UNVERIFIED", "1")
    before = _snapshot(tmp_path)
    model = modelzoo.create("lenet5", pretrained=url)
    assert model.load_report.exact
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    (entry,) = cache_entries()
    assert entry.name == "weights.safetensors" and entry.source == url
    assert _new_outside(before, tmp_path, owned) == []
    with pytest.raises(WeightsError, match="nul"):
        modelzoo.create("lenet5", pretrained=server.add("/x/nul%00.safetensors", data))


def test_hostile_card_and_manifest_names_are_refused(tmp_path, monkeypatch):
    for name in ("../x.bin", "/etc/passwd", "a\\b.bin", "..", "C:x.bin", "a\0.bin", "a" * 300):
        with pytest.raises(WeightsError, match="bare file name"):
            WeightFile(name=name, size=0, sha256="")
    for path in ("weights/../../etc/passwd", "/etc/passwd", "other/x.bin", "weights/a/b.bin"):
        with pytest.raises(WeightsError, match="weights/<file name>"):
            WeightFile(name="x.bin", size=0, sha256="", path=path)
    with pytest.raises(WeightsError, match="http"):
        WeightFile(name="x.bin", size=0, sha256="", urls=("ftp://host/x.bin",))
    for arch, tag in (("..", "t"), ("mlp", ".."), ("mlp", "a\\b"), ("m/x", "t")):
        with pytest.raises(WeightsError):
            WeightSet(arch, tag, (), {}, {}, "", None, {})
    with pytest.raises(WeightsError, match="weights/<file name>"):
        manifest.shipped_file("weights/../../../etc/passwd")

    root = tmp_path / "weights"
    root.mkdir()
    card = {
        "arch": "mlp",
        "tag": "evil",
        "files": [{"name": "../../evil.safetensors", "size": 1, "sha256": "a" * 64}],
        "model_kwargs": {},
        "metrics": {},
        "license": "x",
        "recipe": None,
        "input_spec": {},
    }
    (root / "manifest.json").write_text(json.dumps({"format": 1, "weight_sets": [card]}))
    with pytest.raises(WeightsError, match="bare file name"):
        load_manifest(root)
    card["files"][0] = {"name": "ok.safetensors", "path": "weights/../../evil.safetensors"}
    (root / "manifest.json").write_text(json.dumps({"format": 1, "weight_sets": [card]}))
    with pytest.raises(WeightsError, match="weights/<file name>"):
        load_manifest(root)
    (root / "manifest.json").write_text(json.dumps({"format": 1, "weight_sets": "x"}))
    with pytest.raises(WeightsError, match="list of cards"):
        load_manifest(root)


def test_mirror_urls_keep_the_name_one_segment(server, owned, monkeypatch, payload):
    data = payload(1000)
    name = "a%2F..%2F..%2Fb.bin"  # a literal name: percent signs are just characters here
    server.add("/mirror/" + urllib.parse.quote(name, safe=""), data)
    monkeypatch.setenv("MODELZOO_MIRROR", f"{server.base}/mirror")
    wf = WeightFile(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    path = fetch(wf, progress=False)
    assert path.name == name and path.is_relative_to(owned.resolve())
    assert [r["path"] for r in server.log] == ["/mirror/a%252F..%252F..%252Fb.bin"]
    monkeypatch.setenv("MODELZOO_MIRROR", "ftp://mirror.example.org/w")
    with pytest.raises(WeightsError, match="MODELZOO_MIRROR"):
        fetch(WeightFile(name="c.bin", size=1, sha256="b" * 64), progress=False)


def _index_dir(tmp_path: Path, shard: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    keys = modelzoo.create("lenet5").state_dict()
    index = {"metadata": {}, "weight_map": {k: shard for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


@pytest.mark.parametrize(
    "shard",
    ["../outside.safetensors", "OUTSIDE", "sub/../../outside.safetensors", "..\\x", "..", ""],
)
def test_hostile_shard_names_raise_and_read_nothing_outside(tmp_path, shard):
    data, _ = _lenet_bytes()
    outside = tmp_path / "outside.safetensors"  # a valid file the index points at
    outside.write_bytes(data)
    shard = str(outside) if shard == "OUTSIDE" else shard
    folder = _index_dir(tmp_path, shard)
    index = folder / "model.safetensors.index.json"
    with pytest.raises(WeightsError) as err:
        modelzoo.create("lenet5", pretrained=folder)
    assert str(index) in str(err.value)
    assert "nothing was read" in str(err.value) or "not a valid shard index" in str(err.value)


def test_a_shard_index_inside_its_folder_still_loads(tmp_path):
    data, state = _lenet_bytes()
    folder = _index_dir(tmp_path, "model-00001-of-00001.safetensors")
    (folder / "model-00001-of-00001.safetensors").write_bytes(data)
    model = modelzoo.create("lenet5", pretrained=folder)
    assert model.load_report.exact
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


@pytest.fixture
def saved(tmp_path):
    model = modelzoo.create("cnn_small", num_classes=3, in_chans=1, channels=(4, 8))
    return save_pretrained(model, tmp_path / "saved")


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"model_name": "../../etc/passwd"}, "model_name"),
        ({"model_name": "cnn_small.digits"}, "without a weight tag"),  # would fetch weights
        ({"model_name": "no_such_model"}, "model_name"),
        ({"model_name": ["cnn_small"]}, "model_name"),
        ({"model_kwargs": {"pretrained": "/etc/passwd"}}, "pretrained"),
        ({"model_kwargs": {"checkpoint_path": "x.pth"}}, "checkpoint_path"),
        ({"model_kwargs": {"backbone_kwargs": {"pretrained": True}}}, "backbone_kwargs.pretrained"),
        ({"model_kwargs": {"act_layer": "../../x.bin"}}, "looks like a path"),
        ({"model_kwargs": {"act_layer": "https://evil.example/x"}}, "looks like a path"),
        ({"model_kwargs": {"act_layer": {"__type__": "os.system"}}}, "layer type"),
        ({"model_kwargs": {"act_layer": {"__type__": "torch.nn.__class__"}}}, "layer type"),
        ({"model_kwargs": "x"}, "model_kwargs"),
        ({"out_indices": "../x"}, "out_indices"),
    ],
)
def test_hostile_config_json_is_refused(saved, tmp_path, changes, phrase):
    _edit_config(saved, **changes)
    before = _snapshot(tmp_path)
    with pytest.raises(WeightsError) as err:
        from_pretrained(saved)
    assert phrase in str(err.value)
    assert str(saved / "config.json") in str(err.value) or "layer type" in str(err.value)
    assert _new_outside(before, tmp_path, tmp_path) == []


def test_a_config_with_layer_types_and_tuples_still_loads(tmp_path):
    model = modelzoo.create(
        "cnn_small", num_classes=3, in_chans=1, channels=(4, 8), act_layer=torch.nn.GELU
    )
    again = from_pretrained(save_pretrained(model, tmp_path / "ok"))
    assert again.load_report.exact and isinstance(again.stages[0].act, torch.nn.GELU)


def test_clean_never_follows_a_symlink_out_of_the_cache(owned, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    victims = [outside / "model.bin.meta.json", outside / "model.bin.4242.part", outside / "w"]
    for victim in victims:
        victim.write_text("keep me")
    (owned / "weights").mkdir(parents=True)
    os.symlink(outside, owned / "weights" / ("0" * 64))
    assert cache_entries() == []
    clean_cache()
    assert all(v.read_text() == "keep me" for v in victims)
    clean_cache(everything=True)
    assert all(v.read_text() == "keep me" for v in victims)
    os.symlink(outside, owned / "weights-link")
    (owned / "weights").rmdir() if (owned / "weights").exists() else None
    os.rename(owned / "weights-link", owned / "weights")  # the whole weights folder is a link
    clean_cache(everything=True)
    assert all(v.read_text() == "keep me" for v in victims)
    assert not (owned / "weights").exists()


def test_unknown_weight_names_suggest_close_ones():
    with pytest.raises(UnknownModelError, match=r"Did you mean: resnet20\b"):
        get_weight_set("resnt20")
    with pytest.raises(WeightsError, match="resnt20"):  # still a WeightsError for old callers
        get_weight_set("resnt20", "digits")
    with pytest.raises(WeightsError, match=r"Did you mean: resnet20\.digits"):
        get_weight_set("resnet20", "digts")
