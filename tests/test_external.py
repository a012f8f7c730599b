"""The timm and torchvision bridges: the ``pretrained=`` forms, tags, and their errors.

Downloads of library weights (mirror, cache, hash, offline) are tested against the
loopback server in ``tests/weights/test_external_weights.py``; here nothing is
downloaded.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, WeightsError
from modelzoo.models.external import resolve_external_weights
from modelzoo.weights.pretrained import from_pretrained, save_pretrained


def _save(model: nn.Module, path) -> str:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


@pytest.mark.parametrize(
    "call, listed",
    [
        (lambda: mz.create("timm/resnet18.a1_in1kk"), "a1_in1k, a2_in1k"),
        (lambda: mz.create("timm/resnet18", pretrained="a1_in1kk"), "a1_in1k, a2_in1k"),
        (lambda: mz.create("torchvision/resnet18.IMAGENET"), "IMAGENET1K_V1"),
        (lambda: mz.create("torchvision/resnet18", weights="IMAGENET1K_V9"), "IMAGENET1K_V1"),
    ],
)
def test_an_unknown_tag_lists_the_tags_the_library_publishes(call, listed):
    with pytest.raises(WeightsError, match="has no pretrained weights tagged") as err:
        call()
    assert listed in str(err.value)
    assert "Did you mean" in str(err.value)


def test_tags_resolve_to_the_librarys_files_and_facts():
    tv = resolve_external_weights("torchvision/resnet18", True)
    assert tv.name == "torchvision/resnet18.IMAGENET1K_V1"  # torchvision's DEFAULT
    assert tv.file.name == "resnet18-f37072fd.pth" and tv.file.sha256 == "f37072fd"
    assert tv.file.urls == ("https://download.pytorch.org/models/resnet18-f37072fd.pth",)
    assert tv.metrics["ImageNet-1K"]["acc@1"] == pytest.approx(69.758)

    tm = resolve_external_weights("timm/resnet18.a1_in1k")
    assert tm.file.urls == (
        "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors",
    )
    assert tm.file.sha256 == ""  # timm publishes none: the unverified-download rule applies
    assert tm.license == "apache-2.0"
    assert resolve_external_weights("timm/resnet18", True).tag == "a1_in1k"  # timm's default

    # Fresh, and files or URLs (the zoo's loader resolves those): no library weights.
    for pretrained in (None, False, "weights.pth", "https://host/w.safetensors"):
        assert resolve_external_weights("timm/resnet18", pretrained) is None


def test_conflicting_weight_choices_raise():
    with pytest.raises(ConfigError, match="names the weights 'a1_in1k'"):
        mz.create("timm/resnet18.a1_in1k", pretrained="a2_in1k")
    with pytest.raises(ConfigError, match="'weights' is torchvision's keyword"):
        mz.create("timm/resnet18", weights="a1_in1k")
    with pytest.raises(ConfigError, match="weights_backbone"):
        mz.create("torchvision/fasterrcnn_resnet50_fpn", weights_backbone="DEFAULT")


def test_a_local_file_loads_into_a_bridged_model_and_adapts_the_input(tmp_path):
    torch.manual_seed(0)
    source = mz.create("timm/test_resnet").eval()
    path = _save(source, tmp_path / "rgb.safetensors")

    grey = mz.create("timm/test_resnet", pretrained=path, in_chans=1, num_classes=3)
    report = grey.load_report
    assert report.source == path
    assert [a.key for a in report.adapted] == ["conv1.0.weight"]  # its deep stem's first conv
    assert {r.key for r in report.reinitialized} == {"fc.weight", "fc.bias"}
    # A grey image through the adapted model is the RGB model on the replicated image.
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = source.forward_features(x.expand(-1, 3, -1, -1))
        torch.testing.assert_close(grey.eval().forward_features(x), expected)

    with pytest.raises(WeightsError, match="missing.safetensors"):
        mz.create("timm/test_resnet", pretrained=str(tmp_path / "missing.safetensors"))


def test_a_bridged_model_round_trips_through_save_pretrained(tmp_path):
    torch.manual_seed(0)
    source = mz.create("torchvision/shufflenet_v2_x0_5", num_classes=4)
    path = _save(source, tmp_path / "tv.safetensors")
    model = mz.create("torchvision/shufflenet_v2_x0_5", pretrained=path, num_classes=4)
    assert model.load_report.exact
    assert model.init_kwargs == {"num_classes": 4}  # the weights are not re-fetched on rebuild
    rebuilt = from_pretrained(save_pretrained(model, tmp_path / "saved"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), source.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["timm/resnet18", "torchvision/resnet18", "resnet18"])
def test_feature_extractors_round_trip_through_save_pretrained(name, tmp_path) -> None:
    torch.manual_seed(0)
    model = mz.create(name, features_only=True, out_indices=(1, 3)).eval()
    mz.save_pretrained(model, tmp_path / "features")
    loaded = mz.from_pretrained(tmp_path / "features").eval()
    assert type(loaded) is type(model) and loaded.channels() == model.channels()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x), strict=True):
            torch.testing.assert_close(a, b)
