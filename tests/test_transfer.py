"""Transfer learning: loading with adaptation, strict mode, freezing, groups, save/load."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

import modelzoo as mz
from modelzoo.errors import ConfigError, WeightsError
from modelzoo.train.param_groups import layer_ids, param_groups
from modelzoo.transfer import (
    GradualUnfreeze,
    adapt_input_conv_weight,
    extract_features,
    freeze,
    load_pretrained,
    trainable_parameter_count,
    unfreeze,
)
from modelzoo.weights.pretrained import from_pretrained, save_pretrained

SMALL_CNN = dict(in_chans=1, img_size=8, channels=(8, 16))


def _randomize_bn_stats(model: nn.Module) -> nn.Module:
    """Give BatchNorm statistics that differ from the init, so loading them shows."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model


def _source(name: str, seed: int = 0, **kwargs: object) -> nn.Module:
    torch.manual_seed(seed)
    return _randomize_bn_stats(mz.create(name, **kwargs)).eval()


def _save(model: nn.Module, path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------- loading


def test_new_num_classes_reinitializes_only_the_head(tmp_path: Path) -> None:
    src = _source("cnn_small", num_classes=10, **SMALL_CNN)
    path = _save(src, tmp_path / "src.safetensors")
    torch.manual_seed(1)
    fresh = mz.create("cnn_small", num_classes=5, **SMALL_CNN)
    torch.manual_seed(1)
    model = mz.create("cnn_small", num_classes=5, pretrained=str(path), **SMALL_CNN).eval()

    report = model.load_report
    assert {(r.key, r.file_shape, r.model_shape) for r in report.reinitialized} == {
        ("head.weight", (10, 16), (5, 16)),
        ("head.bias", (10,), (5,)),
    }
    assert set(report.loaded) == set(src.state_dict()) - {"head.weight", "head.bias"}
    assert not (report.adapted or report.dropped or report.missing)
    assert "head.weight" in str(report) and "re-initialized" in str(report)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), src.forward_features(x))
    # The head keeps the initialization a model built without weights gets.
    assert torch.equal(model.head.weight, fresh.head.weight)
    assert model(x).shape == (3, 5)


def test_grey_input_from_rgb_weights_matches_the_replicated_image(tmp_path: Path) -> None:
    src = _source("resnet20", in_chans=3)
    model = mz.create("resnet20", in_chans=1, pretrained=_save(src, tmp_path / "rgb.safetensors"))
    (adapted,) = model.load_report.adapted
    assert (adapted.key, adapted.from_shape, adapted.to_shape) == (
        "conv1.weight",
        (16, 3, 3, 3),
        (16, 1, 3, 3),
    )
    grey = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(grey), src(grey.expand(-1, 3, -1, -1)))


def test_rgb_input_from_grey_weights_matches_on_a_grey_image(tmp_path: Path) -> None:
    src = _source("resnet20", in_chans=1)
    model = mz.create("resnet20", in_chans=3, pretrained=_save(src, tmp_path / "grey.safetensors"))
    assert [a.key for a in model.load_report.adapted] == ["conv1.weight"]
    grey = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(grey.expand(-1, 3, -1, -1)), src(grey))


def test_more_channels_repeat_and_rescale(tmp_path: Path) -> None:
    src = _source("resnet20", in_chans=3)
    path = _save(src, tmp_path / "rgb.safetensors")
    four = mz.create("resnet20", in_chans=4, pretrained=path)
    w = src.conv1.weight
    expected = torch.cat([w, w[:, :1]], dim=1) * (3 / 4)
    torch.testing.assert_close(four.conv1.weight, expected)
    # Twice the channels: the doubled image gives the original response exactly.
    six = mz.create("resnet20", in_chans=6, pretrained=path).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(six(torch.cat([x, x], dim=1)), src(x))


def test_fewer_channels_fold_onto_the_remaining_ones() -> None:
    w = torch.randn(5, 4, 3, 3)
    folded = adapt_input_conv_weight(w, 3)
    torch.testing.assert_close(folded, torch.stack([w[:, 0] + w[:, 3], w[:, 1], w[:, 2]], 1))
    torch.testing.assert_close(adapt_input_conv_weight(w, 1), w.sum(1, keepdim=True))


def test_strict_names_every_mismatch_and_leaves_the_model_untouched(tmp_path: Path) -> None:
    src = _source("cnn_small", num_classes=10, **SMALL_CNN)
    state = src.state_dict()
    del state["stages.0.conv.weight"]
    state["extra.weight"] = torch.zeros(2, 2)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = mz.create("cnn_small", num_classes=5, **SMALL_CNN)
    before = _state_copy(model)
    with pytest.raises(WeightsError) as err:
        load_pretrained(model, path, strict=True)
    message = str(err.value)
    for expected in (
        "head.weight: file (10, 16), model (5, 16)",
        "head.bias: file (10,), model (5,)",
        "stages.0.conv.weight (model (8, 1, 3, 3))",
        "extra.weight (file (2, 2))",
        "left unchanged",
    ):
        assert expected in message
    assert _same_state(model, before)
    with pytest.raises(WeightsError, match="head.bias"):
        mz.create("cnn_small", num_classes=5, pretrained=path, strict=True, **SMALL_CNN)


def test_strict_refuses_an_input_adaptation(tmp_path: Path) -> None:
    path = _save(_source("resnet20", in_chans=3), tmp_path / "rgb.safetensors")
    with pytest.raises(WeightsError, match=r"conv1.weight: file \(16, 3, 3, 3\), model"):
        mz.create("resnet20", in_chans=1, pretrained=path, strict=True)
    exact = mz.create("resnet20", in_chans=3, pretrained=path, strict=True)
    assert exact.load_report.exact


def test_hidden_layer_mismatch_raises_even_when_not_strict(tmp_path: Path) -> None:
    path = _save(_source("cnn_small", **SMALL_CNN), tmp_path / "w.safetensors")
    model = mz.create("cnn_small", in_chans=1, img_size=8, channels=(8, 12))
    before = _state_copy(model)
    with pytest.raises(WeightsError) as err:
        load_pretrained(model, path)
    assert "stages.1.conv.weight: file (16, 8, 3, 3), model (12, 8, 3, 3)" in str(err.value)
    assert "stages.0.conv.weight" not in str(err.value)  # that one fits
    assert _same_state(model, before)


def test_weights_of_another_architecture_raise(tmp_path: Path) -> None:
    path = _save(_source("mlp_small"), tmp_path / "mlp.safetensors")
    model = mz.create("cnn_small", **SMALL_CNN)
    before = _state_copy(model)
    with pytest.raises(WeightsError, match="another architecture"):
        load_pretrained(model, path)
    assert _same_state(model, before)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"model": sd, "epoch": 3, "optimizer": {"state": {}}},
        lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"model_state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},
        lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
    ],
    ids=["trainer", "ddp", "compiled", "ddp-compiled"],
)
def test_checkpoints_and_wrapper_prefixes_load(tmp_path: Path, wrap: object) -> None:
    src = _source("cnn_small", **SMALL_CNN)
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(src.state_dict()), path)
    model = mz.create("cnn_small", pretrained=path, **SMALL_CNN).eval()
    assert model.load_report.exact
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), src(x))


def test_feature_extractor_prefix_is_matched_both_ways(tmp_path: Path) -> None:
    src = _source("cnn_small", **SMALL_CNN)
    wrapped = mz.create("cnn_small", features_only=True, **SMALL_CNN)
    load_pretrained(wrapped, _save(src, tmp_path / "plain.safetensors"))
    assert torch.equal(wrapped.model.head.weight, src.head.weight)
    src_features = _randomize_bn_stats(mz.create("cnn_small", features_only=True, **SMALL_CNN))
    plain = mz.create("cnn_small", **SMALL_CNN)
    report = load_pretrained(plain, _save(src_features, tmp_path / "features.safetensors"))
    assert report.exact
    assert torch.equal(
        plain.stages[0].norm.running_mean, src_features.model.stages[0].norm.running_mean
    )


def test_unknown_source_names_the_options(tmp_path: Path) -> None:
    model = mz.create("lenet5")  # an architecture that ships no weight sets
    with pytest.raises(WeightsError, match="lenet5 has no pretrained weight sets") as err:
        load_pretrained(model, "imagenet")
    assert "pretrained='path/to/model.safetensors'" in str(err.value)
    with pytest.raises(WeightsError, match="file not found") as err:
        load_pretrained(model, tmp_path / "absent.safetensors")
    assert str(tmp_path / "absent.safetensors") in str(err.value)
    assert "not a weight tag" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="holds no model.safetensors"):
        load_pretrained(model, tmp_path / "empty")


def test_a_weight_set_of_several_files_loads_through_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelzoo.weights import (
        WeightFile,
        WeightSet,
        register_weights,
        sha256_file,
        unregister_weights,
    )

    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELZOO_WEIGHTS_DIR", str(tmp_path / "dropped"))
    monkeypatch.setenv("MODELZOO_OFFLINE", "1")
    (tmp_path / "dropped").mkdir()
    src = _source("cnn_small", num_classes=10, **SMALL_CNN)
    state = src.state_dict()
    files = []
    for name, keys in (
        ("cnn-test-body.safetensors", [k for k in state if not k.startswith("head.")]),
        ("cnn-test-head.safetensors", ["head.weight", "head.bias"]),
    ):
        path = tmp_path / "dropped" / name
        save_file({k: state[k].contiguous() for k in keys}, str(path))
        files.append(WeightFile(name, path.stat().st_size, sha256_file(path)))
    card = WeightSet(
        arch="cnn_small",
        tag="transfertest",
        files=tuple(files),
        model_kwargs=dict(num_classes=10, **SMALL_CNN),
        metrics={},
        license="MIT",
        recipe=None,
        input_spec={"in_chans": 1, "first_conv": "stages.0.conv"},
    )
    register_weights(card)
    try:
        exact = mz.create("cnn_small.transfertest").eval()
        assert exact.load_report.exact and exact.load_report.source == "cnn_small.transfertest"
        x = torch.rand(2, 1, 8, 8)
        with torch.no_grad():
            assert torch.equal(exact(x), src(x))
        rgb = mz.create("cnn_small.transfertest", in_chans=3, num_classes=4)
        assert [a.key for a in rgb.load_report.adapted] == ["stages.0.conv.weight"]
        assert len(rgb.load_report.reinitialized) == 2
        with pytest.raises(WeightsError, match="'transfertest'"):
            mz.create("cnn_small.nosuchtag")
    finally:
        unregister_weights("cnn_small", "transfertest")


# --------------------------------------------------------------- save / from_pretrained


def test_save_and_from_pretrained_round_trip(tmp_path: Path) -> None:
    model = _source("cnn_small", num_classes=7, act_layer=nn.GELU, **SMALL_CNN)
    directory = save_pretrained(model, tmp_path / "run" / "exported")
    files = sorted(p.name for p in directory.iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    assert [p.name for p in directory.parent.iterdir()] == ["exported"]  # no temp leftovers

    again = from_pretrained(directory).eval()
    assert again.load_report.exact
    assert isinstance(again.stages[0].act, nn.GELU) and again.init_kwargs["channels"] == (8, 16)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))

    five = from_pretrained(directory, num_classes=5).eval()
    assert {r.key for r in five.load_report.reinitialized} == {"head.weight", "head.bias"}
    with torch.no_grad():
        assert five(x).shape == (2, 5)
        assert torch.equal(extract_features(five, x), extract_features(model, x))


def test_save_pretrained_records_a_reset_head_and_tied_weights(tmp_path: Path) -> None:
    model = _source("cnn_small", **SMALL_CNN)
    model.reset_classifier(3)
    assert from_pretrained(save_pretrained(model, tmp_path / "a")).num_classes == 3

    gpt = _source("gpt_nano")
    again = from_pretrained(save_pretrained(gpt, tmp_path / "gpt")).eval()
    assert again.head.weight is again.tok_embed.weight
    tokens = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        assert torch.equal(again(tokens).logits, gpt(tokens).logits)


def test_a_failed_save_leaves_no_partial_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    model = _source("cnn_small", **SMALL_CNN)
    existing = save_pretrained(model, tmp_path / "existing")
    old_bytes = (existing / "model.safetensors").read_bytes()
    old_config = (existing / "config.json").read_bytes()

    def broken(fd: int) -> None:  # the disk fills up while the weights are written
        raise OSError(errno.ENOSPC, "disk full")

    monkeypatch.setattr(os, "fsync", broken)
    other = _source("cnn_small", seed=1, **SMALL_CNN)
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(other, tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        save_pretrained(other, existing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]
    files = sorted(p.name for p in existing.iterdir())
    assert files == ["README.md", "config.json", "model.safetensors"]
    assert (existing / "model.safetensors").read_bytes() == old_bytes
    assert (existing / "config.json").read_bytes() == old_config


def test_from_pretrained_needs_a_config(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no config.json"):
        from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- freezing


def _fc_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.fc.parameters())


def test_freeze_leaves_the_head_and_holds_batchnorm_statistics() -> None:
    model = mz.create("resnet20", in_chans=1)
    total = trainable_parameter_count(model)
    frozen = freeze(model)
    assert trainable_parameter_count(model) == _fc_count(model)
    assert len(frozen) == len(list(model.parameters())) - 2
    model.train()
    before = model.bn1.running_mean.clone()
    model(torch.rand(4, 1, 16, 16))
    assert not model.bn1.training and torch.equal(model.bn1.running_mean, before)
    copied = copy.deepcopy(model).train()  # e.g. the trainer's EMA copy keeps the rule
    copied(torch.rand(4, 1, 16, 16))
    assert torch.equal(copied.bn1.running_mean, before)

    assert len(unfreeze(model)) == len(frozen)
    assert trainable_parameter_count(model) == total
    model(torch.rand(4, 1, 16, 16))
    assert model.bn1.training and not torch.equal(model.bn1.running_mean, before)


def test_freeze_up_to_a_module_or_a_feature_level() -> None:
    model = mz.create("resnet20", in_chans=1)
    frozen = set(freeze(model, up_to="layer2"))
    expected = {
        n for n, _ in model.named_parameters() if n.startswith(("conv1", "bn1", "layer1", "layer2"))
    }
    assert frozen == expected
    assert all(not m.training for m in model.layer2.modules() if isinstance(m, nn.BatchNorm2d))
    unfreeze(model, "layer2")
    stem_and_layer1 = sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("conv1", "bn1", "layer1"))
    )
    assert (
        trainable_parameter_count(model)
        == sum(p.numel() for p in model.parameters()) - stem_and_layer1
    )
    unfreeze(model)
    assert set(freeze(model, up_to=1)) == expected  # feature_info[1] is layer2
    with pytest.raises(ConfigError, match="Did you mean: layer2"):
        freeze(model, up_to="layr2")
    with pytest.raises(ConfigError, match="out of range"):
        freeze(model, up_to=7)


def test_gradual_unfreeze_trains_the_backbone_from_the_given_step() -> None:
    torch.manual_seed(0)
    model = mz.create("cnn_small", num_classes=3, **SMALL_CNN)
    model.stages[0].conv.weight.requires_grad_(False)  # frozen by the user: stays frozen
    schedule = GradualUnfreeze(model, unfreeze_at_step=2)
    optimizer = torch.optim.SGD(param_groups(model, 0.1), lr=0.1)  # over all parameters
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 3, (8,))
    changed = []
    for step in range(4):
        schedule.on_step(None, step)
        backbone = model.stages[1].conv.weight.clone()
        head = model.head.weight.clone()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        changed.append(
            (
                not torch.equal(model.stages[1].conv.weight, backbone),
                not torch.equal(model.head.weight, head),
            )
        )
    assert changed == [(False, True), (False, True), (True, True), (True, True)]
    assert not model.stages[0].conv.weight.requires_grad
    # The state follows the position alone, as a resumed run needs.
    assert schedule.apply(0) and not schedule.apply(5)
    epochs = GradualUnfreeze(mz.create("cnn_small", **SMALL_CNN), unfreeze_at_epoch=1)
    epochs.on_epoch_start(None, 0)
    assert epochs.frozen
    epochs.on_epoch_start(None, 1)
    assert not epochs.frozen


# -------------------------------------------------------------------------- param groups


def test_layer_decay_raises_the_learning_rate_toward_the_head() -> None:
    with torch.device("meta"):
        vit = mz.create("vit_tiny_patch4_32")
    groups = param_groups(vit, 1e-3, weight_decay=0.05, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(vit.named_parameters())
    assert len(lr_of) == len(named) == sum(len(g["params"]) for g in groups)
    depth = [
        named["patch_embed.proj.weight"],
        *(b.attn.qkv.weight for b in vit.blocks),
        named["head.weight"],
    ]
    lrs = [lr_of[id(p)] for p in depth]
    assert lrs == sorted(lrs) and len(set(lrs)) == len(lrs)
    assert lrs[-1] == pytest.approx(1e-3) and lrs[-2] == pytest.approx(5e-4)
    for name, p in named.items():
        no_decay = p.ndim < 2 or name in ("cls_token", "pos_embed")
        assert decay_of[id(p)] == (0.0 if no_decay else 0.05), name


def test_layer_ids_follow_the_blocks_of_each_family() -> None:
    with torch.device("meta"):
        resnet, vgg = mz.create("resnet18"), mz.create("vgg11")
    ids = layer_ids(resnet)
    assert ids["conv1.weight"] == ids["bn1.weight"] == 0
    assert (
        ids["layer1.0.conv1.weight"]
        == 1
        < ids["layer1.1.conv1.weight"]
        < ids["layer4.1.conv2.weight"]
    )
    assert ids["fc.weight"] == max(ids.values()) == ids["layer4.1.conv2.weight"] + 1
    vgg_ids = layer_ids(vgg)
    assert vgg_ids["features.0.weight"] == 0 < vgg_ids["features.3.weight"]
    assert vgg_ids["classifier.6.weight"] == max(vgg_ids.values()) > vgg_ids["classifier.3.weight"]


def test_param_groups_without_layer_decay_split_on_decay_only() -> None:
    model = mz.create("cnn_small", **SMALL_CNN)
    groups = param_groups(model, 0.1, weight_decay=1e-4)
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.1, 1e-4), (0.1, 0.0)]
    assert all(p.ndim >= 2 for p in groups[0]["params"])
    assert all(p.ndim < 2 for p in groups[1]["params"])
    torch.optim.AdamW(groups)  # the groups are valid optimizer input


def test_extract_features_gives_pooled_features() -> None:
    model = mz.create("cnn_small", **SMALL_CNN).eval()
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        features = extract_features(model, x)
        assert features.shape == (2, model.num_features)
        torch.testing.assert_close(model.head(features), model(x))
    with pytest.raises(ConfigError, match="forward_features"):
        extract_features(nn.Linear(2, 2), torch.rand(1, 2))


# ---------------------------------------------------------------- transfer really helps


def _fit(model: nn.Module, data: torch.utils.data.TensorDataset, epochs: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(param_groups(model, 1e-2))
    x, y = data.tensors
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), 32):
            batch = order[i : i + 32]
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()


def _accuracy(model: nn.Module, data: torch.utils.data.TensorDataset) -> float:
    x, y = data.tensors
    with torch.no_grad():
        return (model.eval()(x).argmax(1) == y).float().mean().item()


def test_pretraining_on_digits_0_to_4_helps_on_5_to_9(tmp_path: Path) -> None:
    """Fine-tuning from weights learnt on other digits beats the same budget from scratch.

    Ten labels per class, three fine-tuning seeds each; over ten pre-training
    seeds the gap in mean accuracy ranged from 0.13 to 0.33. (A frozen-backbone
    linear probe is no test of this here: on 8x8 digits, random frozen conv
    features probe about as well as features learnt on 0-4, either winning by seed.)
    """
    from modelzoo.data.digits import digits

    kwargs = dict(in_chans=1, img_size=8, num_classes=5, channels=(16, 32, 64))
    first = digits(classes=range(5))
    second = digits(classes=range(5, 10), train_per_class=10)
    torch.manual_seed(0)
    source = mz.create("cnn_small", **kwargs)
    _fit(source, first.train, epochs=3, seed=0)
    assert _accuracy(source, first.test) > 0.9
    directory = save_pretrained(source, tmp_path / "digits04")

    accuracy: dict[str, list[float]] = {"pretrained": [], "scratch": []}
    for seed in range(1, 4):
        for name, pretrained in (("pretrained", directory), ("scratch", False)):
            torch.manual_seed(seed)
            model = mz.create("cnn_small", pretrained=pretrained, **kwargs)
            _fit(model, second.train, epochs=10, seed=seed)
            accuracy[name].append(_accuracy(model, second.test))
    mean = {name: sum(values) / len(values) for name, values in accuracy.items()}
    assert mean["pretrained"] > mean["scratch"] + 0.1, accuracy


def test_pretrained_from_a_trainer_checkpoint_loads_the_evaluated_weights() -> None:
    # A run with an EMA evaluates (and picks best.ckpt with) the average; pretrained= must
    # load the same weights `modelzoo evaluate` scores, for v1 checkpoints too (EMA under "ema").
    from modelzoo.train.checkpoint import load_checkpoint

    fixture = Path(__file__).parent / "fixtures/run_v1/checkpoints/last.ckpt"
    state = load_checkpoint(fixture)
    assert state["ema"] is not None
    model = mz.create(
        "mlp", in_features=64, num_classes=10, hidden_sizes=[16], pretrained=str(fixture)
    )
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state["ema"][key])
