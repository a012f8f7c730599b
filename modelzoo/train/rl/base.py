"""What every RL algorithm shares: its settings, the optimizer step, on-policy rollouts.

An algorithm owns the model, its optimizer and whatever it keeps between
iterations (a replay buffer, a target network). The runner calls
``iterate(step)`` once per iteration (collect, then update) and handles logs,
checkpoints and evaluation.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from modelzoo.config import TrainConfig, from_mapping
from modelzoo.errors import ConfigError, NonFiniteLossError
from modelzoo.train.optim import build_optimizer
from modelzoo.train.precision import Precision
from modelzoo.train.rl.buffers import ReplayBuffer, RolloutBuffer
from modelzoo.train.rl.envs import EnvDriver, GymDataConfig

__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "OffPolicyActorCritic",
    "OffPolicyConfig",
    "OnPolicyAlgorithm",
    "OnPolicyConfig",
    "ReplayConfig",
    "env_actions",
    "torch_dtype",
]

T = TypeVar("T")


# A dry run's episodes end here at the latest (a CarRacing or Atari game takes
# thousands of steps; a dry run only checks that the recipe runs).
DRY_RUN_EPISODE_STEPS = 64


@dataclass
class AlgorithmConfig:
    """Settings every algorithm takes in the recipe's ``task`` section."""

    name: ClassVar[str] = ""
    positive: ClassVar[tuple[str, ...]] = ("total_timesteps",)

    total_timesteps: int = 100_000  # environment steps in all; sets the schedules' length
    gamma: float = 0.99  # discount factor
    max_grad_norm: float | None = 0.5  # clip the global gradient norm (null: no clipping)
    anneal_lr: bool = False  # decay train.lr linearly to 0 over total_timesteps
    eval_episodes: int = 10  # episodes of the end-of-run / periodic / `evaluate` evaluation
    eval_seed: int | None = None  # reported returns (null: train.seed + 20000; best.ckpt: +10000..)
    eval_deterministic: bool = True  # act with the most likely action when evaluating
    eval_gif: bool = False  # `evaluate` also writes eval.gif (needs rgb_array rendering)

    def __post_init__(self) -> None:
        for key in self.positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"task.{key} must be >= 1; got {getattr(self, key)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"task.gamma must be in [0, 1]; got {self.gamma}")
        if self.eval_episodes < 0:
            raise ConfigError(f"task.eval_episodes must be >= 0; got {self.eval_episodes}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AlgorithmConfig:
        values = dict(values)
        values.pop("name", None)
        return from_mapping(cls, values, f"task ({cls.name})")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}

    def steps_per_iteration(self, num_envs: int) -> int:
        raise NotImplementedError

    def shrink_for_dry_run(self, data: GymDataConfig) -> None:
        """Tiny settings that still run every code path (two iterations; evaluation
        episodes cut at ``DRY_RUN_EPISODE_STEPS`` steps, as the env's time limit would)."""
        self.eval_episodes = min(self.eval_episodes, 2)
        data.max_episode_steps = min(
            data.max_episode_steps or DRY_RUN_EPISODE_STEPS, DRY_RUN_EPISODE_STEPS
        )


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a numpy dtype (e.g. an observation space's)."""
    return torch.from_numpy(np.zeros((), dtype)).dtype


def env_actions(actions: torch.Tensor, action_space: Any) -> np.ndarray:
    """Actions as the environment takes them: int64 indices, or floats clipped to the bounds."""
    from gymnasium import spaces

    if isinstance(action_space, spaces.Box):
        out = actions.detach().float().cpu().numpy()  # numpy has no bfloat16
        return np.clip(out, action_space.low, action_space.high).astype(action_space.dtype)
    return actions.detach().cpu().numpy().astype(np.int64)


class Algorithm:
    """Base class: the model, its optimizer and the optimizer step.

    Args:
        model: the network (already on ``device`` and in its precision).
        driver: the training environments.
        config: the algorithm's settings.
        train_config: the recipe's ``train`` section (optimizer, lr, precision).
        device: where the model runs.
        precision: autocast and loss scaling.
    """

    config_class: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    model_kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model: nn.Module,
        driver: EnvDriver,
        config: AlgorithmConfig,
        train_config: TrainConfig,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.model = model
        self.driver = driver
        self.config = config
        self.device = device
        self.precision = precision
        self.base_lr = train_config.lr
        self.optimizer = build_optimizer(model.named_parameters(), train_config)
        self.num_envs = driver.num_envs

    @property
    def iterations(self) -> int:
        """Iterations that make ``total_timesteps``."""
        return math.ceil(
            self.config.total_timesteps / self.config.steps_per_iteration(self.num_envs)
        )

    def progress_remaining(self) -> float:
        """1 at the start of the run, 0 once ``total_timesteps`` are collected."""
        return max(0.0, 1.0 - self.driver.timesteps / self.config.total_timesteps)

    def update_lr(self) -> float:
        lr = self.base_lr * (self.progress_remaining() if self.config.anneal_lr else 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def iterate(self, step: int) -> dict[str, float]:
        """Collect one iteration's experience and learn from it; returns metrics to log."""
        raise NotImplementedError

    def optimize(self, loss: torch.Tensor, step: int, what: str) -> None:
        """One optimizer step on ``loss``; a non-finite loss stops the run."""
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the {what} became non-finite at step {step} (env step {self.driver.timesteps}). "
                "Lower train.lr, set task.max_grad_norm, or normalize observations/rewards "
                "(data.normalize_obs, data.normalize_reward)."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        if self.config.max_grad_norm is not None:
            self.precision.unscale(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.precision.step(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        """What the algorithm keeps between iterations, beyond model and optimizer."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


@dataclass
class OnPolicyConfig(AlgorithmConfig):
    """Settings shared by PPO and A2C."""

    positive: ClassVar[tuple[str, ...]] = ("total_timesteps", "n_steps")

    n_steps: int = 128  # steps per environment per rollout
    gae_lambda: float = 0.95  # GAE lambda (1: Monte-Carlo advantages)
    ent_coef: float = 0.0  # weight of the entropy bonus
    vf_coef: float = 0.5  # weight of the value loss
    normalize_advantage: bool = True  # standardize advantages per minibatch

    def steps_per_iteration(self, num_envs: int) -> int:
        return self.n_steps * num_envs

    def shrink_for_dry_run(self, data: GymDataConfig) -> None:
        super().shrink_for_dry_run(data)
        data.num_envs = min(data.num_envs, 2)
        self.n_steps = min(self.n_steps, 16)
        self.total_timesteps = 2 * self.steps_per_iteration(data.num_envs)


class OnPolicyAlgorithm(Algorithm):
    """Rollouts of an actor-critic into a :class:`RolloutBuffer`, with GAE."""

    model_kinds = ("actor_critic", "nature_cnn_actor_critic")
    config: OnPolicyConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from gymnasium import spaces

        obs_space, action_space = self.driver.observation_space, self.driver.action_space
        continuous = isinstance(action_space, spaces.Box)
        self.buffer = RolloutBuffer(
            self.config.n_steps,
            self.num_envs,
            tuple(obs_space.shape),
            torch_dtype(obs_space.dtype),
            tuple(action_space.shape) if continuous else (),
            torch.float32 if continuous else torch.int64,
            self.device,
        )

    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, device=self.device)

    def _check_policy(self, step: int, **tensors: torch.Tensor) -> None:
        for what, value in tensors.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(
                    f"the rollout became non-finite at env step {self.driver.timesteps} "
                    f"(step {step}): the policy's {what} hold NaN/inf. The parameters have "
                    "diverged; lower train.lr or set task.max_grad_norm."
                )

    @torch.no_grad()
    def collect_rollout(self, step: int) -> None:
        """Fill the buffer with ``n_steps`` of every environment, then compute GAE."""
        model, driver, buffer = self.model, self.driver, self.buffer
        buffer.reset()
        for _ in range(self.config.n_steps):
            obs = self._obs(driver.obs)
            with self.precision.autocast():
                dist, values = model(obs)
                actions = dist.sample()
                log_probs = dist.log_prob(actions)
            values, log_probs = values.float(), log_probs.float()
            self._check_policy(step, values=values, log_probs=log_probs)
            result = driver.step(env_actions(actions, driver.action_space))
            final_values = torch.zeros(self.num_envs, device=self.device)
            bootstrap = np.flatnonzero(result.truncated & ~result.terminated)
            if bootstrap.size:  # time limit: the episode had a future worth V(final_obs)
                with self.precision.autocast():
                    tail = model.predict_values(self._obs(result.final_obs[bootstrap]))
                final_values[torch.as_tensor(bootstrap, device=self.device)] = tail.float()
            buffer.add(
                obs,
                actions,
                log_probs,
                values,
                torch.as_tensor(result.rewards, device=self.device),
                torch.as_tensor(result.terminated, device=self.device),
                torch.as_tensor(result.truncated, device=self.device),
                final_values,
            )
        with self.precision.autocast():
            last_values = model.predict_values(self._obs(driver.obs)).float()
        buffer.compute_returns_and_advantages(
            last_values, self.config.gamma, self.config.gae_lambda
        )

    def explained_variance(self) -> float:
        """1 - Var(returns - values) / Var(returns): how much of the return the critic explains."""
        returns, values = self.buffer.returns.flatten(), self.buffer.values.flatten()
        var = returns.var()
        return float("nan") if var == 0 else float(1 - (returns - values).var() / var)

    def iterate(self, step: int) -> dict[str, float]:
        self.model.train()
        self.collect_rollout(step)
        lr = self.update_lr()  # after the rollout, as SB3: the last update uses a rate near 0
        metrics = self.update(step)
        metrics["explained_variance"] = self.explained_variance()
        metrics["lr"] = lr
        return metrics

    def update(self, step: int) -> dict[str, float]:
        raise NotImplementedError


@dataclass
class ReplayConfig(AlgorithmConfig):
    """The checks and dry-run sizes of every algorithm that learns from a replay buffer.

    Subclasses (DQN's, SAC's and TD3's configs) declare the fields with their own
    defaults and order: ``buffer_size``, ``learning_starts``, ``batch_size``,
    ``train_freq`` (vector-env steps per iteration), ``gradient_steps`` and ``tau``.
    """

    # No fields here: a dataclass field declared in a base keeps the base's position, and
    # each subclass keeps its own order (which is the order of its saved config.yaml).

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"task.tau must be in (0, 1]; got {self.tau}")
        if self.gradient_steps < 0 or self.learning_starts < 0:
            raise ConfigError("task.gradient_steps and task.learning_starts must be >= 0")

    def steps_per_iteration(self, num_envs: int) -> int:
        return self.train_freq * num_envs

    def shrink_for_dry_run(self, data: GymDataConfig) -> None:
        super().shrink_for_dry_run(data)
        data.num_envs = min(data.num_envs, 2)
        self.train_freq = min(self.train_freq, 8)
        self.learning_starts = min(self.learning_starts, self.train_freq * data.num_envs)
        self.batch_size = min(self.batch_size, 16)
        self.gradient_steps = min(max(self.gradient_steps, 1), 2)
        self.buffer_size = min(self.buffer_size, 1000)
        self.total_timesteps = 2 * self.steps_per_iteration(data.num_envs)


@dataclass
class OffPolicyConfig(ReplayConfig):
    """Settings shared by SAC and TD3 (defaults: SB3's, with a 1M-transition replay)."""

    positive: ClassVar[tuple[str, ...]] = (
        "total_timesteps",
        "buffer_size",
        "batch_size",
        "train_freq",
    )

    buffer_size: int = 1_000_000  # transitions kept in the replay buffer
    learning_starts: int = 100  # environment steps of uniformly random actions before learning
    batch_size: int = 256  # transitions per gradient step
    tau: float = 0.005  # Polyak averaging of the target networks
    train_freq: int = 1  # vector-env steps per iteration
    gradient_steps: int = 1  # gradient steps per iteration
    max_grad_norm: float | None = None  # SAC and TD3 do not clip gradients


class OffPolicyActorCritic(Algorithm):
    """Replay, target critics and separate actor/critic optimizers for SAC and TD3.

    The model (``sac_policy`` or ``td3_policy``) works in squashed action units,
    [-1, 1]; the replay buffer stores those, and ``model.to_env`` maps them to the
    action space. ``self.optimizer`` (the runner's "main" optimizer) updates the
    critics; the actor's optimizer and the target networks are the algorithm's own
    state, saved in every checkpoint.
    """

    config: OffPolicyConfig

    def __init__(
        self,
        model: nn.Module,
        driver: EnvDriver,
        config: OffPolicyConfig,
        train_config: TrainConfig,
        device: torch.device,
        precision: Precision,
    ) -> None:
        super().__init__(model, driver, config, train_config, device, precision)
        self.optimizer = build_optimizer(model.critic_parameters(), train_config)
        self.actor_optimizer = build_optimizer(model.actor_parameters(), train_config)
        self.target = copy.deepcopy(model)
        self.target.requires_grad_(False)
        obs_space = driver.observation_space
        self.replay = ReplayBuffer(
            config.buffer_size,
            tuple(obs_space.shape),
            torch_dtype(obs_space.dtype),
            (model.action_dim,),
            torch.float32,
        )
        self.num_updates = 0  # gradient steps taken (TD3's policy delay counts them)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.optimizer, self.actor_optimizer]

    def update_lr(self) -> float:
        lr = self.base_lr * (self.progress_remaining() if self.config.anneal_lr else 1.0)
        for optimizer in self.optimizers():
            for group in optimizer.param_groups:
                group["lr"] = lr
        return lr

    def step_optimizer(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, step: int, what: str
    ) -> None:
        """One step of ``optimizer`` on ``loss``; a non-finite loss stops the run."""
        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the {what} became non-finite at step {step} (env step {self.driver.timesteps}). "
                "Lower train.lr, or normalize observations (data.normalize_obs)."
            )
        optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        if self.config.max_grad_norm is not None:
            self.precision.unscale(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        self.precision.step(optimizer)

    @torch.no_grad()
    def polyak(self, target: nn.Module, online: nn.Module) -> None:
        """Move ``target``'s parameters towards ``online``'s by ``tau``."""
        for t, o in zip(target.parameters(), online.parameters()):
            t.lerp_(o, self.config.tau)

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """Exploratory actions in squashed units for a batch of observations."""
        raise NotImplementedError

    @torch.no_grad()
    def collect(self) -> None:
        """``train_freq`` steps of every copy into the replay buffer."""
        cfg, driver, model = self.config, self.driver, self.model
        for _ in range(cfg.train_freq):
            obs = driver.obs
            if driver.timesteps < cfg.learning_starts:
                squashed = torch.rand(self.num_envs, model.action_dim) * 2 - 1
            else:
                with self.precision.autocast():
                    squashed = self.explore(torch.as_tensor(obs, device=self.device)).float()
            actions = model.to_env(squashed.to(self.device))
            result = driver.step(env_actions(actions, driver.action_space))
            self.replay.add(
                obs, squashed.cpu(), result.rewards, result.final_obs, result.terminated
            )

    def train_step(self, step: int) -> dict[str, float]:
        """One gradient step on a sampled minibatch; returns its metrics."""
        raise NotImplementedError

    def iterate(self, step: int) -> dict[str, float]:
        cfg = self.config
        self.model.train()
        self.collect()
        metrics: dict[str, float] = {"lr": self.update_lr()}
        if self.driver.timesteps <= cfg.learning_starts or cfg.gradient_steps == 0:
            return metrics
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(cfg.gradient_steps):
            for key, value in self.train_step(step).items():
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + 1
            self.num_updates += 1
        metrics.update({k: v / counts[k] for k, v in sums.items()})
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "replay": self.replay.state_dict(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.replay.load_state_dict(state["replay"])
        self.num_updates = int(state["num_updates"])
