"""The Atari and pixel pipelines, checked against gymnasium's own wrappers, and an end-to-end
PPO run on Breakout with the full wrapper stack (dry run: a few steps)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

from modelzoo.config import load_recipe
from modelzoo.errors import ConfigError
from modelzoo.models.rl import NatureCNNQNetwork, from_spaces
from modelzoo.train.recipes import evaluate_run, train_recipe
from modelzoo.train.rl.envs import GymDataConfig, make_env, make_vector_env
from modelzoo.train.rl.wrappers import WrapperSpec, register_atari

ROOT = Path(__file__).resolve().parents[2]
ATARI = WrapperSpec(atari=True, frame_stack=4)


def _lives(env: gym.Env) -> int:
    return int(env.unwrapped.ale.lives())


def test_frames_are_uint8_84x84x4_and_equal_gymnasiums_own_pipeline() -> None:
    ours = make_env("PongNoFrameskip-v4", wrappers=ATARI, training=False)
    register_atari()
    reference = FrameStackObservation(
        AtariPreprocessing(gym.make("PongNoFrameskip-v4"), noop_max=30, frame_skip=4), 4
    )
    assert ours.observation_space == reference.observation_space
    assert ours.observation_space.shape == (4, 84, 84)
    assert ours.observation_space.dtype == np.uint8
    obs, _ = ours.reset(seed=7)
    reference.reset(seed=7)
    for action in (1, 2):  # FIRE on reset, as the Nature DQN's pipeline does
        reference.step(action)
    rng = np.random.default_rng(0)
    for t in range(40):
        action = int(rng.integers(ours.action_space.n))
        obs, reward, *_ = ours.step(action)
        expected, expected_reward, *_ = reference.step(action)
        assert obs.dtype == np.uint8 and obs.shape == (4, 84, 84)
        assert reward == expected_reward
        if t >= 3:  # the stacks differ only in their padding from the reset
            np.testing.assert_array_equal(obs, expected)
    ours.close()
    reference.close()


def test_a_lost_life_ends_a_training_episode_but_not_the_game() -> None:
    env = make_env("BreakoutNoFrameskip-v4", wrappers=ATARI, training=True)
    env.reset(seed=0)
    env.action_space.seed(0)
    lives_at_end, game_returns = [], []
    for _ in range(3000):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            lives_at_end.append(_lives(env))
            game_returns.append(info.get("game_return"))
            if _lives(env) == 0:
                break
            env.reset()  # goes on with the same game
    assert lives_at_end == [4, 3, 2, 1, 0]  # one training episode per life, one game
    assert game_returns[:4] == [None] * 4 and game_returns[4] is not None
    env.close()


def test_evaluation_plays_the_whole_game() -> None:
    env = make_env("BreakoutNoFrameskip-v4", wrappers=ATARI, training=False)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(5000):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    assert terminated and _lives(env) == 0 and "game_return" in info
    env.close()


def test_rewards_are_clipped_in_training_only() -> None:
    # Space Invaders pays 5-30 points per invader: random play scores within a few hundred steps.
    rewards = {}
    for training in (True, False):
        env = make_env("SpaceInvadersNoFrameskip-v4", wrappers=ATARI, training=training)
        env.reset(seed=1)
        env.action_space.seed(1)
        seen = []
        for _ in range(600):
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            seen.append(reward)
            if terminated or truncated:
                env.reset()
        rewards[training] = set(seen)
        env.close()
    assert rewards[True] <= {-1.0, 0.0, 1.0} and 1.0 in rewards[True]
    assert max(rewards[False]) >= 5.0


def test_vectorized_training_statistics_are_unclipped_full_games() -> None:
    from modelzoo.train.rl.envs import EnvDriver

    data = GymDataConfig(env_id="BreakoutNoFrameskip-v4", num_envs=2, atari=True, frame_stack=4)
    vec = make_vector_env(data.env_id, 2, wrappers=data.wrappers())
    driver = EnvDriver(vec, data, 0.99, seed=0)
    driver.reset()
    rng = np.random.default_rng(0)
    while driver.episodes < 2:
        driver.step(rng.integers(4, size=2))
    stats = driver.episode_stats()
    # An episode is a whole game (5 lives, hundreds of agent steps), not one life.
    assert stats["mean_length"] > 100
    driver.close()


def test_pixel_wrappers_make_grey_stacked_frames() -> None:
    spec = WrapperSpec(grayscale=True, resize=84, frame_stack=4)
    env = make_env("CarRacing-v3", wrappers=spec, training=False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    model = from_spaces(env.observation_space, env.action_space)
    assert model.obs_shape == (4, 84, 84) and model.continuous
    env.close()


def test_wrapper_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="frame_stack"):
        GymDataConfig(frame_stack=0)
    with pytest.raises(ConfigError, match="already skips 4 frames"):
        GymDataConfig(atari=True, resize=64)
    with pytest.raises(ConfigError, match="needs an Atari environment"):
        make_env("CartPole-v1", wrappers=ATARI)


def test_q_network_on_frames_is_the_nature_dqn() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    model = from_spaces(space, gym.spaces.Discrete(4), kind="q_network")
    assert isinstance(model, NatureCNNQNetwork)
    frames = torch.as_tensor(np.stack([space.sample(), space.sample()]))
    assert model(frames).shape == (2, 4)
    assert model.act(frames, epsilon=0.0).shape == (2,)


@pytest.mark.parametrize("config", ["ppo_breakout.yaml", "dqn_breakout.yaml"])
def test_atari_recipe_runs_end_to_end(config: str, tmp_path: Path) -> None:
    """The full wrapper stack through training, a checkpoint and an evaluation of full games."""
    recipe = load_recipe(
        ROOT / "configs/rl" / config,
        ["train.dry_run=true", "train.plots=false", "train.tensorboard=false"],
    )
    result = train_recipe(recipe, tmp_path / "run")
    assert result.test_metrics["episodes"] == 2
    again = evaluate_run(tmp_path / "run")
    assert again["mean_return"] == pytest.approx(evaluate_run(tmp_path / "run")["mean_return"])
