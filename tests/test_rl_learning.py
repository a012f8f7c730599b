"""The RL claims of benchmarks/rl_results.md: each algorithm learns its environment to the level
the file states.

The default suite trains one seed of each CartPole recipe (A2C, DQN; PPO in the README test) as
``scripts/rl_results.py`` does and scores the checkpoint ``modelzoo evaluate`` picks on
20 held-out episodes (seeds that neither training nor the choice of ``best.ckpt`` used),
against gymnasium's threshold for CartPole-v1, 475. The other seeds and the Pendulum
and Acrobot recipes take minutes each and run under ``-m slow``. The published table
itself is re-read: its "met" column must be what its scores and thresholds give.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from script_helpers import run_script

from modelzoo.config import load_recipe
from modelzoo.train.recipes import evaluate_run, resume_run, train_recipe
from modelzoo.train.rl.runner import evaluation_seeds, parse_recipe

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "benchmarks" / "rl_results.md"
CARTPOLE_LEVEL = 475.0  # gymnasium's reward_threshold for CartPole-v1
CARTPOLE_MAX = 500.0  # CartPole-v1's time limit: no episode returns more
# The level each recipe claims, as benchmarks/rl_results.md states it.
LEVELS = {
    "ppo_cartpole": CARTPOLE_LEVEL,
    "a2c_cartpole": CARTPOLE_LEVEL,
    "dqn_cartpole": CARTPOLE_LEVEL,
    "ppo_pendulum": -300.0,
    "ppo_acrobot": -100.0,
}
TITLES = {
    "ppo_cartpole": "PPO, CartPole-v1",
    "a2c_cartpole": "A2C, CartPole-v1",
    "dqn_cartpole": "DQN, CartPole-v1",
    "ppo_pendulum": "PPO, Pendulum-v1",
    "ppo_acrobot": "PPO, Acrobot-v1",
}


def _recipe(key: str, seed: int, *extra: str):
    return load_recipe(
        ROOT / "configs" / "rl" / f"{key}.yaml",
        [f"train.seed={seed}", "train.progress=false", "train.tensorboard=false", *extra],
    )


def _best_selection_return(run_dir: Path) -> float:
    with (run_dir / "metrics.csv").open(newline="") as f:
        values = [float(r["val_mean_return"]) for r in csv.DictReader(f) if r["val_mean_return"]]
    return max(values, default=float("-inf"))


def train_until_best_is_final(key: str, seed: int, run_dir: Path, chunk: int) -> None:
    """Train the recipe ``chunk`` iterations at a time (exact resume) until its best.ckpt can
    no longer change, or to the end of its budget.

    best.ckpt is replaced only by a strictly higher selection return, so once a periodic
    evaluation reaches CartPole's maximum, the rest of the run cannot change it: the
    best.ckpt here is the one the full run ends with, and its score on the reported
    episodes is the full recipe's score. The stop looks only at the selection episodes.
    """
    recipe = _recipe(key, seed)
    per_iteration = recipe.data["num_envs"] * recipe.task["train_freq"]
    iterations = -(-recipe.task["total_timesteps"] // per_iteration)
    stop = chunk
    train_recipe(_recipe(key, seed, f"train.max_steps={stop}"), run_dir)
    while stop < iterations and _best_selection_return(run_dir) < CARTPOLE_MAX:
        stop = min(stop + chunk, iterations)
        resume_run(run_dir, [f"train.max_steps={stop}"])


def train_and_score(
    key: str, seed: int, run_dir: Path, episodes: int = 100, chunk: int | None = None
) -> dict[str, float]:
    """Train ``configs/rl/<key>.yaml`` with ``seed`` and score it as rl_results.md does."""
    recipe = _recipe(key, seed)
    if chunk is None:
        train_recipe(recipe, run_dir)
    else:
        train_until_best_is_final(key, seed, run_dir, chunk)
    overrides = [f"task.eval_episodes={episodes}"]  # on the runner's reported seeds
    if recipe.train.eval_every:
        # The episodes that chose best.ckpt and the ones that score it share no seed.
        data, task, _ = parse_recipe(recipe)
        seeds = evaluation_seeds(task, recipe.train, data.num_envs)
        chosen_on = range(seeds["selection"][0], seeds["selection"][1] + 1)
        scored_on = range(seeds["reported"][0], seeds["reported"][1] + 1)
        assert chosen_on and scored_on and not set(chosen_on) & set(scored_on)
        assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    score = evaluate_run(run_dir, overrides=overrides)
    assert score["episodes"] == episodes
    return score


# DQN trains the published recipe in chunks of 16 iterations (4096 env steps) and stops once
# best.ckpt is final (see train_until_best_is_final): seed 0 gets there at 24,576 of 50,000
# steps, about half the recipe's CPU time. A smaller budget would be another, less reliable
# claim: the three published seeds first reach 475 at 10k to 30k steps, and the final policy
# of two of them collapses below 200, so the recipe's result rests on choosing the best
# checkpoint over its whole budget.
CHUNKS = {"dqn_cartpole": 16}


# PPO's seed 0 is trained and scored by the README's Reinforcement learning section
# (tests/test_readme_examples.py: `modelzoo train configs/rl/ppo_cartpole.yaml`, then
# `modelzoo evaluate` on 100 held-out episodes, >= 475), so it is not trained twice here.
@pytest.mark.parametrize("key", ["a2c_cartpole", "dqn_cartpole"])
def test_learns_cartpole(key: str, tmp_path: Path, one_thread) -> None:
    score = train_and_score(key, 0, tmp_path / key, episodes=20, chunk=CHUNKS.get(key))
    assert score["mean_return"] >= LEVELS[key], (
        f"{key} seed 0 scores {score['mean_return']:.1f} on 20 held-out episodes, below "
        f"{LEVELS[key]:g}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "seed"),
    [
        *((k, s) for k in ("ppo_cartpole", "a2c_cartpole", "dqn_cartpole") for s in (1, 2)),
        ("ppo_pendulum", 0),
        ("ppo_acrobot", 0),
    ],
)
def test_reaches_the_published_level(key: str, seed: int, tmp_path: Path, one_thread) -> None:
    score = train_and_score(key, seed, tmp_path / key)
    assert score["mean_return"] >= LEVELS[key], f"{key} seed {seed}: {score}"


# --- the published table ---------------------------------------------------------------------


def _published_rows() -> dict[str, list[str]]:
    rows = {}
    for line in PUBLISHED.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in TITLES.values():
            rows[cells[0]] = cells
    return rows


def test_published_table_has_every_experiment_and_its_verdicts_follow_from_its_scores() -> None:
    rows = _published_rows()
    assert set(rows) == set(TITLES.values())
    text = PUBLISHED.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| experiment"))
    columns = [c.strip() for c in header.strip().strip("|").split("|")]
    score_col, met_col = columns.index("score per seed"), columns.index("met")
    chosen_col = columns.index("best.ckpt chosen on env seeds")
    measured_col = columns.index("score measured on env seeds")
    for key, title in TITLES.items():
        cells = rows[title]
        assert cells[columns.index("threshold")] == f">= {LEVELS[key]:g}", key
        scores = [float(s) for s in re.findall(r"-?\d+\.\d", cells[score_col])]
        met, total = map(int, re.fullmatch(r"\*\*(\d+)/(\d+)\*\*", cells[met_col]).groups())
        assert total == len(scores) and met == sum(s >= LEVELS[key] for s in scores), key
        assert met == total, f"{title}: the file says {met}/{total} seeds met the level"
        # Disjoint ranges, per seed: the selection's and the score's.
        for chosen, measured in zip(cells[chosen_col].split(";"), cells[measured_col].split(";")):
            if chosen.strip() == "-":
                continue
            a, b = (range(int(x), int(y) + 1) for x, y in (chosen.split("-"), measured.split("-")))
            assert not set(a) & set(b), f"{title}: {chosen} overlaps {measured}"
    assert "every run met its threshold" in text
    assert re.search(r"repeat 0 \(seed 0\): modelzoo then sb3; repeat 1 \(seed 1\): sb3 then", text)


def test_the_published_file_is_what_its_stored_results_give() -> None:
    """benchmarks/rl_results.md is rendered from benchmarks/rl_results.json, which the
    script wrote as it measured; an edit to either shows here."""
    done = run_script("rl_results.py", "--check", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
