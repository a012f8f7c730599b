"""RL training: GAE, replay, short learning runs, exact resume, evaluation and bad input.

The full threshold runs of the shipped recipes (CartPole, Pendulum, Acrobot) are
marked slow; scripts/rl_results.py runs them and writes benchmarks/rl_results.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from modelzoo.cli import main as cli_main
from modelzoo.config import load_recipe, recipe_from_dict
from modelzoo.errors import ConfigError, NonFiniteLossError
from modelzoo.models.rl import from_spaces
from modelzoo.train.recipes import evaluate_run, train_recipe, validate_recipe
from modelzoo.train.rl import evaluate_policy
from modelzoo.train.rl.buffers import ReplayBuffer, RolloutBuffer, compute_gae
from modelzoo.train.rl.runner import RLRunner

ROOT = Path(__file__).resolve().parents[2]

# rl-zoo's PPO settings for CartPole (configs/rl/ppo_cartpole.yaml), shortened.
PPO_CARTPOLE: dict[str, Any] = {
    "model": {"name": "actor_critic"},
    "data": {"name": "gym", "env_id": "CartPole-v1", "num_envs": 8},
    "task": {
        "name": "ppo",
        "total_timesteps": 20_000,
        "n_steps": 32,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "n_epochs": 20,
        "minibatch_size": 256,
        "anneal_clip_range": True,
        "eval_episodes": 10,
    },
    "train": {"lr": 1e-3, "optimizer": "adam", "seed": 0, "progress": False, "plots": False},
}


def _recipe(base: dict[str, Any], **sections: dict[str, Any]):
    raw = {k: dict(v) for k, v in base.items()}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return recipe_from_dict(raw)


# --- advantages and buffers --------------------------------------------------------------


def test_gae_stops_at_termination_and_bootstraps_truncation() -> None:
    # One environment, four steps: the episode terminates at t=1 (no future value), a new
    # one is truncated at t=2 (future value V(final_obs) = 7), and t=3 bootstraps from 8.
    gamma, lam = 0.5, 0.5
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    values = torch.tensor([[10.0], [20.0], [30.0], [40.0]])
    next_values = torch.tensor([[20.0], [99.0], [7.0], [8.0]])
    terminated = torch.tensor([[False], [True], [False], [False]])
    truncated = torch.tensor([[False], [False], [True], [False]])
    # deltas: 1 + .5*20 - 10 = 1; 2 - 20 = -18; 3 + .5*7 - 30 = -23.5; 4 + .5*8 - 40 = -32
    # advantages, backwards: -32; -23.5 (episode ends); -18 (episode ends); 1 + .25*-18 = -3.5
    expected = torch.tensor([[-3.5], [-18.0], [-23.5], [-32.0]])
    advantages, returns = compute_gae(
        rewards, values, next_values, terminated, truncated, gamma, lam
    )
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)

    # The rollout buffer wires the same successor values: V(s_{t+1}) from the next row,
    # V(final_obs) where truncated, and the value after the rollout at the end.
    buffer = RolloutBuffer(4, 1, (3,), torch.float32, (), torch.int64)
    for t in range(4):
        buffer.add(
            torch.zeros(1, 3),
            torch.zeros(1, dtype=torch.int64),
            torch.zeros(1),
            values[t],
            rewards[t],
            terminated[t],
            truncated[t],
            torch.tensor([7.0]) if truncated[t] else torch.zeros(1),
        )
    buffer.compute_returns_and_advantages(torch.tensor([8.0]), gamma, lam)
    torch.testing.assert_close(buffer.advantages, expected)


def test_gae_lambda_one_gives_discounted_returns() -> None:
    rewards = torch.ones(3, 2)
    values = torch.zeros(3, 2)
    none = torch.zeros(3, 2, dtype=torch.bool)
    _, returns = compute_gae(rewards, values, torch.zeros(3, 2), none, none, 0.9, 1.0)
    torch.testing.assert_close(returns[:, 0], torch.tensor([1 + 0.9 + 0.81, 1.9, 1.0]))


def test_replay_buffer_wraps_and_samples_only_stored_transitions() -> None:
    buffer = ReplayBuffer(5, (2,))
    for start in (0, 2, 4):  # three batches of two environments: six transitions
        ids = np.array([start, start + 1], np.float32)
        buffer.add(
            np.stack([ids, ids], 1),  # obs: the transition's id twice
            np.array([start % 2, (start + 1) % 2]),
            ids * 10,
            np.stack([ids, ids], 1) + 0.5,
            ids % 2 == 1,
        )
    assert len(buffer) == 5 and buffer.pos == 1  # transition 0 was overwritten
    torch.manual_seed(0)
    batch = buffer.sample(500)
    ids = batch.obs[:, 0]
    assert set(ids.tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    # Each sample keeps its own fields together.
    torch.testing.assert_close(batch.next_obs[:, 0], ids + 0.5)
    torch.testing.assert_close(batch.rewards, ids * 10)
    assert torch.equal(batch.terminated, ids % 2 == 1)
    assert torch.equal(batch.actions, ids.long() % 2)

    restored = ReplayBuffer(5, (2,))
    restored.load_state_dict(buffer.state_dict())
    torch.manual_seed(1)
    a = buffer.sample(8)
    torch.manual_seed(1)
    b = restored.sample(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# --- learning ----------------------------------------------------------------------------


def test_ppo_learns_cartpole_in_20k_steps() -> None:
    torch.set_num_threads(1)
    result = train_recipe(_recipe(PPO_CARTPOLE))
    # A random policy averages about 22; PPO reaches several hundred in this budget.
    assert result.test_metrics["episodes"] == 10
    assert result.test_metrics["mean_return"] >= 150, result.test_metrics


def test_dqn_learns_something_on_cartpole() -> None:
    raw = {
        "model": {"name": "q_network", "net_arch": [64, 64]},
        "data": {"name": "gym", "env_id": "CartPole-v1", "num_envs": 1},
        "task": {
            "name": "dqn",
            "total_timesteps": 12_000,
            "learning_starts": 1000,
            "batch_size": 64,
            "train_freq": 256,
            "gradient_steps": 64,
            "target_update_interval": 10,
            "exploration_fraction": 0.16,
            "exploration_final_eps": 0.04,
            "eval_episodes": 10,
        },
        "train": {"lr": 2.3e-3, "optimizer": "adam", "seed": 0, "progress": False},
    }
    torch.set_num_threads(1)
    result = train_recipe(recipe_from_dict(raw))
    assert result.test_metrics["mean_return"] >= 50, result.test_metrics  # random: about 22


# --- exact resume ------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    done = subprocess.run(
        [sys.executable, "-m", "modelzoo.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ppo_resume_in_a_new_process_is_bit_exact(tmp_path: Path) -> None:
    recipe = ROOT / "configs/rl/ppo_cartpole.yaml"
    common = [
        "task.total_timesteps=4096",
        "task.n_epochs=4",
        "task.eval_episodes=0",
        "train.log_every=2",
        "train.checkpoint_every=3",
        "train.progress=false",
        "train.plots=false",
        "train.tensorboard=false",
    ]
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    _cli("train", str(recipe), *common, "train.max_steps=6", "--run-dir", str(cut), cwd=tmp_path)
    _cli("resume", str(cut), "train.max_steps=12", cwd=tmp_path)
    # The uninterrupted run goes in this process, whatever its torch thread count: RL runs of
    # small networks use one thread, so the numbers must not depend on the caller.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_recipe(load_recipe(recipe, [*common, "train.max_steps=12"]), whole)
    finally:
        torch.set_num_threads(threads)

    assert (cut / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    a = torch.load(cut / "checkpoints/last.ckpt", weights_only=True)
    b = torch.load(whole / "checkpoints/last.ckpt", weights_only=True)
    assert a["loop"]["step"] == b["loop"]["step"] == 12
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["env"]["obs"], b["env"]["obs"])
    state_a, state_b = a["optimizers"]["main"]["state"], b["optimizers"]["main"]["state"]
    for index in state_a:
        assert torch.equal(state_a[index]["exp_avg_sq"], state_b[index]["exp_avg_sq"])


@pytest.mark.parametrize(
    ("algorithm", "env_id", "model", "extra"),
    [
        ("dqn", "CartPole-v1", "q_network", {"learning_starts": 16, "train_freq": 8}),
        ("a2c", "Pendulum-v1", "actor_critic", {"n_steps": 8}),
    ],
)
def test_resume_restores_replay_buffers_and_normalization(
    tmp_path: Path, algorithm: str, env_id: str, model: str, extra: dict[str, Any]
) -> None:
    raw = {
        "model": {"name": model, "net_arch": [16]},
        "data": {
            "name": "gym",
            "env_id": env_id,
            "num_envs": 2,
            "normalize_obs": True,
            "normalize_reward": True,
        },
        "task": {"name": algorithm, "total_timesteps": 160, "eval_episodes": 0, **extra},
        "train": {"seed": 3, "log_every": 1, "progress": False, "plots": False},
    }
    torch.set_num_threads(1)
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    train_recipe(_recipe(raw, train={"max_steps": 4}), cut)
    resumed_runner = RLRunner(_recipe(raw), cut)
    resumed_runner.fit(resume_from=cut / "checkpoints/last.ckpt")
    resumed_runner.close()
    runner = RLRunner(_recipe(raw), whole)
    runner.fit()
    runner.close()
    assert (cut / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    resumed = torch.load(cut / "checkpoints/last.ckpt", weights_only=True)
    for key, value in runner.model.state_dict().items():
        assert torch.equal(resumed["model"][key], value), key
    running_var = torch.from_numpy(runner.driver.obs_rms.var)
    assert torch.equal(resumed["env"]["obs_rms"]["var"], running_var)


# --- evaluation --------------------------------------------------------------------------


class _Corridor(gym.Env):
    """Walk right for 5 steps to finish; renders a small image of the position."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(0.0, 5.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.position = 0

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.position = 0
        return np.array([0.0], np.float32), {}

    def step(self, action: int):
        self.position += 1 if action == 1 else 0
        done = self.position >= 5
        return np.array([self.position], np.float32), 1.0, done, False, {}

    def render(self) -> np.ndarray:
        frame = np.zeros((8, 8, 3), np.uint8)
        frame[:, self.position] = 255
        return frame


gym.register("ModelzooCorridor-v0", entry_point=_Corridor, max_episode_steps=20)


def test_evaluate_policy_reports_returns_and_writes_a_gif(tmp_path: Path) -> None:
    env = gym.make("ModelzooCorridor-v0")
    torch.manual_seed(0)
    model = from_spaces(env.observation_space, env.action_space, net_arch=dict(pi=[8], vf=[8]))
    with torch.no_grad():  # a policy that always walks right: return 5 in every episode
        model.action_net.weight.zero_()
        model.action_net.bias.copy_(torch.tensor([0.0, 1.0]))
    result = evaluate_policy(model, "ModelzooCorridor-v0", 3, seed=0, gif_path=tmp_path / "e.gif")
    assert result == {"mean_return": 5.0, "std_return": 0.0, "episodes": 3}
    from PIL import Image

    with Image.open(tmp_path / "e.gif") as gif:
        assert gif.n_frames == 5  # the reset frame and four steps; the last one resets

    with pytest.raises(ConfigError, match=r"CartPole|\(4,\)"):
        evaluate_policy(model, "CartPole-v1", 1, seed=0)


def test_evaluate_cli_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = load_recipe(ROOT / "configs/rl/ppo_cartpole.yaml", ["train.dry_run=true"])
    run = tmp_path / "run"
    train_recipe(recipe, run)
    assert (run / "checkpoints/last.ckpt").is_file()
    capsys.readouterr()
    assert cli_main(["evaluate", str(run), "task.eval_episodes=3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"mean_return", "std_return", "episodes"}
    assert out["episodes"] == 3 and out["mean_return"] >= 8  # CartPole lasts >= 8 steps
    # The same seed gives the same episodes.
    assert evaluate_run(run, overrides=["task.eval_episodes=3"]) == out


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "actor_critic", "obs_dim": 3}, r"(?s)shape \(3,\).*Box.*shape \(4,\)"),
        ({"name": "actor_critic", "action_dim": 3}, r"3 discrete actions.*Discrete\(2\)"),
        ({"name": "q_network"}, r"ppo trains actor_critic or nature_cnn_actor_critic"),
        ({"name": "actor_critic", "net_arc": [8]}, r"Did you mean: net_arch"),
    ],
)
def test_a_network_that_does_not_fit_the_env_names_both(
    model: dict[str, Any], message: str
) -> None:
    recipe = _recipe(PPO_CARTPOLE)
    recipe.model = model
    with pytest.raises(ConfigError, match=message):
        RLRunner(recipe)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("task", {"n_step": 8}, r"task \(ppo\)\.n_step\. Did you mean task \(ppo\)\.n_steps"),
        ("data", {"env_id": "CartPol-v1"}, r"CartPol-v1.*not a registered"),
        ("data", {"num_env": 2}, r"Did you mean data \(gym\)\.num_envs"),
        ("train", {"epochs": 3}, r"train\.epochs does not apply.*total_timesteps"),
        ("task", {"gamma": 1.5}, r"task\.gamma must be in \[0, 1\]"),
    ],
)
def test_recipe_keys_are_validated(section: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_recipe(_recipe(PPO_CARTPOLE, **{section: values}))


class _NaNAfter(gym.Env):
    """A CartPole-shaped environment whose fifth step returns a NaN observation."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action: int):
        self.t += 1
        obs = np.full(4, np.nan if self.t == 5 else 0.0, np.float32)
        return obs, 1.0, False, False, {}


gym.register("ModelzooNaNAfter-v0", entry_point=_NaNAfter, max_episode_steps=100)


def test_nan_in_a_rollout_stops_training_naming_the_step(tmp_path: Path) -> None:
    recipe = _recipe(PPO_CARTPOLE, data={"env_id": "ModelzooNaNAfter-v0", "num_envs": 2})
    with pytest.raises(NonFiniteLossError, match=r"env step 10 .*NaN"):
        train_recipe(recipe, tmp_path / "run")
    assert not (tmp_path / "run/checkpoints/last.ckpt").exists()


# --- the shipped recipes' thresholds (scripts/rl_results.py reports them) ----------------


def _train_and_evaluate(config: str, seed: int, tmp_path: Path) -> float:
    overrides = [f"train.seed={seed}", "train.progress=false"]
    recipe = load_recipe(ROOT / "configs/rl" / config, overrides)
    run = tmp_path / f"{config}-{seed}"
    train_recipe(recipe, run)
    return evaluate_run(run, overrides=["task.eval_episodes=100"])["mean_return"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("config", "threshold"), [("ppo_cartpole.yaml", 475.0), ("dqn_cartpole.yaml", 475.0)]
)
def test_cartpole_is_solved(config: str, threshold: float, seed: int, tmp_path: Path) -> None:
    assert _train_and_evaluate(config, seed, tmp_path) >= threshold


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "threshold"), [("ppo_pendulum.yaml", -300.0), ("ppo_acrobot.yaml", -100.0)]
)
def test_pendulum_and_acrobot_reach_their_thresholds(
    config: str, threshold: float, tmp_path: Path
) -> None:
    assert _train_and_evaluate(config, 0, tmp_path) >= threshold
