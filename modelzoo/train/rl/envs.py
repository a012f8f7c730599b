"""Environments for training: vectorized gymnasium envs, normalization, seeding, exact resume.

Vector environments use gymnasium 1.x's ``SAME_STEP`` autoreset: when a copy's
episode ends, ``step`` returns the first observation of its next episode and
puts the last observation of the finished one in ``infos["final_obs"]``. (The
default ``NEXT_STEP`` mode would instead spend the following ``step`` call on
the reset and ignore that call's action.) :class:`EnvDriver` turns this into
plain arrays: ``obs`` to act on next and ``final_obs``, the true successor of
every transition, which a truncated episode bootstraps from.

Exact resume. A checkpoint cannot pickle a live environment (checkpoints load
with ``weights_only=True``), and the inner state of an environment is private
to it. So the driver records every action it sends; resuming re-creates the
environments, resets them with the run's seed and replays the actions. Any
environment whose dynamics depend only on its seed and the actions taken (all
of gymnasium's, and most others) ends up in exactly the state it was in; the
driver checks the replayed observation against the saved one and warns when
they differ. Replaying costs about as long as stepping the environments did
(no network runs), e.g. a second or two for 100k CartPole steps.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from modelzoo.errors import CheckpointError, ConfigError, NonFiniteLossError
from modelzoo.train.rl.wrappers import WrapperSpec, apply_wrappers, is_atari_id, register_atari

__all__ = [
    "GymDataConfig",
    "EnvDriver",
    "RunningMeanStd",
    "StepResult",
    "check_env_id",
    "make_env",
    "make_vector_env",
]

_logger = logging.getLogger(__name__)

EPISODE_WINDOW = 100  # completed episodes averaged for mean_return / mean_length


@dataclass
class GymDataConfig:
    """The ``data`` section of an RL recipe: which environment, how many copies, what scaling."""

    env_id: str = "CartPole-v1"  # a registered gymnasium id ("module:Env-v0" imports module first)
    num_envs: int = 8  # copies stepped together; one iteration collects n_steps from each
    vectorization: Literal["sync", "async"] = "sync"  # async: one process per copy
    normalize_obs: bool = False  # running mean/std of observations (saved in checkpoints)
    normalize_reward: bool = False  # divide rewards by the running std of discounted returns
    clip_obs: float = 10.0  # normalized observations are clipped to +-clip_obs
    clip_reward: float = 10.0  # scaled rewards are clipped to +-clip_reward
    max_episode_steps: int | None = None  # override the env's time limit
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to gymnasium.make
    # Wrappers (modelzoo.train.rl.wrappers.WrapperSpec); part of every saved run and policy.
    atari: bool = False  # Atari pipeline: no-op reset, frame skip 4, 84x84 grey, FIRE on reset
    frame_stack: int = 1  # observations are the last N frames (Atari: 4)
    frame_skip: int = 1  # repeat each action N times, max-pooling the last two frames
    grayscale: bool = False  # RGB pixel observations become greyscale
    resize: int | None = None  # pixel observations resized to resize x resize
    terminal_on_life_loss: bool | None = None  # training episodes end with a life (null: atari)
    sign_rewards: bool | None = None  # training rewards clipped to -1/0/+1 (null: atari)

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise ConfigError(f"data.num_envs must be >= 1; got {self.num_envs}")
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"data.env_kwargs must be a mapping; got {self.env_kwargs!r}")
        self.wrappers()  # checks the wrapper settings

    def wrappers(self) -> WrapperSpec:
        """The environment wrappers this data section asks for."""
        return WrapperSpec(
            atari=self.atari,
            frame_stack=self.frame_stack,
            frame_skip=self.frame_skip,
            grayscale=self.grayscale,
            resize=self.resize,
            terminal_on_life_loss=self.terminal_on_life_loss,
            sign_rewards=self.sign_rewards,
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GymDataConfig:
        from modelzoo.config import from_mapping

        values = dict(values)
        name = values.pop("name", "gym")
        if name != "gym":
            raise ConfigError(
                f"RL recipes take their data from an environment: data.name must be 'gym'; "
                f"got {name!r}"
            )
        return from_mapping(cls, values, "data (gym)")

    def to_dict(self) -> dict[str, Any]:
        return {"name": "gym", **dataclasses.asdict(self)}


def check_env_id(env_id: str) -> None:
    """Raise ConfigError unless gymnasium knows ``env_id`` (its message names close ids)."""
    import gymnasium as gym

    if is_atari_id(env_id):
        register_atari()
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise ConfigError(
            f"data.env_id={env_id!r} is not a registered gymnasium environment: {err}"
        ) from err
    except ModuleNotFoundError as err:
        raise ConfigError(f"data.env_id={env_id!r} needs a module that is missing: {err}") from err


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    *,
    wrappers: WrapperSpec | None = None,
    training: bool = True,
) -> Any:
    """``gymnasium.make`` with a clear ConfigError for unknown ids, then the run's wrappers.

    Args:
        env_id: a registered gymnasium id (ale-py's Atari ids are registered on demand).
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_episode_steps: overrides the environment's time limit.
        render_mode: e.g. ``"rgb_array"``.
        wrappers: the run's wrappers (:class:`~modelzoo.train.rl.wrappers.WrapperSpec`).
        training: training copies (a lost life ends an Atari episode, rewards are
            clipped) or evaluation ones (full games, the game's own score).
    """
    import gymnasium as gym

    check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if wrappers is None:
        return env
    try:
        return apply_wrappers(env, wrappers, training)
    except BaseException:
        env.close()
        raise


def make_vector_env(
    env_id: str,
    num_envs: int = 1,
    vectorization: str = "sync",
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    render_first: bool = False,
    *,
    wrappers: WrapperSpec | None = None,
    training: bool = True,
) -> Any:
    """``num_envs`` copies of an environment behind one gymnasium vector env (SAME_STEP autoreset).

    Args:
        env_id: a registered gymnasium id.
        num_envs: number of copies.
        vectorization: ``"sync"`` (one process, a loop) or ``"async"`` (a process per copy).
        env_kwargs: keyword arguments for ``gymnasium.make``.
        max_episode_steps: overrides the environment's time limit.
        render_first: build the first copy with ``render_mode="rgb_array"`` (for GIFs).
        wrappers: the run's wrappers, applied to every copy.
        training: as in :func:`make_env`.
    """
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    check_env_id(env_id)
    if vectorization not in ("sync", "async"):
        raise ConfigError(f"data.vectorization must be sync or async; got {vectorization!r}")

    def factory(index: int) -> Any:
        render = "rgb_array" if render_first and index == 0 else None
        return lambda: make_env(
            env_id, env_kwargs, max_episode_steps, render, wrappers=wrappers, training=training
        )

    fns = [factory(i) for i in range(num_envs)]
    if vectorization == "async":
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


class RunningMeanStd:
    """Running mean and variance of a stream of batches (parallel-variance update, float64).

    Args:
        shape: shape of one sample.
        epsilon: initial pseudo-count, which keeps the first variance finite.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon

    def update(self, batch: np.ndarray) -> None:
        """Fold in a batch of samples, (B, *shape)."""
        batch = np.asarray(batch, np.float64)
        batch_mean, batch_var, n = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = np.asarray(self.mean + delta * n / total)
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var = np.asarray(m2 / total)
        self.count = total

    def normalize(self, x: np.ndarray, clip: float, epsilon: float = 1e-8) -> np.ndarray:
        out = (x - self.mean) / np.sqrt(self.var + epsilon)
        return np.clip(out, -clip, clip).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {
            "mean": torch.from_numpy(np.array(self.mean, np.float64)),
            "var": torch.from_numpy(np.array(self.var, np.float64)),
            "count": float(self.count),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].numpy().astype(np.float64)
        self.var = state["var"].numpy().astype(np.float64)
        self.count = float(state["count"])


def _game_scores(infos: dict[str, Any], done: np.ndarray) -> list[tuple[float, int]]:
    """(return, length) of every game that ended at this step, as the
    :class:`~modelzoo.train.rl.wrappers.GameScore` wrapper reports them (an episode
    that ended without its game, an Atari life lost in training, reports none)."""
    final = infos.get("final_info") if done.any() else None
    if not final or "game_return" not in final:
        return []
    mask = final.get("_game_return", np.ones(len(done), bool))
    return [
        (float(final["game_return"][i]), int(final["game_length"][i]))
        for i in np.flatnonzero(mask & done)
    ]


class StepResult(NamedTuple):
    """One step of every copy, as arrays with a leading (num_envs,) axis."""

    obs: np.ndarray  # what to act on next (a new episode's first observation where one ended)
    rewards: np.ndarray  # float32, scaled when normalize_reward is on
    terminated: np.ndarray  # bool: the episode ended in a terminal state (no bootstrap)
    truncated: np.ndarray  # bool: the episode was cut (time limit): bootstrap from final_obs
    final_obs: np.ndarray  # the successor of this step's transition, per copy
    raw_rewards: np.ndarray  # the environment's rewards, unscaled


class EnvDriver:
    """A vector environment plus the bookkeeping of a training run.

    Normalizes observations and scales rewards (running statistics), counts
    episodes and their returns, refuses non-finite observations or rewards,
    and records its actions so that a checkpoint can restore the environments
    exactly (see the module docstring).

    Args:
        vec_env: from :func:`make_vector_env` (SAME_STEP autoreset).
        config: the data section.
        gamma: discount of the returns whose std scales rewards.
        seed: the environments' seed; copy ``i`` is seeded ``seed + i``.
    """

    def __init__(self, vec_env: Any, config: GymDataConfig, gamma: float, seed: int) -> None:
        self.env = vec_env
        self.config = config
        self.gamma = gamma
        self.seed = seed
        self.num_envs = int(vec_env.num_envs)
        self.observation_space = vec_env.single_observation_space
        self.action_space = vec_env.single_action_space
        obs_dtype = self.observation_space.dtype
        self._normalize_obs = config.normalize_obs and np.issubdtype(obs_dtype, np.floating)
        if config.normalize_obs and not self._normalize_obs:
            _logger.warning(
                "data.normalize_obs ignored: observations of dtype %s are not normalized", obs_dtype
            )
        self._reports_games = config.wrappers().active  # GameScore is then the innermost wrapper
        self.obs_rms = RunningMeanStd(self.observation_space.shape)
        self.ret_rms = RunningMeanStd(())
        self._returns = np.zeros(self.num_envs, np.float64)  # discounted, for reward scaling
        self.steps = 0  # calls to step(); timesteps = steps * num_envs
        self.episodes = 0
        self.episode_return = np.zeros(self.num_envs, np.float64)
        self.episode_length = np.zeros(self.num_envs, np.int64)
        self.recent_returns: deque[float] = deque(maxlen=EPISODE_WINDOW)
        self.recent_lengths: deque[int] = deque(maxlen=EPISODE_WINDOW)
        self._actions: list[np.ndarray] = []
        self._raw_obs: np.ndarray | None = None
        self.obs: np.ndarray | None = None

    @property
    def timesteps(self) -> int:
        return self.steps * self.num_envs

    def reset(self) -> np.ndarray:
        """Seed and reset every copy; returns the first observations."""
        raw, _ = self.env.reset(seed=self.seed)
        self._check_finite(raw, "observation")
        self._raw_obs = raw
        if self._normalize_obs:
            self.obs_rms.update(raw)
        self.obs = self._normalize(raw)
        return self.obs

    def normalize_obs(self, raw: np.ndarray) -> np.ndarray:
        """Observations as the network sees them (statistics not updated)."""
        return self._normalize(raw)

    def _normalize(self, raw: np.ndarray) -> np.ndarray:
        if not self._normalize_obs:
            return raw
        return self.obs_rms.normalize(raw, self.config.clip_obs)

    def _check_finite(self, values: np.ndarray, what: str) -> None:
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            bad = np.flatnonzero(~np.isfinite(values.reshape(self.num_envs, -1)).all(axis=1))
            raise NonFiniteLossError(
                f"the rollout became non-finite at env step {self.timesteps} (vector step "
                f"{self.steps}, copy {int(bad[0])}): {self.config.env_id} returned a non-finite "
                f"{what}. Check the environment (or its wrappers) for NaN/inf."
            )

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every copy with ``actions`` (already clipped to the action space)."""
        self._actions.append(np.array(actions, copy=True))
        raw, rewards, terminated, truncated, infos = self.env.step(actions)
        self.steps += 1
        rewards = np.asarray(rewards, np.float64)
        self._check_finite(raw, "observation")
        self._check_finite(rewards, "reward")
        done = np.logical_or(terminated, truncated)
        raw_final = raw.copy()
        if done.any():
            final = infos["final_obs"]
            for i in np.flatnonzero(done):
                raw_final[i] = final[i]
            self._check_finite(raw_final, "final observation")
        self.episode_return += rewards
        self.episode_length += 1
        if not self._reports_games:
            for i in np.flatnonzero(done):
                self.episodes += 1
                self.recent_returns.append(float(self.episode_return[i]))
                self.recent_lengths.append(int(self.episode_length[i]))
        else:  # wrapped games: statistics of whole games, on the game's own score
            for game_return, game_length in _game_scores(infos, done):
                self.episodes += 1
                self.recent_returns.append(game_return)
                self.recent_lengths.append(game_length)
        self.episode_return[done] = 0.0
        self.episode_length[done] = 0
        scaled = rewards
        if self.config.normalize_reward:
            self._returns = self._returns * self.gamma + rewards
            self.ret_rms.update(self._returns)
            scaled = np.clip(
                rewards / np.sqrt(self.ret_rms.var + 1e-8),
                -self.config.clip_reward,
                self.config.clip_reward,
            )
            self._returns[done] = 0.0
        if self._normalize_obs:
            self.obs_rms.update(raw)
        self._raw_obs = raw
        self.obs = self._normalize(raw)
        final_obs = self._normalize(raw_final)
        return StepResult(
            self.obs,
            scaled.astype(np.float32),
            np.asarray(terminated, bool),
            np.asarray(truncated, bool),
            final_obs,
            rewards.astype(np.float32),
        )

    def episode_stats(self) -> dict[str, float]:
        """Mean return and length over the last completed episodes (empty before the first)."""
        if not self.recent_returns:
            return {}
        return {
            "mean_return": float(np.mean(self.recent_returns)),
            "mean_length": float(np.mean(self.recent_lengths)),
        }

    def close(self) -> None:
        self.env.close()

    # --- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.obs is None:
            raise CheckpointError("the environments were never reset; nothing to save")
        actions = (
            torch.from_numpy(np.stack(self._actions))
            if self._actions
            else torch.zeros((0, self.num_envs))
        )
        return {
            "env_id": self.config.env_id,
            "num_envs": self.num_envs,
            "seed": self.seed,
            "steps": self.steps,
            "actions": actions,  # (steps, num_envs, *action_shape): what replay sends again
            "raw_obs": torch.from_numpy(np.array(self._raw_obs)),
            "obs": torch.from_numpy(np.array(self.obs)),
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
            "returns": torch.from_numpy(self._returns.copy()),
            "episodes": self.episodes,
            "episode_return": torch.from_numpy(self.episode_return.copy()),
            "episode_length": torch.from_numpy(self.episode_length.copy()),
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the environments by replaying the recorded actions, then the statistics."""
        if state["env_id"] != self.config.env_id or state["num_envs"] != self.num_envs:
            raise CheckpointError(
                f"the checkpoint ran {state['num_envs']} copies of {state['env_id']}, but this run "
                f"has {self.num_envs} copies of {self.config.env_id}; resume with the run's "
                "own data section"
            )
        self.seed = int(state["seed"])
        raw, _ = self.env.reset(seed=self.seed)
        actions = state["actions"].numpy()
        for step_actions in actions:
            raw, *_ = self.env.step(step_actions)
        self._actions = list(actions)
        saved_raw = state["raw_obs"].numpy()
        if raw.shape != saved_raw.shape or not np.array_equal(raw, saved_raw):
            _logger.warning(
                "%s did not replay to its saved state (its dynamics depend on more than the seed "
                "and the actions); the resumed run goes on from the saved observations but will "
                "not match an uninterrupted run exactly",
                self.config.env_id,
            )
        self.steps = int(state["steps"])
        self._raw_obs = saved_raw
        self.obs = state["obs"].numpy()
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self._returns = state["returns"].numpy().copy()
        self.episodes = int(state["episodes"])
        self.episode_return = state["episode_return"].numpy().copy()
        self.episode_length = state["episode_length"].numpy().copy()
        self.recent_returns = deque(state["recent_returns"], maxlen=EPISODE_WINDOW)
        self.recent_lengths = deque(state["recent_lengths"], maxlen=EPISODE_WINDOW)
