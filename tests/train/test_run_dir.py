"""The run layer: what a run writes, which weights its checkpoints hold, and that the CLI
can evaluate and resume any run directory (old ones, and ones the Python API wrote)."""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import modelzoo as mz
from modelzoo.cli import main as cli_main
from modelzoo.config import TrainConfig, load_recipe
from modelzoo.data import build_data
from modelzoo.errors import CheckpointError, ConfigError
from modelzoo.train import Trainer
from modelzoo.train import run as run_module
from modelzoo.train.checkpoint import (
    atomic_save,
    evaluation_weights,
    load_checkpoint,
    training_weights,
)
from modelzoo.train.optim import ModelEMA
from modelzoo.train.recipes import evaluate_run, train_recipe
from modelzoo.train.run import Progress, RunDir
from modelzoo.train.tasks import ClassificationTask

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/run_v1"
QUIET = dict(progress=False, plots=False, tensorboard=False)


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _cli_json(capsys: pytest.CaptureFixture, *args: str) -> dict:
    capsys.readouterr()
    assert cli_main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def digits_flat():
    return build_data("digits", flatten=True)


# --- checkpoints written before this version -------------------------------------------------


def test_a_v1_run_directory_still_loads_evaluates_and_resumes_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture, digits_flat
) -> None:
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    state = load_checkpoint(old / "checkpoints/last.ckpt")
    assert state["version"] == 1 and state["loop"]["step"] == 6
    # Version 1 kept the training weights under "model" and the EMA (which it evaluated) apart.
    assert evaluation_weights(state) is state["ema"]
    assert training_weights(state) is state["model"]

    report = _cli_json(capsys, "evaluate", str(old))
    model = mz.create("mlp", hidden_sizes=[16], in_features=64, num_classes=10)
    model.load_state_dict(state["ema"])
    model.eval()
    x, y = digits_flat.test.tensors
    with torch.no_grad():
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
    assert report["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)

    _cli_json(capsys, "resume", str(old), "train.max_steps=9")
    recipe = load_recipe(FIXTURE / "config.yaml", ["train.max_steps=9"])
    train_recipe(recipe, tmp_path / "straight")
    # The resumed old run continues exactly as a run of today's code from the start does.
    assert _rows(old) == _rows(tmp_path / "straight")
    resumed = load_checkpoint(old / "checkpoints/last.ckpt")
    straight = load_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")
    assert resumed["version"] == 2 and resumed["model_weights"] == "ema"
    for key, value in straight["training_model"].items():
        assert torch.equal(resumed["training_model"][key], value), key
    assert resumed["ema"]["updates"] == 9


# --- which weights a checkpoint holds --------------------------------------------------------


def test_ema_warms_up_and_averages_batchnorm_statistics() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = ModelEMA(model, 0.999)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3))  # moves the running statistics
        model[0].weight.add_(1.0)
    now = {k: v.clone() for k, v in model.state_dict().items()}
    ema.update(model)
    after = ema.state_dict()
    # First update: decay min(0.999, 1/10) = 0.1, so the average is 90% the new weights.
    for key in ("0.weight", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(after[key], 0.1 * start[key] + 0.9 * now[key])
    assert after["1.num_batches_tracked"] == now["1.num_batches_tracked"] == 1  # copied
    assert [round(ModelEMA(model, 0.999).current_decay(), 6)] == [0.1]
    ema.updates = 90
    assert ema.current_decay() == pytest.approx(91 / 100)
    ema.updates = 10**6
    assert ema.current_decay() == 0.999
    assert ModelEMA(model, 0.999, warmup=False).current_decay() == 0.999


def test_best_ckpt_holds_the_evaluated_weights_and_every_loader_agrees(
    tmp_path: Path, digits_flat
) -> None:
    torch.manual_seed(0)
    model = mz.create("mlp", hidden_sizes=(32,))
    config = dict(epochs=3, lr=3e-3, ema_decay=0.99, **QUIET)
    trainer = Trainer(ClassificationTask(model), config, batch_size=64, run_dir=tmp_path)
    trainer.fit(digits_flat.train, digits_flat.val)
    best = load_checkpoint(tmp_path / "checkpoints/best.ckpt")
    assert best["model_weights"] == "ema"
    assert not all(torch.equal(best["model"][k], v) for k, v in best["training_model"].items())
    # evaluate: the weights that chose best.ckpt score what chose it.
    assert evaluate_run(tmp_path)["val"]["accuracy"] == trainer.best_metric
    # pretrained=: the same weights.
    loaded = mz.create(
        "mlp", hidden_sizes=(32,), pretrained=str(tmp_path / "checkpoints/best.ckpt")
    )
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, best["model"][key]), key


def test_a_lagging_ema_is_reported_once_per_evaluation(
    digits_flat, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    model = mz.create("mlp", hidden_sizes=(32,))
    # No warm-up and a long average: after 40 steps the EMA is still near the random start.
    config = dict(
        epochs=2, max_steps=40, eval_every=20, lr=1e-2, ema_decay=0.999, ema_warmup=False, **QUIET
    )
    trainer = Trainer(ClassificationTask(model), config, batch_size=64)
    with caplog.at_level(logging.WARNING, logger="modelzoo.train.trainer"):
        trainer.fit(digits_flat.train, digits_flat.val)
    warnings = [r.getMessage() for r in caplog.records if "EMA" in r.getMessage()]
    assert len(warnings) == 2  # steps 20 and 40
    assert "Lower train.ema_decay (e.g. 0.99), set train.ema_warmup=true" in warnings[-1]
    assert "val_accuracy" in warnings[-1]


@pytest.mark.parametrize(
    "epochs", [4, pytest.param(15, marks=pytest.mark.slow, id="as-written")], ids=str
)
def test_the_readme_training_example_learns_and_its_run_dir_works_with_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture, epochs: int
) -> None:
    # README.md `## Training`, run as written (epochs=15, 150 optimizer steps; under -m slow)
    # and, in the default suite, with epochs=4 (40 steps). Before the EMA warm-up it ended at
    # chance (0.10): the average was still mostly the random initial weights.
    data = build_data("digits", img_size=16)
    model = mz.create("resnet20", num_classes=10, in_chans=1)
    config = TrainConfig(
        epochs=epochs,
        lr=2e-3,
        scheduler="cosine",
        warmup_steps=30,
        precision="bf16-mixed",
        grad_accum=2,
        ema_decay=0.999,
    )
    run = tmp_path / "r20"
    trainer = Trainer(ClassificationTask(model), config, run_dir=run, batch_size=64)
    trainer.fit(data.train, data.val)
    test = trainer.evaluate(data.test)
    assert test["accuracy"] >= 0.9

    recipe = load_recipe(run / "config.yaml")  # the complete recipe, as the CLI writes it
    assert recipe.model == {"name": "resnet20", "num_classes": 10, "in_chans": 1}
    assert recipe.data == {"name": "digits", "img_size": 16, "batch_size": 64}
    assert recipe.task["name"] == "classification"
    report = _cli_json(capsys, "evaluate", str(run))
    assert report["test"]["accuracy"] == pytest.approx(test["accuracy"], abs=1e-9)


def test_a_python_run_resumes_from_the_cli_exactly(tmp_path: Path, digits_flat) -> None:
    def trainer(run: Path, max_steps: int) -> Trainer:
        torch.manual_seed(1)
        model = mz.create("mlp", hidden_sizes=(16,), drop_rate=0.1)
        config = dict(max_steps=max_steps, epochs=2, log_every=1, eval_every=4, seed=2, **QUIET)
        return Trainer(ClassificationTask(model), config, run_dir=run, batch_size=32)

    trainer(tmp_path / "cut", 5).fit(digits_flat.train, digits_flat.val)
    assert cli_main(["resume", str(tmp_path / "cut"), "train.max_steps=10"]) == 0
    trainer(tmp_path / "whole", 10).fit(digits_flat.train, digits_flat.val)
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "whole")


def test_what_a_python_run_cannot_record_is_named_with_the_override_that_supplies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture, digits_flat
) -> None:
    x, y = digits_flat.train.tensors
    own = TensorDataset(x.clone(), y.clone())  # not made by build_data
    model = mz.create("mlp", hidden_sizes=(16,))
    run = tmp_path / "run"
    Trainer(ClassificationTask(model), dict(max_steps=3, **QUIET), run_dir=run).fit(own)
    assert "# not recorded: data:" in (run / "config.yaml").read_text()
    capsys.readouterr()
    assert cli_main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "ConfigError" in err and "does not say which data" in err
    assert "build_data" in err and f"modelzoo evaluate {run} data.name=digits" in err
    report = _cli_json(capsys, "evaluate", str(run), "data.name=digits", "data.flatten=true")
    assert 0.0 <= report["test"]["accuracy"] <= 1.0 and "val" in report

    # A model changed after create() would rebuild wrong: its name is left out.
    changed = mz.create("mlp", hidden_sizes=(16,))
    changed.reset_classifier(3)
    three = TensorDataset(x[:64], y[:64] % 3)
    other = tmp_path / "changed"
    Trainer(ClassificationTask(changed), dict(max_steps=1, **QUIET), run_dir=other).fit(three)
    text = (other / "config.yaml").read_text()
    assert "# not recorded: model: the model differs from create('mlp'" in text
    assert "head.bias: (3,) here, (10,) from create()" in text and "# not recorded: data:" in text


def test_resume_of_a_layer_decay_run_keeps_its_groups(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "model: {name: mlp, hidden_sizes: [16, 16, 16]}\n"
        "data: {name: digits, batch_size: 32, flatten: true}\n"
        "task: {name: classification}\n"
        "train: {epochs: 1, lr: 1e-2, layer_decay: 0.5, weight_decay: 0.05, scheduler: cosine,\n"
        "        log_every: 1, progress: false, plots: false, tensorboard: false}\n"
    )
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    assert cli_main(["train", str(recipe), "train.max_steps=3", "--run-dir", str(cut)]) == 0
    assert cli_main(["resume", str(cut), "train.max_steps=6"]) == 0
    assert cli_main(["train", str(recipe), "train.max_steps=6", "--run-dir", str(whole)]) == 0
    a = load_checkpoint(cut / "checkpoints/last.ckpt")["optimizers"]["main"]["param_groups"]
    b = load_checkpoint(whole / "checkpoints/last.ckpt")["optimizers"]["main"]["param_groups"]
    scales = sorted({g["lr_scale"] for g in a})
    assert len(scales) >= 4 and scales[-1] == 1.0 and scales[0] <= 0.125  # per-layer rates
    assert [(g["lr"], g["lr_scale"], g["weight_decay"]) for g in a] == [
        (g["lr"], g["lr_scale"], g["weight_decay"]) for g in b
    ]
    assert _rows(cut) == _rows(whole)


# --- the run directory ------------------------------------------------------------------------


def test_checkpoint_policy_keeps_the_newest_step_files(tmp_path: Path) -> None:
    run = RunDir(tmp_path, keep_last=2)
    calls = []

    def state() -> dict:
        calls.append(1)
        return {"model": {"w": torch.full((2,), float(len(calls)))}, "loop": {"step": 1}}

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/step-old.ckpt").write_bytes(b"not ours")
    for step in range(1, 6):
        run.save_checkpoints(state, step=step, best=step == 2, periodic=step % 2 == 0)
    run.save_checkpoints(state, step=5, last=True)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.ckpt", "last.ckpt", "step-2.ckpt", "step-4.ckpt", "step-old.ckpt"]
    assert len(calls) == 3  # the state is computed once per step, however many files
    assert load_checkpoint(tmp_path / "checkpoints/best.ckpt")["model"]["w"][0] == 1
    assert load_checkpoint(tmp_path / "checkpoints/step-4.ckpt")["model"]["w"][0] == 2
    assert load_checkpoint(tmp_path / "checkpoints/last.ckpt")["model"]["w"][0] == 3
    assert not list(tmp_path.rglob("*.tmp"))


def test_progress_in_a_log_file_is_one_line_per_interval(
    monkeypatch: pytest.MonkeyPatch, digits_flat
) -> None:
    out = io.StringIO()  # not a terminal, like stderr redirected to a log file
    progress = Progress(100, interval=3600, stream=out)
    for _ in range(100):
        progress.update(1, samples=32, loss=0.5)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()
    assert lines[0].startswith("100/100 steps (100%)") and "loss=0.5" in lines[0]

    out = io.StringIO()
    monkeypatch.setattr(run_module, "LOG_INTERVAL_S", 0.0)
    monkeypatch.setattr(sys, "stderr", out)
    model = mz.create("mlp", hidden_sizes=(8,))
    Trainer(ClassificationTask(model), dict(max_steps=5, plots=False)).fit(digits_flat.train)
    text = out.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 5  # one line per interval
    assert text.splitlines()[-1].startswith("5/5 steps (100%)")


def test_missing_tensorboard_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    data = TensorDataset(torch.randn(64, 64), torch.randint(0, 10, (64,)))
    model = mz.create("mlp", hidden_sizes=(8,))
    config = dict(max_steps=4, log_every=1, progress=False, plots=False, tensorboard=True)
    with caplog.at_level(logging.WARNING):
        Trainer(ClassificationTask(model), config, run_dir=tmp_path, batch_size=16).fit(data)
    warnings = [r.getMessage() for r in caplog.records if "TensorBoard" in r.getMessage()]
    assert len(warnings) == 1 and "train.tensorboard=false" in warnings[0]
    assert not (tmp_path / "tensorboard").exists() and len(_rows(tmp_path)) == 4


def test_a_corrupt_last_checkpoint_points_to_resume_from_an_earlier_one(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "model: {name: mlp, hidden_sizes: [8]}\n"
        "data: {name: digits, batch_size: 32, flatten: true}\n"
        "task: {name: classification}\n"
        "train: {epochs: 1, checkpoint_every: 2, log_every: 1, progress: false, plots: false,\n"
        "        tensorboard: false}\n"
    )
    run = tmp_path / "run"
    assert cli_main(["train", str(recipe), "train.max_steps=5", "--run-dir", str(run)]) == 0
    (run / "checkpoints/last.ckpt").write_bytes(b"\x80\x05 garbage " * 50)
    capsys.readouterr()
    assert cli_main(["resume", str(run), "train.max_steps=6"]) == 2
    err = capsys.readouterr().err
    assert "is corrupt" in err and "unsafe" not in err.lower() and "weights_only" not in err
    assert f"--checkpoint {run}/checkpoints/step-4.ckpt" in err
    args = [
        "resume",
        str(run),
        "train.max_steps=6",
        "--checkpoint",
        str(run / "checkpoints/step-4.ckpt"),
    ]
    assert _cli_json(capsys, *args)["step"] == 6
    assert [r["step"] for r in _rows(run)] == [str(s) for s in range(1, 7)]


def test_evaluating_a_hostile_checkpoint_runs_nothing_and_never_advises_unsafe_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    torch.save({"model": Evil()}, tmp_path / "evil.ckpt")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "model: {name: mlp}\ndata: {name: digits, flatten: true}\ntask: {name: classification}\n"
    )
    capsys.readouterr()
    assert cli_main(["evaluate", str(recipe), "--checkpoint", str(tmp_path / "evil.ckpt")]) == 2
    err = capsys.readouterr().err
    assert "UnsafeCheckpointError" in err and "shutil.rmtree" in err
    assert "weights_only=False" not in err
    assert (tmp_path / "victim").is_dir()


def test_every_file_of_the_run_layer_is_written_through_atomic_write() -> None:
    """No direct writes (write_text, open(..., "w"), savefig(path), torch.save(obj, path))
    in the modules that write run directories: each goes through utils.io.atomic_write."""
    modules = [
        "modelzoo/train/trainer.py",
        "modelzoo/train/run.py",
        "modelzoo/train/loggers.py",
        "modelzoo/train/checkpoint.py",
        "modelzoo/train/recipes.py",
        "modelzoo/train/rl/runner.py",
        "modelzoo/train/rl/evaluation.py",
    ]
    offences = []
    for module in modules:
        tree = ast.parse((ROOT / module).read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            mode = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
            mode += [k.value.value for k in node.keywords if k.arg == "mode"]
            direct = name in ("write_text", "write_bytes") or (
                name == "open" and any("w" in str(m) or "a" in str(m) for m in mode)
            )
            # savefig / torch.save / Image.save into a path (atomic_write passes a file object)
            if name in ("savefig", "save") and node.args and isinstance(node.args[0], ast.Name):
                direct = node.args[0].id in ("path", "target", "tmp")
            if direct:
                offences.append(f"{module}:{node.lineno} {name}")
    assert offences == []


def test_checkpoints_are_written_atomically_through_the_one_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelzoo.utils.io as uio

    written = []
    real = uio.atomic_write

    def spy(path, writer, **kwargs):
        written.append(Path(path).name)
        return real(path, writer, **kwargs)

    monkeypatch.setattr("modelzoo.train.checkpoint.atomic_write", spy)
    atomic_save({"model": {"w": torch.ones(1)}}, tmp_path / "x.ckpt")
    assert written == ["x.ckpt"]


# --- bad input at the run layer ----------------------------------------------------------------


def test_resume_with_a_missing_checkpoint_says_which(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "old")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        from modelzoo.train.recipes import resume_run

        resume_run(tmp_path / "old", checkpoint=tmp_path / "old/checkpoints/step-99.ckpt")
    with pytest.raises(ConfigError, match="batch_size"):
        Trainer(ClassificationTask(mz.create("mlp")), dict(**QUIET), batch_size=0)


# --- RL: the episodes that report a return never chose the checkpoint --------------------------


@pytest.mark.parametrize("seed", [0, 7, 9_995, 10_003])
@pytest.mark.parametrize(("episodes", "num_envs"), [(1, 1), (10, 8), (100, 16)])
def test_rl_evaluation_seed_ranges_never_overlap(seed: int, episodes: int, num_envs: int) -> None:
    from modelzoo.train.rl.base import AlgorithmConfig
    from modelzoo.train.rl.runner import evaluation_seeds

    seeds = evaluation_seeds(
        AlgorithmConfig(eval_episodes=episodes), TrainConfig(seed=seed), num_envs
    )
    ranges = [set(range(low, high + 1)) for low, high in seeds.values()]
    assert all(not (a & b) for i, a in enumerate(ranges) for b in ranges[i + 1 :]), seeds
    assert len(ranges[0]) == num_envs and len(ranges[1]) == len(ranges[2]) == min(episodes, 8)


def test_rl_eval_seed_on_the_selection_episodes_is_refused() -> None:
    from modelzoo.train.rl.base import AlgorithmConfig
    from modelzoo.train.rl.runner import evaluation_seeds

    with pytest.raises(
        ConfigError, match=r"task.eval_seed=10004 .* selection seeds 10000\.\.10007"
    ):
        evaluation_seeds(AlgorithmConfig(eval_seed=10_004), TrainConfig(seed=0))
    assert evaluation_seeds(AlgorithmConfig(eval_seed=500), TrainConfig(seed=0))["reported"] == [
        500,
        507,
    ]


def test_rl_runs_report_returns_from_episodes_that_did_not_choose_best_ckpt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, one_thread
) -> None:
    import gymnasium as gym

    resets: list[tuple[int, int]] = []  # (first seed, copies) of every seeded reset
    real_reset = gym.vector.SyncVectorEnv.reset

    def spy(self, *, seed=None, options=None):
        if isinstance(seed, int):
            resets.append((seed, self.num_envs))
        return real_reset(self, seed=seed, options=options)

    monkeypatch.setattr(gym.vector.SyncVectorEnv, "reset", spy)
    recipe = tmp_path / "ppo.yaml"
    recipe.write_text(
        "model: {name: actor_critic, net_arch: [16]}\n"
        "data: {name: gym, env_id: CartPole-v1, num_envs: 2}\n"
        "task: {name: ppo, total_timesteps: 256, n_steps: 32, n_epochs: 1, minibatch_size: 32,\n"
        "       eval_episodes: 3}\n"
        "train: {seed: 4, eval_every: 2, progress: false, plots: false, tensorboard: false}\n"
    )
    run = tmp_path / "run"
    assert cli_main(["train", str(recipe), "--run-dir", str(run)]) == 0
    assert (run / "checkpoints/best.ckpt").is_file()
    recorded = json.loads((run / "test_metrics.json").read_text())
    assert recorded["seeds"] == {
        "training": [4, 5],
        "selection": [10_004, 10_006],
        "reported": [20_004, 20_006],
    }
    train_resets = [r for r in resets if r[0] == 4]
    selection = [r for r in resets if r[0] == 10_004]
    reported = [r for r in resets if r[0] == 20_004]
    assert train_resets == [(4, 2)] and len(selection) == 2 and reported == [(20_004, 3)]
    assert len(resets) == len(train_resets) + len(selection) + len(reported)
    resets.clear()
    report = _cli_json(capsys, "evaluate", str(run))  # evaluates best.ckpt
    assert resets == [(20_004, 3)] and report["episodes"] == 3
