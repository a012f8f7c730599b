"""Bad input gets a ModelzooError naming the value, what was expected and the fix, where the
value enters: a recipe override on the command line, TrainConfig, build_data, create()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelzoo as mz
from modelzoo.cli import main as cli_main
from modelzoo.config import TrainConfig
from modelzoo.data import build_data
from modelzoo.errors import ConfigError, ModelzooError
from modelzoo.train import Trainer
from modelzoo.train.tasks import ClassificationTask

RECIPE = """\
model: {name: mlp, hidden_sizes: [8]}
data: {name: digits, batch_size: 32, flatten: true}
task: {name: classification}
train: {epochs: 1, max_steps: 2, progress: false, plots: false, tensorboard: false}
"""

# (override, phrase of the message); each is refused before anything is trained or written.
OVERRIDES = [
    ("train.lr=-0.1", "train.lr=-0.1 is out of range: expected a number >= 0"),
    ("train.lr=fast", "train.lr must be a number; got 'fast'"),
    ("train.warmup_steps=-5", "train.warmup_steps=-5 is out of range: expected an integer >= 0"),
    ("train.weight_decay=-0.01", "train.weight_decay=-0.01 is out of range"),
    ("train.ema_decay=1.5", "train.ema_decay=1.5 is out of range: expected a number > 0 and < 1"),
    ("train.layer_decay=0", "train.layer_decay=0.0 is out of range"),
    ("train.grad_accum=0", "train.grad_accum=0 is out of range: expected an integer >= 1"),
    ("train.betas=[0.9,1.0]", "train.betas[1]=1.0 is out of range: expected a number >= 0 and < 1"),
    ("data.batch_size=0", "data.batch_size=0 is out of range: expected an integer >= 1"),
    ("data.batch_size=-4", "data.batch_size=-4 is out of range"),
    ("data.batch_size=many", "data.batch_size must be an integer; got 'many'"),
    (
        "data.classes=[11]",
        "holds 11, which is not a digit: the digits dataset has the classes 0..9",
    ),
    ("data.classes=[5,11]", "holds 11, which is not a digit"),
    ("data.classes=[]", "data.classes is empty"),
    ("data.val_fraction=0.9", "leaves no training images"),
    ("model.num_classes=ten", "expected an integer, got str"),
    ("model.num_classes=-1", "num_classes must be >= 0"),
]


@pytest.mark.parametrize(("override", "phrase"), OVERRIDES, ids=[o for o, _ in OVERRIDES])
def test_a_bad_override_of_modelzoo_train_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, override: str, phrase: str
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    capsys.readouterr()
    assert cli_main(["train", str(recipe), override, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelzoo: error: ConfigError: "), err
    assert phrase in err
    assert "Traceback" not in err
    assert not run.exists()  # nothing written for a run that never started


TRAIN_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"lr": -0.1}, "train.lr=-0.1 is out of range: expected a number >= 0. The learning rate"),
    ({"lr": "fast"}, "train.lr must be a number; got 'fast'"),
    ({"lr": [1e-3]}, "train.lr must be a number"),
    ({"warmup_steps": -5}, "train.warmup_steps=-5 is out of range"),
    ({"warmup_steps": 2.5}, "train.warmup_steps must be an integer; got 2.5"),
    ({"weight_decay": -1.0}, "train.weight_decay=-1.0 is out of range"),
    ({"epochs": 0}, "train.epochs=0 is out of range: expected an integer >= 1"),
    ({"lr": float("nan")}, "train.lr=nan is out of range"),
    ({"momentum": 1.0}, "train.momentum=1.0 is out of range: expected a number >= 0 and < 1"),
    ({"keep_last": 0}, "train.keep_last=0 is out of range"),
    ({"precision": "fp8"}, "train.precision must be one of 32, bf16-mixed, 16-mixed, bf16-true"),
]


@pytest.mark.parametrize(("kwargs", "phrase"), TRAIN_CONFIGS)
def test_train_config_refuses_bad_values_when_built(kwargs: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)
    assert phrase in str(err.value)


def test_train_config_converts_numeric_text_like_a_recipe() -> None:
    config = TrainConfig(lr="1e-3", epochs="3", ema_decay="0.99", betas=["0.9", "0.95"])
    assert (config.lr, config.epochs, config.ema_decay) == (1e-3, 3, 0.99)
    assert config.betas == (0.9, 0.95)
    assert TrainConfig(lr=0.0).lr == 0.0  # a frozen run (lr 0) is allowed


DATA: list[tuple[str, dict[str, Any], str]] = [
    ("digits", {"classes": [11]}, "holds 11, which is not a digit"),
    ("digits", {"classes": [5, 11]}, "the digits dataset has the classes 0..9"),
    ("digits", {"classes": [3, 3]}, "names [3] more than once"),
    ("digits", {"classes": "012"}, "must be a list of digits 0..9"),
    ("digits", {"img_size": 0}, "data.img_size=0 is out of range"),
    ("digits", {"test_fraction": 1.0}, "data.test_fraction=1.0 is out of range"),
    ("digits", {"train_per_class": 0}, "data.train_per_class=0 is out of range"),
    ("digitz", {}, "no dataset named 'digitz'. Did you mean: digits"),
    ("digits", {"flaten": True}, "Did you mean data (digits).flatten"),
]


@pytest.mark.parametrize(("name", "kwargs", "phrase"), DATA)
def test_build_data_refuses_what_would_give_an_empty_or_wrong_dataset(
    name: str, kwargs: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_data(name, **kwargs)
    assert phrase in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"num_classes": "ten"}, "resnet20(num_classes='ten'): expected an integer, got str"),
        ({"num_classes": -1}, "resnet20(num_classes=-1): num_classes must be >= 0"),
        ({"num_clases": 10}, "num_classes"),
    ],
)
def test_create_refuses_bad_keywords(kwargs: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ConfigError) as err:
        mz.create("resnet20", **kwargs)
    assert phrase in str(err.value)


@pytest.mark.parametrize(("batch_size", "phrase"), [(0, "batch_size=0"), (-4, "batch_size=-4")])
def test_the_trainer_refuses_a_batch_size_below_one(batch_size: int, phrase: str) -> None:
    with pytest.raises(ModelzooError, match=phrase):
        Trainer(ClassificationTask(mz.create("mlp")), {"progress": False}, batch_size=batch_size)
