"""Recipes: schema validation, overrides, and every YAML in configs/ run in dry-run mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from modelzoo.cli import main as cli_main
from modelzoo.config import TrainConfig, load_recipe, parse_overrides
from modelzoo.errors import ConfigError
from modelzoo.train.recipes import train_recipe, validate_recipe

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


BASE = """\
model: {name: mlp}
data: {name: digits, batch_size: 32, flatten: true}
task: {name: classification}
train: {epochs: 1, lr: 1e-4}
"""


def test_floats_without_a_dot_are_floats(tmp_path: Path) -> None:
    recipe = load_recipe(_write(tmp_path, BASE))
    assert recipe.train.lr == 1e-4 and isinstance(recipe.train.lr, float)
    assert load_recipe(_write(tmp_path, BASE), ["train.lr=3e-4"]).train.lr == 3e-4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE.replace("lr: 1e-4", "lr: 1e-4, epoch: 3"),
            r"train\.epoch\. Did you mean train\.epochs",
        ),
        (BASE.replace("task:", "tsk:"), r"recipe\.tsk\. Did you mean recipe\.task"),
        (BASE.replace("lr: 1e-4", "lr: fast"), r"train\.lr must be a number; got 'fast'"),
        (BASE.replace("lr: 1e-4", "precision: 8"), "train.precision must be one of"),
        (BASE.replace("lr: 1e-4", "device: gpu"), "train.device must be auto, cpu, cuda"),
        ("model: {name: mlp}\n", "'data' needs a mapping with a 'name' key"),
    ],
)
def test_bad_recipes_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_recipe(_write(tmp_path, text))


def test_builder_dataset_and_task_keys_are_checked_without_building(tmp_path: Path) -> None:
    for bad, message in [
        ("model: {name: mlp, hiden_sizes: [3]}", "Did you mean: hidden_sizes"),
        ("data: {name: digits, batch_size: 32, flaten: true}", r"data \(digits\)\.flaten"),
        ("task: {name: clasification}", r"Did you mean task\.name\.classification"),
    ]:
        section = bad.split(":")[0]
        lines = [line if not line.startswith(section) else bad for line in BASE.splitlines()]
        recipe = load_recipe(_write(tmp_path, "\n".join(lines)))
        with pytest.raises(ConfigError, match=message):
            validate_recipe(recipe)


def test_overrides_parse_like_yaml() -> None:
    parsed = parse_overrides(["train.lr=1e-3", "train.compile=true", "model.hidden_sizes=[8, 8]"])
    assert parsed == {"train": {"lr": 1e-3, "compile": True}, "model": {"hidden_sizes": [8, 8]}}
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["lr=3"])
    with pytest.raises(ConfigError, match=r"recipe\.trian\. Did you mean recipe\.train"):
        parse_overrides(["trian.lr=3"])


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    evil = BASE + "extra: !!python/object/apply:os.system ['touch pwned']\n"
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(_write(tmp_path, evil))
    assert not (tmp_path / "pwned").exists()


def test_train_config_defaults_are_documented_fields() -> None:
    config = TrainConfig.from_dict({"max_steps": "10", "clip_grad_norm": 1})
    assert config.max_steps == 10 and config.clip_grad_norm == 1.0
    with pytest.raises(ConfigError, match=r"train\.grad_accum=0 is out of range: expected an int"):
        TrainConfig(grad_accum=0)


@pytest.mark.parametrize(
    "path", CONFIGS, ids=[str(p.relative_to(ROOT / "configs")) for p in CONFIGS]
)
def test_every_recipe_validates_and_runs_dry(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_line = path.read_text().splitlines()[0]
    assert first_line == f"# modelzoo train configs/{path.relative_to(ROOT / 'configs')}", (
        "a recipe starts with the command that runs it"
    )
    recipe = load_recipe(
        path, ["train.dry_run=true", "train.plots=false", "train.tensorboard=false"]
    )
    validate_recipe(recipe)
    if str(recipe.data["name"]).startswith("torchvision/"):
        # Small files in torchvision's real formats instead of a download (tests/data).
        sys.path.insert(0, str(ROOT / "tests/data"))
        from torchvision_fakes import install

        install(tmp_path / "home", monkeypatch, cifar_per_batch=4)
    torch.set_num_threads(1)
    result = train_recipe(recipe, tmp_path / "run")
    assert result.trainer.step >= 1
    assert (tmp_path / "run/checkpoints/last.ckpt").is_file()
    assert (tmp_path / "run/metrics.csv").read_text().startswith("step,epoch,")


def test_cli_train_resume_evaluate(tmp_path: Path, capsys) -> None:
    recipe = _write(tmp_path, BASE.replace("epochs: 1", "epochs: 2, progress: false"))
    run = tmp_path / "run"
    assert cli_main(["train", str(recipe), "train.max_steps=5", "--run-dir", str(run)]) == 0
    assert "run directory" in capsys.readouterr().out
    assert cli_main(["train", str(recipe), "--run-dir", str(run)]) == 2  # refuses to overwrite
    assert "modelzoo resume" in capsys.readouterr().err
    assert cli_main(["resume", str(run), "train.max_steps=8", "--json"]) == 0
    assert '"step": 8' in capsys.readouterr().out
    assert cli_main(["evaluate", str(run), "--json"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    assert cli_main(["evaluate", str(recipe)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
