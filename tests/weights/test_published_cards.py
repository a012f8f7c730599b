"""The published (anchor) cards against the libraries that publish the weights, and
``modelzoo predict resnet50.tv2_in1k cat.jpg`` end to end through a mirror.

Every claim a card makes that torchvision or timm states too is checked against the
installed library: the URL and its sha256 prefix, the parameter count (also against the
native model built on the meta device), the published accuracy (torchvision), the class
names, the preprocessing, the license (timm), which weight set is the default, that the
weights' keys and shapes fit the native model, and that no weight set the libraries
publish for a native architecture is missing. timm's accuracies come from its results
CSV, which the installed package does not carry: they are not re-checked here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re

import numpy as np
import pytest
import timm
import torch
import torchvision
from PIL import Image
from timm.models import get_pretrained_cfg
from torchvision.models import get_model_weights

import modelzoo as mz
from modelzoo.cli import main as modelzoo_cli
from modelzoo.weights import (
    WeightFile,
    get_weight_set,
    register_weights,
    sha256_file,
    unregister_weights,
)
from modelzoo.weights.published import published_weight_sets

TV_TAGS = {"IMAGENET1K_V1": "tv_in1k", "IMAGENET1K_V2": "tv2_in1k"}
# torchvision weights that have no card, and why (see the module docstring of published.py).
TV_LEFT_OUT = {"vgg16.IMAGENET1K_FEATURES": "classifier values are NaN; feature extraction only"}
VITS = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224")
PUBLISHED = published_weight_sets()
TV_CARDS = [ws for ws in PUBLISHED if ws.tag in TV_TAGS.values()]
TIMM_CARDS = [ws for ws in PUBLISHED if ws.tag not in TV_TAGS.values()]
HASH_IN_NAME = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's rule for the hash in a file name


def _state_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _native_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return _state_shapes(mz.create(arch))


def _torchvision_archs() -> list[str]:
    """Native architectures for which torchvision publishes ImageNet weights (the detection
    and segmentation ones, fcos_resnet50_fpn and fcn_resnet50, have COCO weights only)."""
    native = set(mz.list_models())
    return sorted(
        a
        for a in torchvision.models.list_models()
        if a in native and any(w.name.startswith("IMAGENET") for w in get_model_weights(a))
    )


def test_every_torchvision_weight_of_a_native_architecture_has_a_card():
    expected = set()
    for arch in _torchvision_archs():
        for weights in get_model_weights(arch):
            key = f"{arch}.{weights.name}"
            if key not in TV_LEFT_OUT:
                expected.add(f"{arch}.{TV_TAGS[weights.name]}")  # a new kind: KeyError
    assert {ws.name for ws in TV_CARDS} == expected
    assert {a for a in _torchvision_archs()} == {
        *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
        *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    }


def test_every_imagenet_vit_tag_timm_publishes_has_a_card():
    expected = set()
    for arch in VITS:
        for name in timm.list_pretrained(f"{arch}.*"):
            cfg = get_pretrained_cfg(name)
            if cfg.num_classes == 1000 and tuple(cfg.input_size) == (3, 224, 224):
                expected.add(name)
    assert {ws.name for ws in TIMM_CARDS} == expected
    # Every native architecture timm publishes weights for has cards (resnets and vggs
    # through torchvision's files, which timm republishes as tv_in1k / tv2_in1k).
    native = set(mz.list_models())
    with_weights = {n.split(".")[0] for n in timm.list_pretrained()} & native
    assert with_weights <= {ws.arch for ws in PUBLISHED}


@pytest.mark.parametrize("ws", TV_CARDS, ids=lambda ws: ws.name)
def test_torchvision_card_states_what_torchvision_publishes(ws):
    tag = next(k for k, v in TV_TAGS.items() if v == ws.tag)
    enum = get_model_weights(ws.arch)
    weights = enum[tag]
    (wf,) = ws.files
    assert wf.urls == (weights.url,)
    assert wf.name == weights.url.rsplit("/", 1)[1]
    assert wf.sha256 == HASH_IN_NAME.search(wf.name).group(1) and len(wf.sha256) == 8
    assert ws.num_params == weights.meta["num_params"] == mz.model_card(ws.arch).num_params
    published = weights.meta["_metrics"]["ImageNet-1K"]
    assert ws.metrics == {"imagenet-1k": {"top1": published["acc@1"], "top5": published["acc@5"]}}
    assert list(ws.class_names) == weights.meta["categories"]
    preset = weights.transforms()
    spec = ws.input_spec
    assert [spec["img_size"]] == preset.crop_size and [spec["resize_size"]] == preset.resize_size
    assert spec["interpolation"] == preset.interpolation.value
    assert spec["mean"] == list(preset.mean) and spec["std"] == list(preset.std)
    assert math.floor(spec["img_size"] / spec["crop_pct"]) == spec["resize_size"]
    assert ws.default == (weights is enum.DEFAULT)
    assert ws.recipe == weights.meta["recipe"]
    # The file's keys and shapes fit the native model as they are.
    with torch.device("meta"):
        theirs = _state_shapes(torchvision.models.get_model(ws.arch))
    assert _native_shapes(ws.arch) == theirs


@pytest.mark.parametrize("ws", TIMM_CARDS, ids=lambda ws: ws.name)
def test_timm_card_states_what_timm_publishes(ws):
    cfg = get_pretrained_cfg(ws.name)
    (wf,) = ws.files
    assert wf.urls == (f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors",)
    assert wf.sha256 == ""  # not published outside the hub API: the card claims none
    spec = ws.input_spec
    assert (spec["in_chans"], spec["img_size"], spec["img_size"]) == tuple(cfg.input_size)
    assert spec["crop_pct"] == cfg.crop_pct and spec["crop_mode"] == cfg.crop_mode
    assert spec["resize_size"] == math.floor(spec["img_size"] / cfg.crop_pct)
    assert spec["interpolation"] == cfg.interpolation
    assert tuple(spec["mean"]) == tuple(cfg.mean) and tuple(spec["std"]) == tuple(cfg.std)
    assert ws.license == cfg.license
    assert ws.model_kwargs["num_classes"] == cfg.num_classes == len(ws.class_names) == 1000
    # timm's ImageNet-1k heads use the same class order as torchvision's categories.
    assert list(ws.class_names) == get_model_weights("resnet50").DEFAULT.meta["categories"]
    default_tag = get_pretrained_cfg(ws.arch).tag  # timm's default for the architecture
    assert ws.default == (ws.tag == default_tag)
    with torch.device("meta"):
        theirs = _state_shapes(timm.create_model(ws.arch, num_classes=cfg.num_classes))
    assert _native_shapes(ws.arch) == theirs
    assert ws.num_params == mz.model_card(ws.arch).num_params
    top1, top5 = ws.metrics["imagenet-1k"]["top1"], ws.metrics["imagenet-1k"]["top5"]
    assert 70 < top1 < top5 < 100


def test_each_architecture_has_exactly_one_default():
    for arch in {ws.arch for ws in PUBLISHED}:
        sets = mz.model_card(arch).weights
        assert sum(ws.default for ws in sets) == 1 and sets[0].default


# --- modelzoo predict resnet50.tv2_in1k cat.jpg, as a user with internet runs it -------------


@pytest.fixture
def cat_jpg(tmp_path):
    """A 480x360 photo-like JPEG (gradients and stripes): landscape, so the resize and the
    center crop both matter."""
    h, w = 360, 480
    ys, xs = np.mgrid[0:h, 0:w]
    pixels = np.stack([ys / h * 255, xs / w * 255, (xs + ys) % 64 * 4], axis=-1)
    path = tmp_path / "cat.jpg"
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=92)
    return path


@pytest.fixture
def resnet50_file():
    """torchvision's resnet50 (seeded initialization) as torchvision ships it: a torch.save'd
    state dict, named ``resnet50-<first 8 hex digits of its sha256>.pth``."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = buffer.getvalue()
    import hashlib

    prefix = hashlib.sha256(data).hexdigest()[:8]
    return model, data, prefix


def _torchvision_top5(model: torch.nn.Module, image_path) -> list[tuple[str, float]]:
    """What a torchvision user gets: the V2 weights' own preset and categories."""
    weights = get_model_weights("resnet50")["IMAGENET1K_V2"]
    with Image.open(image_path) as image:
        x = weights.transforms()(image.convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        probs = model(x).softmax(dim=1)[0]
    values, indices = probs.topk(5)
    return [(weights.meta["categories"][i], v) for v, i in zip(values.tolist(), indices.tolist())]


def test_predict_resnet50_tv2_in1k_through_a_mirror(
    server, cat_jpg, resnet50_file, tmp_path, monkeypatch, capsys
):
    """``modelzoo predict resnet50.tv2_in1k cat.jpg`` for a user with internet, offline.

    The real file (resnet50-11ad3fa6.pth, 98 MB) is not available here, and the card pins
    the first 8 hex digits of its real sha256, which no other file can match. So:

    1. a file in torchvision's format served under the real name is refused by the real
       card's hash prefix, and nothing is cached;
    2. a test card equal to resnet50.tv2_in1k in everything but its file (a seeded resnet50
       state dict saved with torch.save, named with its own hash prefix, as torch.hub names
       files) is registered; ``MODELZOO_MIRROR`` points at the loopback server, whose
       mirror serves that file. The command goes the whole way: mirror download ->
       size/sha256-prefix verification -> cache -> weights_only load into the native
       resnet50 -> the card's preprocessing -> softmax -> ImageNet class names printed.
       Its top 5 must be what torchvision's own model, preset and categories give for
       the same weights and image.
    3. the same command again with MODELZOO_OFFLINE=1 answers from the cache.
    """
    tv_model, data, prefix = resnet50_file
    expected = _torchvision_top5(tv_model, cat_jpg)
    monkeypatch.setenv("MODELZOO_MIRROR", server.base + "/mirror")

    real = get_weight_set("resnet50", "tv2_in1k")
    (real_file,) = real.files
    server.add(f"/mirror/{real_file.name}", data)  # the real name, other bytes
    # The real card, its origin URL moved to the loopback server (nothing may reach the
    # internet when the mirror's file is refused).
    offline_origin = dataclasses.replace(real_file, urls=(server.base + "/gone/x.pth",))
    register_weights(dataclasses.replace(real, tag="real_tv2", files=(offline_origin,)))
    try:
        assert modelzoo_cli(["predict", "resnet50.real_tv2", str(cat_jpg)]) == 2
    finally:
        unregister_weights("resnet50", "real_tv2")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert real_file.name in captured.err and f"starting with {real_file.sha256}" in captured.err
    assert not list((tmp_path / "modelzoo_home").rglob(real_file.name))

    name = f"resnet50-{prefix}.pth"
    mirrored = server.add(f"/mirror/{name}", data)
    origin = server.add(f"/models/{name}", data)  # the card's own URL: never needed here
    card = dataclasses.replace(
        real,
        tag="loopback_tv2",
        default=False,
        files=(WeightFile(name=name, size=len(data), sha256=prefix, urls=(origin,)),),
    )
    register_weights(card)
    try:
        assert modelzoo_cli(["predict", "resnet50.loopback_tv2", str(cat_jpg), "--json"]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        assert result["file"] == str(cat_jpg)
        got = [(p["label"], p["probability"]) for p in result["predictions"]]
        assert [label for label, _ in got] == [label for label, _ in expected]
        assert np.allclose([p for _, p in got], [p for _, p in expected], atol=1e-5)
        assert server.full_transfers(mirrored.removeprefix(server.base)) == 1
        assert server.requests_for(origin.removeprefix(server.base)) == []
        cached = list((tmp_path / "modelzoo_home").rglob(name))
        assert len(cached) == 1 and sha256_file(cached[0]).startswith(prefix)

        monkeypatch.setenv("MODELZOO_OFFLINE", "1")
        assert modelzoo_cli(["predict", "resnet50.loopback_tv2", str(cat_jpg), "--top-k", "2"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == str(cat_jpg)
        assert [line.split(None, 1)[1] for line in lines[1:]] == [lb for lb, _ in expected[:2]]
        assert server.full_transfers(mirrored.removeprefix(server.base)) == 1  # no new request
    finally:
        unregister_weights("resnet50", "loopback_tv2")
