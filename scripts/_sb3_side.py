"""The Stable-Baselines3 side of a side-by-side run (scripts/rl_applications.py).

SB3's SAC or PPO is built with a recipe's settings on the recipe's environment, wrapped
by modelzoo's own gymnasium wrappers so that both sides see the same observations, and
trained in turns with modelzoo's runner (:func:`train_interleaved`); the trained model
is then played by modelzoo's evaluation (:func:`sb3_policy`), on the same episodes.

The scripts import this module as ``_sb3_side`` (``scripts/`` is on ``sys.path``).
"""

from __future__ import annotations

import math
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["sb3_env", "sb3_model", "ppo_kwargs", "train_interleaved", "sb3_policy"]


def sb3_env(recipe: Any, num_envs: int, seed: int, training: bool) -> Any:
    """An SB3 VecEnv of the recipe's environment with modelzoo's own wrappers."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from modelzoo.train.rl.envs import GymDataConfig, make_env
    from modelzoo.train.rl.wrappers import GameScore

    data = GymDataConfig.from_dict(recipe.data)
    wrappers = data.wrappers()

    def make() -> Any:
        env = make_env(
            data.env_id,
            data.env_kwargs,
            data.max_episode_steps,
            wrappers=wrappers,
            training=training,
        )
        # GameScore reports every episode's own return for the learning curve (wrapped
        # environments have it innermost already).
        return env if wrappers.active else GameScore(env)

    env = DummyVecEnv([make for _ in range(num_envs)])
    env.seed(seed)
    if data.normalize_obs or data.normalize_reward:
        env = VecNormalize(env, norm_obs=data.normalize_obs, norm_reward=data.normalize_reward)
    return env


def sb3_model(algorithm: str, recipe: Any, env: Any, seed: int, total_steps: int) -> Any:
    """SB3's ``"sac"`` or ``"ppo"`` with the recipe's settings, for ``total_steps`` steps."""
    task, lr = recipe.task, recipe.train.lr
    if algorithm == "sac":
        from stable_baselines3 import SAC

        arch = list(recipe.model.get("net_arch", [256, 256]))
        return SAC(
            "MlpPolicy",
            env,
            learning_rate=lr,
            buffer_size=task["buffer_size"],
            learning_starts=task["learning_starts"],
            batch_size=task["batch_size"],
            tau=task["tau"],
            gamma=task["gamma"],
            train_freq=1,
            gradient_steps=1,
            ent_coef="auto",
            policy_kwargs=dict(net_arch=arch),
            seed=seed,
            device="cpu",
        )
    if algorithm != "ppo":
        raise ValueError(f"no SB3 side for {algorithm!r}; known: sac, ppo")
    from stable_baselines3 import PPO

    model: Any = None

    def remaining(_: float) -> float:
        # SB3 counts progress per learn() call; the interleaved turns need the run's own.
        done = model.num_timesteps if model is not None else 0
        return max(0.0, 1.0 - done / total_steps)

    policy = "CnnPolicy" if len(env.observation_space.shape) == 3 else "MlpPolicy"
    model = PPO(policy, env, seed=seed, device="cpu", **ppo_kwargs(recipe, remaining))
    return model


def ppo_kwargs(
    recipe: Any, remaining: Callable[[float], float] = lambda progress: progress
) -> dict[str, Any]:
    """SB3 ``PPO`` keywords equal to a modelzoo PPO recipe's settings.

    Annealed rates (``anneal_lr``, ``anneal_clip_range``) are scaled by
    ``remaining(progress_remaining)``, the fraction of the run still to go (by default
    SB3's own, right for a run trained in one ``learn()`` call).
    """
    task, lr, clip = recipe.task, recipe.train.lr, recipe.task["clip_range"]
    kwargs: dict[str, Any] = dict(
        n_steps=task["n_steps"],
        batch_size=task["minibatch_size"],
        n_epochs=task["n_epochs"],
        gamma=task["gamma"],
        gae_lambda=task["gae_lambda"],
        ent_coef=task["ent_coef"],
        vf_coef=task["vf_coef"],
        max_grad_norm=task["max_grad_norm"],
        normalize_advantage=task.get("normalize_advantage", True),
        learning_rate=(lambda p: lr * remaining(p)) if task.get("anneal_lr") else lr,
        clip_range=(lambda p: clip * remaining(p)) if task.get("anneal_clip_range") else clip,
    )
    arch = recipe.model.get("net_arch")
    if arch is not None:  # {pi: [...], vf: [...]}, or one list for both
        arch = dict(arch) if isinstance(arch, dict) else list(arch)
        kwargs["policy_kwargs"] = dict(net_arch=arch)
    return kwargs


def _game_curve() -> Any:
    """SB3 callback: mean of the last 100 full-game (unclipped) returns, as modelzoo logs."""
    from stable_baselines3.common.callbacks import BaseCallback

    class GameCurve(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.recent: deque[float] = deque(maxlen=100)
            self.rows: list[dict[str, Any]] = []

        def _on_step(self) -> bool:
            infos, dones = self.locals["infos"], self.locals["dones"]
            for info in infos:
                if "game_return" in info:
                    self.recent.append(float(info["game_return"]))
            if dones.any() and self.recent:
                self.rows.append(
                    {"timesteps": self.num_timesteps, "mean_return": float(np.mean(self.recent))}
                )
            return True

    return GameCurve()


def train_interleaved(
    recipe_for: Callable[[tuple[str, ...]], Any],
    algorithm: str,
    total_steps: int,
    turns: int,
    seed: int,
    run: Path,
    label: str,
) -> tuple[dict, dict, Any]:
    """modelzoo's and SB3's side in ``turns`` alternating turns.

    ``recipe_for(extra_overrides)`` gives the recipe; modelzoo's side trains it into
    ``run``, resuming from its checkpoint at each turn (bit-exact, so the run equals an
    uninterrupted one; resume time is not counted). Which side goes first alternates.

    Returns:
        (modelzoo's facts, SB3's facts with its learning-curve ``rows``, the SB3 model).
    """
    from modelzoo.train.rl.runner import RLRunner

    if run.exists():
        shutil.rmtree(run)
    recipe = recipe_for(())
    ours_wall = theirs_wall = 0.0
    env = sb3_env(recipe, int(recipe.data.get("num_envs", 1)), seed, training=True)
    sb3 = sb3_model(algorithm, recipe, env, seed, total_steps)
    curve = _game_curve()
    runner = RLRunner(recipe, None)
    per_iteration = runner.task_config.steps_per_iteration(runner.driver.num_envs)
    total_iterations = runner.total_iterations
    runner.close()
    timesteps = 0
    for turn in range(turns):
        stop = math.ceil((turn + 1) * total_iterations / turns)
        sides = ["modelzoo", "sb3"] if turn % 2 == 0 else ["sb3", "modelzoo"]
        for side in sides:
            if side == "modelzoo":
                runner = RLRunner(recipe_for((f"train.max_steps={stop}",)), run)
                last = run / "checkpoints/last.ckpt"
                runner.fit(resume_from=last if last.is_file() else None)
                ours_wall += runner.wall_time
                timesteps = runner.timesteps
                runner.close()
            else:
                started = time.perf_counter()
                sb3.learn(
                    stop * per_iteration - sb3.num_timesteps,
                    reset_num_timesteps=False,
                    callback=curve,
                    progress_bar=False,
                )
                theirs_wall += time.perf_counter() - started
        print(
            f"[{label}] turn {turn + 1}/{turns}: modelzoo {timesteps} steps in "
            f"{ours_wall:.0f} s, SB3 {sb3.num_timesteps} steps in {theirs_wall:.0f} s",
            flush=True,
        )
    env.close()
    # The run directory holds the final recipe (no max_steps) for `modelzoo play`.
    return (
        {"timesteps": timesteps, "wall_s": ours_wall},
        {"timesteps": int(sb3.num_timesteps), "wall_s": theirs_wall, "rows": curve.rows},
        sb3,
    )


class _SB3Actor(torch.nn.Module):
    """An SB3 model behind the interface modelzoo's evaluation plays (``act``)."""

    def __init__(self, model: Any, obs_space: Any, action_space: Any) -> None:
        super().__init__()
        from gymnasium import spaces

        self.sb3 = model
        self._anchor = torch.nn.Parameter(torch.zeros(()), requires_grad=False)
        self.obs_shape = tuple(obs_space.shape)
        continuous = isinstance(action_space, spaces.Box)
        self.continuous = continuous
        self.action_dim = int(action_space.shape[0]) if continuous else int(action_space.n)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> Any:
        from modelzoo.models.rl import ActionOutput

        action, _ = self.sb3.predict(obs.cpu().numpy(), deterministic=deterministic)
        action = torch.as_tensor(action)
        return ActionOutput(action, torch.zeros(len(action)), None)


def sb3_policy(model: Any, like: Any) -> Any:
    """The SB3 ``model`` as a policy modelzoo's ``play`` runs, on the environment of the
    modelzoo policy ``like`` (same id, keywords, time limit and wrappers)."""
    from modelzoo.train.rl.play import LoadedPolicy

    env = like.make_env()
    try:
        actor = _SB3Actor(model, env.observation_space, env.action_space)
    finally:
        env.close()
    return LoadedPolicy(
        model=actor,
        env_id=like.env_id,
        env_kwargs=like.env_kwargs,
        max_episode_steps=like.max_episode_steps,
        wrappers=like.wrappers,
    )
