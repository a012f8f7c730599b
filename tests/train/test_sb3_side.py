"""The Stable-Baselines3 side of scripts/rl_applications.py's side-by-side runs, on a
budget of seconds: both sides train the same steps in turns, SB3 gets the recipe's
settings, and SB3's policy plays through modelzoo's evaluation as it plays in SB3."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import pytest
from script_helpers import ROOT, load_script

from modelzoo.config import load_recipe
from modelzoo.train.rl.play import load_policy, play

pytest.importorskip("stable_baselines3")
SIDE = load_script("_sb3_side")
STEPS = 300


def _recipe(extra: tuple[str, ...]):
    return load_recipe(
        ROOT / "configs/rl/sac_pendulum.yaml",
        [
            f"task.total_timesteps={STEPS}",
            "task.learning_starts=200",
            "task.buffer_size=1000",
            "model.net_arch=[64,64]",
            "train.seed=0",
            "train.progress=false",
            "train.tensorboard=false",
            "train.eval_every=null",
            *extra,
        ],
    )


def test_both_sides_train_in_turns_and_sb3_plays_through_modelzoo_as_in_sb3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    ours, theirs, model = SIDE.train_interleaved(_recipe, "sac", STEPS, 2, 0, run, "pendulum")

    assert ours["timesteps"] == theirs["timesteps"] == model.num_timesteps == STEPS
    assert ours["wall_s"] > 0 and theirs["wall_s"] > 0
    printed = capsys.readouterr().out
    assert "[pendulum] turn 1/2" in printed and "[pendulum] turn 2/2" in printed
    # SB3 trains with the recipe's settings.
    assert (model.learning_rate, model.batch_size, model.gamma, model.tau) == (
        1e-3,
        256,
        0.99,
        0.005,
    )
    assert model.learning_starts == 200 and model.buffer_size == 1000
    assert model.policy.net_arch == [64, 64]

    # Played by modelzoo on modelzoo's environment, SB3's policy scores what it scores
    # when SB3 plays it on gymnasium's own environment from the same seed.
    policy = SIDE.sb3_policy(model, load_policy(run))
    seed = 30_000
    played = play(policy, 1, seed).returns[0]
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    env.close()
    assert math.isclose(played, total, rel_tol=1e-4), (played, total)

    with pytest.raises(ValueError, match="known: sac, ppo"):
        SIDE.sb3_model("td3", _recipe(()), None, 0, STEPS)


def test_sb3_ppo_gets_the_recipe_settings_and_anneals_over_the_whole_run() -> None:
    recipe = load_recipe(ROOT / "configs/rl/ppo_cartpole.yaml", ["train.seed=0"])
    env = SIDE.sb3_env(recipe, int(recipe.data["num_envs"]), 0, training=True)
    try:
        model = SIDE.sb3_model("ppo", recipe, env, 0, 10_000)
    finally:
        env.close()
    task = recipe.task
    assert (model.n_steps, model.batch_size, model.n_epochs, model.gamma) == (
        task["n_steps"],
        task["minibatch_size"],
        task["n_epochs"],
        task["gamma"],
    )
    assert env.num_envs == recipe.data["num_envs"]
    assert model.policy.net_arch == dict(recipe.model["net_arch"])
    assert model.normalize_advantage == task.get("normalize_advantage", True)
    # The schedule follows the run's own step count across learn() calls, not SB3's progress.
    lr = recipe.train.lr
    assert model.lr_schedule(1.0) == pytest.approx(lr)
    model.num_timesteps = 5_000
    half = 0.5 if task.get("anneal_lr") else 1.0
    assert model.lr_schedule(0.9) == pytest.approx(lr * half)
    half = 0.5 if task.get("anneal_clip_range") else 1.0
    assert model.clip_range(0.9) == pytest.approx(task["clip_range"] * half)
