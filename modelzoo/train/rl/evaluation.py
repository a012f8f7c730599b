"""Evaluating a policy: mean and std of the episode return over N seeded episodes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.train.rl.base import env_actions
from modelzoo.train.rl.envs import RunningMeanStd, make_vector_env
from modelzoo.utils.devices import model_device

__all__ = ["evaluate_policy", "episode_seeds", "policy_actions"]

_logger = logging.getLogger(__name__)

MAX_EVAL_ENVS = 8


def episode_seeds(seed: int, episodes: int) -> range:
    """The environment seeds ``evaluate_policy(..., episodes, seed)`` uses.

    Copy ``i`` of the environment is seeded ``seed + i`` and plays all its episodes from
    that seed, so two evaluations share no episode when these ranges are disjoint.
    """
    return range(seed, seed + min(max(episodes, 1), MAX_EVAL_ENVS))


def policy_actions(model: nn.Module, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
    """Actions of any of the zoo's RL networks for a batch of observations.

    Q-networks act greedily; policies and actor-critics take their most likely
    action when ``deterministic``, else sample.
    """
    from modelzoo.models.rl import QNetwork

    if isinstance(model, QNetwork):
        return model(obs).argmax(dim=-1)
    if hasattr(model, "act"):
        return model.act(obs, deterministic=deterministic).action
    raise ConfigError(
        f"{type(model).__name__} cannot act: evaluate a policy, an actor-critic or a Q-network "
        "(mlp_policy, actor_critic, nature_cnn_actor_critic, q_network)"
    )


@torch.no_grad()
def evaluate_policy(
    model: nn.Module,
    env_id: str,
    episodes: int = 10,
    seed: int = 0,
    *,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    obs_rms: RunningMeanStd | None = None,
    clip_obs: float = 10.0,
    gif_path: str | Path | None = None,
) -> dict[str, float]:
    """Run a policy for ``episodes`` episodes and report their returns.

    The episodes run on up to 8 copies of the environment; copy ``i`` is seeded
    ``seed + i`` and plays a fixed share of the episodes (as SB3's
    ``evaluate_policy``), so the result depends only on the policy, ``episodes``
    and ``seed``.

    Args:
        model: ``mlp_policy``, ``actor_critic``, ``nature_cnn_actor_critic`` or ``q_network``.
        env_id: a registered gymnasium id.
        episodes: episodes to play.
        seed: seed of the first copy.
        deterministic: act with the most likely action (policies); Q-networks are greedy.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_episode_steps: overrides the environment's time limit.
        obs_rms: observation statistics of a run trained with ``normalize_obs``.
        clip_obs: clip of normalized observations.
        gif_path: also write the first episode of copy 0 as a GIF (needs rgb_array
            rendering and Pillow; skipped with a warning otherwise).

    Returns:
        ``{"mean_return": ..., "std_return": ..., "episodes": N}``.

    Raises:
        ConfigError: the model does not fit the environment's spaces (both named).
    """
    from modelzoo.models.rl import check_spaces

    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1; got {episodes}")
    num_envs = len(episode_seeds(seed, episodes))
    env = make_vector_env(
        env_id, num_envs, "sync", env_kwargs, max_episode_steps, render_first=gif_path is not None
    )
    try:
        check_spaces(model, env.single_observation_space, env.single_action_space)
        device = model_device(model)
        targets = np.array([(episodes + i) // num_envs for i in range(num_envs)])
        counts = np.zeros(num_envs, np.int64)
        returns: list[float] = []
        running = np.zeros(num_envs, np.float64)
        raw, _ = env.reset(seed=seed)
        frames = _first_frame(env) if gif_path is not None else None
        was_training = model.training
        model.eval()
        try:
            while (counts < targets).any():
                obs = raw if obs_rms is None else obs_rms.normalize(raw, clip_obs)
                actions = policy_actions(model, torch.as_tensor(obs, device=device), deterministic)
                raw, rewards, terminated, truncated, _ = env.step(
                    env_actions(actions, env.single_action_space)
                )
                running += rewards
                done = np.logical_or(terminated, truncated)
                if frames is not None:
                    if done[0]:  # copy 0 was reset: its first episode is complete
                        _write_gif(frames, Path(gif_path))
                        frames = None
                    else:
                        frames.append(env.envs[0].render())
                for i in np.flatnonzero(done):
                    if counts[i] < targets[i]:
                        returns.append(float(running[i]))
                        counts[i] += 1
                    running[i] = 0.0
        finally:
            model.train(was_training)
    finally:
        env.close()
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": len(returns),
    }


def _first_frame(env: Any) -> list[np.ndarray] | None:
    try:
        frame = env.envs[0].render()
    except Exception as err:  # rendering needs optional packages (pygame for classic control)
        _logger.warning("no GIF: the environment cannot render rgb_array frames (%s)", err)
        return None
    if not isinstance(frame, np.ndarray):
        _logger.warning("no GIF: the environment's render() gave %s, not an image", type(frame))
        return None
    return [frame]


def _write_gif(frames: list[np.ndarray], path: Path, fps: int = 30) -> None:
    try:
        from PIL import Image
    except ImportError:
        _logger.warning("no GIF: Pillow is not installed (pip install pillow)")
        return
    from modelzoo.utils.io import atomic_write

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    atomic_write(
        path,
        lambda f: images[0].save(
            f,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(1000 / fps),
            loop=0,
        ),
    )
    _logger.info("wrote %s (%d frames)", path, len(images))
