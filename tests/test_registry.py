"""The registry's public API: create, list_models, model_card, register_model, plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import modelzoo as mz
from modelzoo import registry
from modelzoo.cli import main as cli_main
from modelzoo.errors import ConfigError, ModelzooError, UnknownModelError


def test_import_is_light() -> None:
    code = (
        "import sys, modelzoo; "
        "print([m for m in ('timm', 'torchvision', 'torchaudio') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(
        UnknownModelError, match=r"no model named 'resnt50'\. Did you mean: .*resnet50"
    ):
        mz.create("resnt50")
    with pytest.raises(LookupError):  # also a built-in lookup error
        mz.model_card("not_a_model_at_all")


def test_unknown_kwarg_names_the_accepted_ones() -> None:
    with pytest.raises(ConfigError) as err:
        mz.create("mlp", num_clases=3)
    message = str(err.value)
    assert "num_clases" in message and "Did you mean: num_classes" in message
    assert "Accepted:" in message and "hidden_sizes" in message


def test_none_kwargs_are_dropped() -> None:
    model = mz.create("mlp", num_classes=None, drop_rate=None)
    assert model.num_classes == mz.model_card("mlp").defaults["num_classes"]


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ConfigError, match="registered already"):

        @mz.register_model(family="mlp", task="classification", inputs=lambda m: ())
        def mlp() -> nn.Module:  # noqa: F811 - the clash is the point
            return nn.Identity()


def test_names_may_not_hold_separators() -> None:
    with pytest.raises(ConfigError, match="may not contain"):
        mz.register_model(family="x", task="y", inputs=lambda m: (), name="a.b")(
            lambda: nn.Identity()
        )


def test_list_models_filters_and_sorts_naturally() -> None:
    names = mz.list_models()
    assert names == sorted(set(names), key=registry.natural_key)
    resnets = mz.list_models("resnet*", family="resnet")
    assert resnets.index("resnet20") < resnets.index("resnet110")
    assert resnets.index("resnet18") < resnets.index("resnet101")
    assert all(mz.model_card(n).family == "resnet" for n in resnets)
    assert mz.list_models(["mlp", "lenet5"]) == ["lenet5", "mlp"]
    assert mz.list_models(task="image_classification", family="mlp") == []
    assert mz.list_models("vgg1?_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]


def test_list_models_includes_external_on_request() -> None:
    assert not any("/" in n for n in mz.list_models())
    external = mz.list_models("*resnet50", include_external=True)
    assert {"resnet50", "timm/resnet50", "torchvision/resnet50"} <= set(external)


def test_model_card_is_typed_and_complete() -> None:
    card = mz.model_card("resnet50")
    assert (card.name, card.family, card.task) == ("resnet50", "resnet", "image_classification")
    assert card.defaults["num_classes"] == 1000
    assert card.num_params == 25_557_032
    assert "Residual" in card.paper
    with pytest.raises(AttributeError):
        card.name = "other"  # frozen
    (images,) = card.example_inputs(batch_size=3)
    assert images.shape == (3, 3, 224, 224)
    assert torch.equal(images, card.example_inputs(batch_size=3)[0])  # seeded
    assert json.loads(json.dumps(card.to_dict()))["num_params"] == 25_557_032


def test_example_inputs_follow_overrides() -> None:
    model = mz.create("resnet20", in_chans=1)
    (x,) = mz.example_inputs(model)
    assert x.shape == (2, 1, 32, 32)
    with pytest.raises(ConfigError, match="create"):
        mz.example_inputs(nn.Linear(2, 2))


def test_weight_tag_without_weights_raises_clearly() -> None:
    with pytest.raises(mz.WeightsError, match="no pretrained weight sets"):
        mz.create("resnet32.digits")  # vgg13 ships no weight sets


def test_external_bridges_keep_the_keyword_conventions() -> None:
    tv = mz.create("torchvision/resnet18", num_classes=5, in_chans=1).eval()
    tm = mz.create("timm/resnet18", num_classes=5, in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert tv(x).shape == tm(x).shape == (2, 5)
    with pytest.raises(UnknownModelError, match="Did you mean: torchvision/resnet18"):
        mz.create("torchvision/resnt18")
    with pytest.raises(UnknownModelError, match="timm/resnet18"):
        mz.create("timm/resnt18")
    with pytest.raises(ConfigError, match="does not take"):
        mz.create("torchvision/resnet18", bogus=1)
    assert mz.model_card("timm/vit_tiny_patch16_224").num_params == 5_717_416


def test_errors_share_one_base() -> None:
    for error in (UnknownModelError, ConfigError, mz.WeightsError, mz.InputShapeError):
        assert issubclass(error, ModelzooError)
    assert issubclass(mz.IntegrityError, mz.WeightsError)


def test_entry_point_plugins_register_lazily(tmp_path, monkeypatch) -> None:
    (tmp_path / "zoo_plugin.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            import modelzoo as mz
            from modelzoo.layers import feature_inputs

            class Tiny(nn.Linear):
                in_features = 4

            @mz.register_model(family="plugin", task="regression", inputs=feature_inputs)
            def plugin_tiny() -> nn.Module:
                return Tiny(4, 1)
            """
        )
    )
    dist = tmp_path / "zoo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[modelzoo.models]\ntiny = zoo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mz.list_models()  # the built-in families first: monkeypatch restores this state afterwards
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    assert "plugin_tiny" in mz.list_models(family="plugin")
    assert mz.create("plugin_tiny")(torch.ones(1, 4)).shape == (1, 1)


def test_cli_list_and_info(capsys) -> None:
    assert cli_main(["list", "resnet5*", "--family", "resnet"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "25.6M" in out and "resnet56" in out
    assert cli_main(["list", "mlp*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(mz.list_models("mlp*"))
    assert cli_main(["info", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "25,557,032" in out and "images: (B, 3, 224, 224)" in out
    assert cli_main(["info", "resnt50"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_cli_list_external_builds_no_external_model(capsys, monkeypatch) -> None:
    # `modelzoo list --external` once built a card (a model) for each of ~1,500 bridged names
    # and took minutes; names, families and tasks must come without building anything.
    built: list[str] = []
    real = registry.model_card
    monkeypatch.setattr(registry, "model_card", lambda n: built.append(n) or real(n))
    assert cli_main(["list", "*resnet18", "--external"]) == 0
    out = capsys.readouterr().out
    assert "timm/resnet18" in out and "torchvision/resnet18" in out
    row = next(line for line in out.splitlines() if line.startswith("torchvision/resnet18 "))
    assert row.split()[1:] == ["external", "image_classification", "-"]
    assert all("/" not in name for name in built)  # only native models were counted
    assert cli_main(["list", "torchvision/resnet18", "--external", "--params", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["num_params"] == 11_689_512


def test_cli_list_pretrained_lists_weight_sets(capsys) -> None:
    assert cli_main(["list", "resnet20*", "--pretrained"]) == 0
    out = capsys.readouterr().out
    assert "resnet20.digits " in out and "resnet20.digits_0to4" in out
    assert cli_main(["list", "resnet50*", "--pretrained", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows.keys() == set(mz.list_models("resnet50*", pretrained=True))
    assert rows["resnet50.tv2_in1k"]["default"] is True


def test_cli_info_prints_a_readable_card(capsys) -> None:
    from modelzoo.weights import get_weight_set

    ws = get_weight_set("resnet20", "digits")
    assert cli_main(["info", "resnet20.digits"]) == 0
    out = capsys.readouterr().out
    assert "defined in  modelzoo.models.resnet:resnet20" in out
    assert ws.files[0].sha256 in out and f"{ws.files[0].size:,} bytes" in out  # full digest
    assert "resnet20.digits_0to4" not in out  # arch.tag shows that weight set only
    assert "{'arch'" not in out  # no raw dict reprs
    assert cli_main(["info", "resnet20.nope"]) == 2
    assert "resnet20.digits" in capsys.readouterr().err
    assert cli_main(["info", "resnet20", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [w["tag"] for w in info["weights"]] == [w.tag for w in mz.model_card("resnet20").weights]
