"""``modelzoo play``: a saved policy (run directory or shipped weights) plays in the environment
it was trained in, reports the same returns as ``modelzoo evaluate``, and writes a video; every
policy shipped by scripts/rl_applications.py plays as its card says."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import pytest
from script_helpers import load_script

from modelzoo.cli import play as play_cli
from modelzoo.config import recipe_from_dict
from modelzoo.errors import ConfigError
from modelzoo.train.recipes import evaluate_run, train_recipe
from modelzoo.train.rl.play import load_policy, play
from modelzoo.weights import get_weight_set

ROOT = Path(__file__).resolve().parents[2]


APPLICATIONS = load_script("rl_applications")


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("play") / "run"
    recipe = recipe_from_dict(
        {
            "model": {"name": "sac_policy", "net_arch": [32, 32]},
            "data": {"name": "gym", "env_id": "Pendulum-v1", "num_envs": 1},
            "task": {
                "name": "sac",
                "total_timesteps": 300,
                "learning_starts": 100,
                "batch_size": 32,
                "eval_episodes": 2,
            },
            "train": {"seed": 0, "progress": False, "plots": False, "tensorboard": False},
        }
    )
    train_recipe(recipe, run)
    return run


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="modelzoo")
    play_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["play", *argv])
    return args.run(args)


def test_play_writes_a_gif_and_prints_json(
    pendulum_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gif = tmp_path / "out.gif"
    assert (
        _cli(str(pendulum_run), "--episodes", "1", "--seed", "5", "--video", str(gif), "--json")
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 1 and report["env_id"] == "Pendulum-v1"
    assert report["video"] == str(gif)
    # (frames, H, W, 3): the first frame, then one per step until the 200-step time limit
    # (the last step's frame is the next episode's: the copy has reset)
    frames = iio.imread(gif)
    assert frames.shape[0] == 200 and frames.shape[-1] in (3, 4)
    assert report["mean_return"] == pytest.approx(report["returns"][0])


def test_play_reports_what_evaluate_reports(pendulum_run: Path) -> None:
    played = play(load_policy(pendulum_run), episodes=3, seed=77)
    evaluated = evaluate_run(pendulum_run, overrides=["task.eval_episodes=3", "task.eval_seed=77"])
    assert played.mean_return == pytest.approx(evaluated["mean_return"], rel=1e-12)
    assert len(played.returns) == evaluated["episodes"] == 3


def test_a_shipped_policy_plays_as_its_card_says() -> None:
    ws = get_weight_set("actor_critic", "cartpole")
    (claimed,) = ws.metrics.values()
    result = play(load_policy("actor_critic.cartpole"))  # the card's episodes and seed
    assert len(result.returns) == ws.recipe["task"]["eval_episodes"]
    assert result.mean_return == claimed["mean_return"]


def test_bad_targets_and_videos_are_refused(pendulum_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a run directory"):
        load_policy(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not a policy|no weight set|has no"):
        load_policy("resnet20.digits")
    with pytest.raises(ConfigError, match=r"\.gif or \.mp4"):
        play(load_policy(pendulum_run), episodes=1, video=tmp_path / "out.avi")
    assert not (tmp_path / "out.avi").exists()


# CarRacing renders 96x96 frames for a full lap (45 s): -m slow; the others run by default.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n.endswith(".carracing") else n
        for n in APPLICATIONS.shipped_names()
    ],
)
def test_every_shipped_application_policy_plays_as_its_card_says(name: str, one_thread) -> None:
    ((_, claimed, measured),) = APPLICATIONS.check_shipped([name])
    # The same games with the same actions: equal up to the order the returns are summed in.
    assert measured == pytest.approx(claimed, rel=1e-12, abs=1e-12), (
        f"{name}: card {claimed}, played {measured}"
    )


def test_a_stopped_application_run_continues_exactly_and_sums_its_sittings(
    tmp_path: Path,
) -> None:
    """A long section stopped part-way (a session ending) continues from its last checkpoint
    when run again: its curve equals an uninterrupted run's, and its wall clock adds up the
    sittings (the stopped one counted up to the checkpoint continued from)."""
    import csv

    from modelzoo.train.rl.runner import RLRunner

    section = APPLICATIONS.Section(
        "cartpole", "ppo_cartpole.yaml", "PPO, CartPole", 2048, None,
        overrides=("train.eval_every=null", "train.checkpoint_every=1"),
    )  # fmt: skip
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    APPLICATIONS.write_sittings(stopped, [{"started": 0.0}])
    first = RLRunner(APPLICATIONS.section_recipe(section, 0, ("train.max_steps=2",)), stopped)
    first.fit()
    first.close()
    last = stopped / "checkpoints" / "last.ckpt"
    # The first sitting began 5 s before its last checkpoint was written.
    APPLICATIONS.write_sittings(stopped, [{"started": last.stat().st_mtime - 5.0}])

    continued = APPLICATIONS.train_modelzoo(section, 0, stopped)
    whole = APPLICATIONS.train_modelzoo(section, 0, tmp_path / "whole")

    def rows(run: Path) -> list[dict[str, str]]:
        with (run / "metrics.csv").open(newline="") as f:
            return [r for r in csv.DictReader(f) if int(r["step"]) % 4 == 0]

    assert continued["timesteps"] == whole["timesteps"] == 2048
    assert rows(stopped) == rows(tmp_path / "whole")
    sittings = json.loads((stopped / "sittings.json").read_text())
    assert [s["wall_s"] for s in sittings][0] == pytest.approx(5.0)
    assert continued["wall_s"] == pytest.approx(sum(s["wall_s"] for s in sittings))
    # Run again, the finished run is reused with the same figures.
    assert APPLICATIONS.train_modelzoo(section, 0, stopped) == continued


def test_a_raised_budget_extends_the_finished_run_instead_of_starting_again(
    tmp_path: Path,
) -> None:
    """Raising a section's steps continues its finished run from the last checkpoint: the
    steps it has are kept (its rows stay as they were), and the sittings record each
    budget."""
    import csv

    def section(steps: int) -> Any:
        return APPLICATIONS.Section(
            "cartpole", "ppo_cartpole.yaml", "PPO, CartPole", steps, None,
            overrides=("train.eval_every=null", "train.checkpoint_every=4"),
        )  # fmt: skip

    def rows(run: Path) -> list[dict[str, str]]:
        with (run / "metrics.csv").open(newline="") as f:
            return list(csv.DictReader(f))

    run = tmp_path / "run"
    short = APPLICATIONS.train_modelzoo(section(1024), 0, run)
    before = rows(run)
    longer = APPLICATIONS.train_modelzoo(section(2048), 0, run)
    after = rows(run)
    assert (short["timesteps"], longer["timesteps"]) == (1024, 2048)
    assert after[: len(before)] == before and len(after) > len(before)
    assert int(after[-1]["timesteps"]) == 2048
    sittings = json.loads((run / "sittings.json").read_text())
    assert [s["steps"] for s in sittings] == [1024, 2048]
    assert longer["wall_s"] == pytest.approx(sum(s["wall_s"] for s in sittings))
    assert (run / "test_metrics.json").is_file()
    # Run again at the raised budget, the extended run is reused.
    assert APPLICATIONS.train_modelzoo(section(2048), 0, run) == longer


def test_rl_applications_md_is_what_its_results_files_make() -> None:
    """benchmarks/rl_applications.md is rendered from the sections' results files, so a
    results file or a section changed without re-rendering fails here."""
    report = ROOT / "benchmarks" / "rl_applications.md"
    assert APPLICATIONS.render_report() == report.read_text(), (
        "stale: run python scripts/rl_applications.py --report"
    )


def test_the_readme_names_every_shipped_application_policy() -> None:
    readme = (ROOT / "README.md").read_text()
    names = APPLICATIONS.shipped_names()
    assert names
    assert [n for n in names if f"`{n}`" not in readme] == []


def test_episode_i_is_the_same_game_whatever_the_number_of_episodes(one_thread) -> None:
    """Returns are listed round by round over the copies, not in the order the games end
    (LunarLander's games last from 200 to 1,000 steps), so the first episodes of a longer
    evaluation are the games of a shorter one."""
    policy = load_policy("q_network.lunarlander")
    short, long = play(policy, 3, seed=5), play(policy, 10, seed=5)
    assert long.lengths[:3] == short.lengths
    assert long.returns[:3] == pytest.approx(short.returns, rel=1e-9)
    assert len(set(long.lengths)) > 1  # games of different lengths: the order is tested
