"""Fine-tuning: the run directory and the card, freezing, layer decay, user data, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import modelzoo
from modelzoo.cli import main as cli_main
from modelzoo.errors import ConfigError, UnknownModelError, WeightsError
from modelzoo.finetune import finetune, parse_key_values, resolve_source
from modelzoo.weights import get_weight_set
from modelzoo.weights.pretrained import from_pretrained

FEW = {"classes": [5, 6, 7, 8, 9], "train_per_class": 5}


pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest


def _digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    from modelzoo.data.digits import load_digits_arrays

    return load_digits_arrays()


def test_finetune_writes_a_run_and_a_card_whose_metrics_hold(tmp_path, capsys):
    run = tmp_path / "run"
    result = finetune(
        "mlp.digits",
        "digits",
        data_kwargs=FEW,
        epochs=3,
        run_dir=run,
        progress=False,
        device="cpu",  # outputs compared exactly below
    )
    for name in ("config.yaml", "metrics.csv", "finetune.json", "test_metrics.json"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "plots").glob("*.png"))
    for name in ("config.json", "model.safetensors", "model_card.json", "model_card.md"):
        assert (run / "model" / name).is_file(), name

    card = json.loads((run / "model" / "model_card.json").read_text())
    assert card == json.loads(json.dumps(result.card))
    assert set(card["metrics"]) == {"digits[5,6,7,8,9]/test", "digits[5,6,7,8,9]/val"}
    source = get_weight_set("mlp", "digits")
    assert card["source_weights"]["name"] == "mlp.digits"
    assert card["source_weights"]["files"][0]["sha256"] == source.files[0].sha256
    assert card["input_spec"]["labels"] == ["5", "6", "7", "8", "9"]
    assert card["recipe"]["data"]["flatten"] is True  # the weights' preprocessing, inherited
    assert "digits[5,6,7,8,9]/test" in (run / "model" / "model_card.md").read_text()

    # The saved model is the fine-tuned one, and the run is a regular run directory:
    # `modelzoo evaluate` on its last checkpoint measures the card's test metrics again.
    x = result.data.test[:8][0]
    rebuilt = from_pretrained(run / "model").eval()
    torch.testing.assert_close(rebuilt(x), result.model(x), rtol=0, atol=0)
    capsys.readouterr()
    last = str(run / "checkpoints" / "last.ckpt")
    assert cli_main(["evaluate", str(run), "--checkpoint", last, "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    claimed = card["metrics"]["digits[5,6,7,8,9]/test"]
    assert evaluated["test"]["accuracy"] == pytest.approx(claimed["accuracy"], abs=1e-9)
    assert evaluated["test"]["loss"] == pytest.approx(claimed["loss"], rel=1e-5)

    with pytest.raises(ConfigError, match="already holds a run"):
        finetune("mlp.digits", "digits", data_kwargs=FEW, epochs=1, run_dir=run)


class _Snapshots:
    """A trainer callback that keeps the model's state at the start of every epoch."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.at_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self.at_epoch[epoch] = _cpu_state(self.model)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _head_prefix(model: torch.nn.Module) -> str:
    from modelzoo.transfer import head_prefixes

    return head_prefixes(model)[0]


def test_freeze_epochs_keep_the_backbone_and_its_batchnorm_fixed():
    model = modelzoo.create("cnn_small.digits", num_classes=5)
    head = _head_prefix(model)
    start = _cpu_state(model)
    assert any("running_mean" in k for k in start)  # BatchNorm statistics are in the state
    snapshots = _Snapshots(model)
    finetune(
        model,
        "digits",
        data_kwargs=FEW,
        epochs=2,
        freeze_epochs=1,
        callbacks=[snapshots],
        lr=1e-2,
        progress=False,
    )
    # GradualUnfreeze runs before the other callbacks: at the start of epoch 1 the state
    # is the one the frozen epoch 0 left.
    after_frozen = snapshots.at_epoch[1]
    changed = {k for k in start if not torch.equal(start[k], after_frozen[k])}
    assert changed == {k for k in start if k.startswith(head)}
    final = _cpu_state(model)
    body = [k for k in start if not k.startswith(head)]
    assert any(not torch.equal(start[k], final[k]) for k in body if "running_mean" in k)
    assert any(not torch.equal(start[k], final[k]) for k in body if k.endswith("weight"))


def test_frozen_steps_are_the_first_epochs_only():
    model = modelzoo.create("mlp.digits", num_classes=5)
    head = _head_prefix(model)
    seen: list[tuple[int, bool, bool]] = []  # (epoch, a body parameter trains, the head trains)

    class Watch:
        def on_step(self, trainer, step):
            named = list(model.named_parameters())
            body = any(p.requires_grad for n, p in named if not n.startswith(head))
            top = all(p.requires_grad for n, p in named if n.startswith(head))
            seen.append((trainer.epoch, body, top))

    finetune(
        model,
        "digits",
        data_kwargs={**FEW, "flatten": True},
        epochs=3,
        freeze_epochs=2,
        callbacks=[Watch()],
        progress=False,
    )
    assert {epoch for epoch, _, _ in seen} == {0, 1, 2}
    assert all(top for _, _, top in seen)
    assert all(body == (epoch == 2) for epoch, body, _ in seen)


def test_layer_decay_gives_smaller_learning_rates_toward_the_input():
    result = finetune(
        "cnn_small.digits",
        "digits",
        data_kwargs=FEW,
        epochs=1,
        layer_decay=0.5,
        lr=1e-2,
        progress=False,
    )
    groups = result.trainer.optimizers["main"].param_groups
    scales = sorted({g["lr_scale"] for g in groups})
    assert len(scales) >= 3 and scales[-1] == 1.0
    assert all(np.isclose(b / a, 2.0 ** round(np.log2(b / a))) for a, b in zip(scales, scales[1:]))
    for g in groups:  # the schedule scales every group alike
        assert g["lr"] == pytest.approx(groups[-1]["lr"] * g["lr_scale"] / groups[-1]["lr_scale"])


def test_image_folder_takes_size_and_channels_from_the_weights(tmp_path):
    from PIL import Image

    images, labels = _digit_arrays()
    root = tmp_path / "images"
    for digit, name in [(0, "zero"), (1, "one"), (7, "seven")]:
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images[labels == digit][:20]):
            Image.fromarray((image * 255).astype(np.uint8)).save(root / name / f"{i:02d}.png")
    result = finetune("cnn_small.digits", root, epochs=2, progress=False)
    assert result.model.init_kwargs["in_chans"] == 1 and result.model.num_classes == 3
    assert result.card["input_spec"]["img_size"] == 8  # the weights' input size
    assert result.card["input_spec"]["labels"] == ["one", "seven", "zero"]
    test = result.metrics[f"image_folder({root})/test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and len(result.data.test) == 12  # 20% of 3 x 20


def test_csv_table_fits_the_pretrained_first_layer(tmp_path):
    images, labels = _digit_arrays()
    keep = np.isin(labels, [3, 4, 5])
    header = ",".join([f"px{i}" for i in range(64)] + ["digit"])
    rows = [
        ",".join([f"{v:.4f}" for v in image.ravel()] + [str(label)])
        for image, label in zip(images[keep][:150], labels[keep][:150])
    ]
    path = tmp_path / "digits.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    result = finetune(
        "mlp.digits", path, data_kwargs={"standardize": False}, epochs=2, progress=False
    )
    report = result.model.load_report
    assert {r.key for r in report.reinitialized} == {"head.weight", "head.bias"}
    assert not report.missing and not report.dropped  # the 64 columns fit the 8x8 weights
    assert set(result.metrics) == {"csv(digits.csv)/test", "csv(digits.csv)/val"}
    assert result.card["input_spec"]["labels"] == ["3", "4", "5"]


def test_bridge_model_without_weights():
    result = finetune(
        "torchvision/resnet18",
        "digits",
        data_kwargs={"classes": [0, 1], "img_size": 32},
        epochs=1,
        progress=False,
        train_options={"max_steps": 2},
    )
    assert result.source is None and result.card["source_weights"] is None
    assert result.card["recipe"]["model"] == {
        "name": "torchvision/resnet18",
        "num_classes": 2,
        "in_chans": 1,
    }
    assert result.trainer.step == 2


def test_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a failed command must not leave runs/ here either
    run = tmp_path / "cli"
    argv = [
        "finetune",
        "mlp.digits",
        "--data",
        "digits",
        "--data-arg",
        "classes=[5,6,7,8,9]",
        "--data-arg",
        "train_per_class=5",
        "--epochs",
        "2",
        "--freeze-epochs",
        "1",
        "--run-dir",
        str(run),
        "--json",
    ]
    assert cli_main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["source"] == "mlp.digits" and summary["run_dir"] == str(run)
    card = json.loads((run / "model" / "model_card.json").read_text())
    assert summary["metrics"] == card["metrics"]
    assert json.loads((run / "finetune.json").read_text())["freeze_epochs"] == 1

    assert cli_main(["finetune", "mlp.digits", "--data", "no_such_data"]) == 2
    assert "no dataset named 'no_such_data'" in capsys.readouterr().err
    assert cli_main(["finetune", "mlp.digits", "--data", "digits", "--lr", "-1"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # no runs/ from the failures


def test_bad_arguments_say_how_to_fix_them():
    with pytest.raises(ConfigError, match=r"freeze_epochs must be in \[0, epochs=2\]"):
        finetune("mlp.digits", "digits", epochs=2, freeze_epochs=3)
    with pytest.raises(ConfigError, match="not an image folder or a CSV file"):
        finetune("mlp.digits", "missing/file.csv", epochs=1)
    with pytest.raises(ConfigError, match="key=value"):
        parse_key_values(["classes"])
    assert parse_key_values(["classes=[5,6]", "lr=1e-3", "flatten=true"]) == {
        "classes": [5, 6],
        "lr": 1e-3,
        "flatten": True,
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1}, "train.lr"),
        ({"lr": "fast"}, "train.lr"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"freeze_epochs": -1}, "freeze_epochs must be an integer >= 0"),
        ({"epochs": 2, "freeze_epochs": 3}, r"freeze_epochs must be in \[0, epochs=2\]"),
        ({"layer_decay": 1.5}, "train.layer_decay"),
        ({"layer_decay": 0}, "train.layer_decay"),
        ({"weight_decay": -0.1}, "train.weight_decay"),
    ],
)
def test_bad_training_arguments_fail_before_anything_is_built(tmp_path, kwargs, message):
    run = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        finetune("mlp.digits", "digits", run_dir=run, progress=False, **kwargs)
    assert not run.exists()


class _Explode:
    """A trainer callback that fails in the middle of training."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_step(self, trainer, step):
        if step == 2:
            raise self.error


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_finetune_leaves_no_run_directory(tmp_path, error):
    run = tmp_path / "new" / "runs" / "ft"  # two parent folders that do not exist yet
    with pytest.raises(type(error)):
        finetune(
            "mlp.digits",
            "digits",
            data_kwargs=FEW,
            epochs=3,
            run_dir=run,
            callbacks=[_Explode(error)],
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []  # neither the run, its staging folder, nor parents

    empty = tmp_path / "mine"
    empty.mkdir()  # a folder the user made: it stays, empty
    with pytest.raises(type(error)):
        finetune(
            "mlp.digits",
            "digits",
            data_kwargs=FEW,
            epochs=3,
            run_dir=empty,
            callbacks=[_Explode(error)],
            progress=False,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["mine"] and not any(empty.iterdir())


def test_a_run_directory_with_files_is_refused(tmp_path):
    run = tmp_path / "notes"
    run.mkdir()
    (run / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty"):
        finetune("mlp.digits", "digits", data_kwargs=FEW, epochs=1, run_dir=run)
    assert [p.name for p in run.iterdir()] == ["todo.txt"]


def test_resolve_source_reads_every_form_once(tmp_path):
    fresh = resolve_source("resnet20")
    assert (fresh.arch, fresh.name, fresh.pretrained) == ("resnet20", "resnet20", False)
    assert fresh.fresh and fresh.weights is None

    tagged = resolve_source("resnet20.digits_0to4")
    ws = get_weight_set("resnet20", "digits_0to4")
    assert tagged.weights == ws and tagged.name == tagged.label == "resnet20.digits_0to4"
    assert tagged.model_kwargs == ws.model_kwargs
    assert tagged.facts["files"][0]["sha256"] == ws.files[0].sha256
    assert tagged.recipe["data"]["img_size"] == 16  # preprocessing the data step inherits
    assert resolve_source("resnet20", "digits_0to4") == tagged
    assert resolve_source("resnet20.digits_0to4", True) == tagged
    assert resolve_source("resnet20", True).weights == get_weight_set("resnet20")  # default

    weights_file = str(tmp_path / "w.safetensors")
    from_file = resolve_source("resnet20", weights_file)
    assert (from_file.name, from_file.pretrained, from_file.label) == (
        "resnet20",
        weights_file,
        weights_file,
    )

    timm = resolve_source("timm/resnet18.a1_in1k")  # resolved, not downloaded
    assert timm.arch == "timm/resnet18" and timm.label == "timm/resnet18.a1_in1k"
    assert timm.license == "apache-2.0"
    tv = resolve_source("torchvision/resnet18", True)
    assert tv.label == "torchvision/resnet18.IMAGENET1K_V1"
    assert resolve_source("torchvision/resnet18").fresh

    with pytest.raises(ConfigError, match="names the weight set 'digits_0to4'"):
        resolve_source("resnet20.digits_0to4", False)
    with pytest.raises(WeightsError, match="resnet20.digits"):
        resolve_source("resnet20.digts")
    with pytest.raises(WeightsError, match="resnet20.digits"):
        resolve_source("resnet20", "digts")
    with pytest.raises(UnknownModelError, match="Did you mean: resnet20"):
        resolve_source("resnt20")
    (tmp_path / "w.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="does not say its architecture"):
        resolve_source(weights_file)
    with pytest.raises(ConfigError, match="no folder at"):
        resolve_source(tmp_path / "missing" / "model")
    with pytest.raises(ConfigError, match="not a Hub id"):
        resolve_source("hf-hub:org")  # checked before any request


def test_finetune_continues_from_a_model_folder_and_from_a_run_directory(tmp_path):
    first = finetune(
        "mlp.digits",
        "digits",
        data_kwargs=FEW,
        epochs=2,
        run_dir=tmp_path / "first",
        progress=False,
        plots=False,
    )
    # The model folder: its config.json rebuilds the architecture, its card the preprocessing.
    second = finetune(
        first.model_dir,
        "digits",
        data_kwargs={"classes": [0, 1], "train_per_class": 5},
        epochs=1,
        progress=False,
    )
    assert second.source == str(first.model_dir)
    assert second.card["recipe"]["model"]["pretrained"] == str(first.model_dir)
    assert second.card["recipe"]["data"]["flatten"] is True  # from the first card's recipe
    report = second.model.load_report
    assert {r.key for r in report.reinitialized} == {"head.weight", "head.bias"}  # 5 -> 2 classes
    assert not report.missing and not report.dropped

    # The run directory: its best checkpoint, into the architecture its recipe names.
    third = finetune(first.run_dir, "digits", data_kwargs=FEW, epochs=1, progress=False)
    assert third.source == str(first.run_dir / "checkpoints" / "best.ckpt")
    assert third.model.load_report.exact
    assert third.card["recipe"]["model"]["name"] == "mlp"


def test_resume_of_a_finetune_keeps_its_layer_decay_groups(tmp_path):
    from modelzoo.train.recipes import resume_run

    run = tmp_path / "run"
    finetune(
        "cnn_small.digits",
        "digits",
        data_kwargs=FEW,
        epochs=4,  # one step per epoch: stopped at 2 of 4
        layer_decay=0.5,
        run_dir=run,
        progress=False,
        plots=False,
        train_options={"max_steps": 2},
    )
    resumed = resume_run(run, ["train.max_steps=4", "train.progress=false"])
    assert resumed.trainer.step == 4
    scales = {g["lr_scale"] for g in resumed.trainer.optimizers["main"].param_groups}
    assert len(scales) >= 3 and max(scales) == 1.0


def test_few_labels_report_reproduces_a_cell():
    """The committed benchmarks/finetune_few_labels.md is this script's rendering of its JSON,
    and one of its cells (scratch vs full fine-tuning, 25 steps, seed 0) re-measures within the
    tolerance the report states."""
    done = _run_script("--check", "--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: the report holds" in done.stdout


@pytest.mark.slow
def test_few_labels_report_reproduces_every_figure():
    done = _run_script("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def _run_script(*args: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "finetune_few_labels.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=3600,
    )
