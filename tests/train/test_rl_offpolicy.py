"""SAC and TD3: the networks, short learning runs on Pendulum, exact resume, saved statistics.

Pendulum budgets for the default suite (the recipes configs/rl/sac_pendulum.yaml and
td3_pendulum.yaml use rl-zoo's 256-256 networks for 20k steps). Measured returns over 10
episodes, seeds 0 / 1 / 2, learning from step 500, batch 128, lr 1e-3, on this project's
2-core CPU:
SAC, 64-64 networks: 3000 steps -999 / -828 / -217; 4000 steps -416 / -181 / -126;
5000 steps -158 / -170 / -122.
TD3 (gamma 0.98, rl-zoo's Pendulum setting), 128-128 networks: 5000 steps (lr 2e-3)
-449 / -684 / -310; 6000 steps -313 / -339 / -241; 8000 steps -152 / -167 / -140.
So the tests run SAC for 5000 steps and TD3 for 8000, seed 0: every seed passes -300 at
these budgets, and on CPU a seeded run is bit-for-bit repeatable, so the test cannot
flake. About 25 s (SAC) and 35 s (TD3) of one core.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import modelzoo as mz
from modelzoo.config import recipe_from_dict
from modelzoo.errors import ConfigError
from modelzoo.models.rl import SACPolicy, TD3Policy, from_spaces
from modelzoo.train.recipes import train_recipe
from modelzoo.train.rl.play import load_policy, play
from modelzoo.train.rl.runner import RLRunner

ROOT = Path(__file__).resolve().parents[2]

# Pendulum budgets (the module docstring has the returns they reach): task, network width.
PENDULUM: dict[str, tuple[dict[str, Any], int]] = {
    "sac": ({"total_timesteps": 5000, "learning_starts": 500, "batch_size": 128}, 64),
    "td3": (
        {"total_timesteps": 8000, "learning_starts": 500, "batch_size": 128, "gamma": 0.98},
        128,
    ),
}


def _recipe(
    algorithm: str,
    task: dict[str, Any],
    train: dict[str, Any] | None = None,
    net_arch: tuple[int, ...] = (64, 64),
    **data: Any,
):
    return recipe_from_dict(
        {
            "model": {"name": f"{algorithm}_policy", "net_arch": list(net_arch)},
            "data": {"name": "gym", "env_id": "Pendulum-v1", "num_envs": 1, **data},
            "task": {"name": algorithm, **task},
            "train": {
                "lr": 1e-3,
                "seed": 0,
                "log_every": 100,
                "progress": False,
                "plots": False,
                "tensorboard": False,
                **(train or {}),
            },
        }
    )


# --- networks ---------------------------------------------------------------------------


def test_sac_actor_squashes_into_the_bounds_and_its_log_prob_is_the_change_of_variables() -> None:
    space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
    obs_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    model = from_spaces(obs_space, space, kind="sac_policy")
    assert isinstance(model, SACPolicy)
    torch.manual_seed(0)
    obs = torch.randn(4096, 3) * 5
    action, log_prob, value = model.act(obs)
    assert value is None
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    assert ((action >= low) & (action <= high)).all()
    # log p(a) = log N(u) - sum log(1 - tanh(u)^2): check against torch's TanhTransform.
    torch.manual_seed(1)
    squashed, ours = model.sample(obs[:8])
    mean, log_std = model.actor_outputs(obs[:8])
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)],
    )
    reference = dist.log_prob(squashed.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    torch.testing.assert_close(ours, reference, rtol=1e-3, atol=1e-3)
    deterministic = model.act(obs[:8], deterministic=True).action
    torch.testing.assert_close(deterministic, model(obs[:8]).action)


def test_td3_policy_acts_deterministically_in_the_bounds() -> None:
    space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    model = from_spaces(gym.spaces.Box(-1, 1, (3,), np.float32), space, kind="td3_policy")
    assert isinstance(model, TD3Policy)
    obs = torch.randn(64, 3)
    a, b = model.act(obs).action, model.act(obs).action
    assert torch.equal(a, b) and (a.abs() <= 2.0).all()
    out = model(obs)
    assert out.q_values.shape == (64, 2)


def test_continuous_policies_refuse_discrete_actions() -> None:
    with pytest.raises(ConfigError, match="continuous"):
        from_spaces(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), kind="sac_policy")
    with pytest.raises(ConfigError, match="action_high must exceed"):
        mz.create("td3_policy", action_low=1.0, action_high=-1.0)


# --- learning ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sac", "td3"])
def test_learns_pendulum_to_minus_300(algorithm: str, tmp_path: Path, one_thread: None) -> None:
    task, width = PENDULUM[algorithm]
    recipe = _recipe(algorithm, {**task, "eval_episodes": 10}, net_arch=(width, width))
    result = train_recipe(recipe, tmp_path / algorithm)
    assert result.test_metrics["episodes"] == 10
    assert result.test_metrics["mean_return"] >= -300.0, result.test_metrics


# --- exact resume -----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sac", "td3"])
def test_resume_is_bit_exact(algorithm: str, tmp_path: Path, one_thread: None) -> None:
    task = {
        "total_timesteps": 120,
        "learning_starts": 40,
        "batch_size": 16,
        "buffer_size": 80,  # the ring wraps before the cut
        "train_freq": 4,
        "gradient_steps": 2,
        "eval_episodes": 0,
    }
    data = {"num_envs": 2, "normalize_obs": True, "normalize_reward": True}
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    train_recipe(_recipe(algorithm, task, {"max_steps": 9, "log_every": 1}, **data), cut)
    resumed = RLRunner(_recipe(algorithm, task, {"log_every": 1}, **data), cut)
    resumed.fit(resume_from=cut / "checkpoints/last.ckpt")
    resumed.close()
    runner = RLRunner(_recipe(algorithm, task, {"log_every": 1}, **data), whole)
    runner.fit()
    runner.close()
    assert (cut / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    a = torch.load(cut / "checkpoints/last.ckpt", weights_only=True)
    b = torch.load(whole / "checkpoints/last.ckpt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["algorithm_state"]["target"].items():
        assert torch.equal(value, b["algorithm_state"]["target"][key]), key
    for part in ("obs", "next_obs", "actions", "rewards"):
        assert torch.equal(
            a["algorithm_state"]["replay"][part], b["algorithm_state"]["replay"][part]
        )
    state_a, state_b = a["algorithm_state"], b["algorithm_state"]
    if algorithm == "sac":
        assert torch.equal(state_a["log_ent_coef"], state_b["log_ent_coef"])
    assert state_a["num_updates"] == state_b["num_updates"] > 0


# --- normalization statistics travel with the policy ------------------------------------


def test_a_policy_trained_with_normalization_plays_the_same_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    task = {"total_timesteps": 600, "learning_starts": 200, "batch_size": 32, "eval_episodes": 0}
    run = tmp_path / "run"
    train_recipe(_recipe("sac", task, normalize_obs=True), run)
    state = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    mean = state["env"]["obs_rms"]["mean"]
    assert mean.abs().max() > 0.01  # the statistics moved away from their start

    here = play(load_policy(run), episodes=3, seed=123)
    script = (
        "import json, sys\n"
        "from modelzoo.train.rl.play import load_policy, play\n"
        "r = play(load_policy(sys.argv[1]), episodes=3, seed=123)\n"
        "print(json.dumps(r.returns))\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", script, str(run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here.returns

    # Without the statistics the same network sees different inputs and plays differently.
    policy = load_policy(run)
    policy.obs_rms = None
    assert not math.isclose(play(policy, episodes=3, seed=123).mean_return, here.mean_return)


def test_a_weight_set_card_carries_the_statistics_and_plays_as_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy published as a weight set (file + card) needs nothing from its run directory."""
    import dataclasses

    from modelzoo.train.rl.envs import GymDataConfig
    from modelzoo.train.rl.play import policy_card_spec
    from modelzoo.weights import (
        WeightFile,
        WeightSet,
        register_weights,
        save_weights,
        sha256_file,
        unregister_weights,
    )

    task = {"total_timesteps": 600, "learning_starts": 200, "batch_size": 32, "eval_episodes": 0}
    run = tmp_path / "run"
    recipe = _recipe("sac", task, normalize_obs=True)
    train_recipe(recipe, run)
    from_run = load_policy(run)
    folder = tmp_path / "weights"
    file = save_weights(from_run.model.state_dict(), folder / "sac_policy.normtest.safetensors")
    card_recipe = recipe.to_dict()
    card_recipe["task"].update(eval_episodes=3, eval_seed=321)
    data = GymDataConfig.from_dict(recipe.data)
    card = WeightSet(
        arch="sac_policy",
        tag="normtest",
        files=(WeightFile(file.name, file.stat().st_size, sha256_file(file)),),
        model_kwargs=dict(from_run.model.init_kwargs),
        metrics={},
        license="BSD-3-Clause",
        recipe=card_recipe,
        input_spec=policy_card_spec(data, from_run.obs_rms),
    )
    monkeypatch.setenv("MODELZOO_WEIGHTS_DIR", str(folder))
    register_weights(card)
    try:
        shipped = load_policy("sac_policy.normtest")
        assert np.array_equal(shipped.obs_rms.mean, from_run.obs_rms.mean)
        assert play(shipped).returns == play(from_run, 3, 321).returns
        unregister_weights("sac_policy", "normtest")
        spec = {k: v for k, v in card.input_spec.items() if k != "obs_rms"}
        register_weights(dataclasses.replace(card, input_spec=spec))
        with pytest.raises(ConfigError, match="no observation statistics"):
            load_policy("sac_policy.normtest")
    finally:
        unregister_weights("sac_policy", "normtest")
