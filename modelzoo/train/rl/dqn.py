"""Deep Q-Networks (Mnih et al., "Human-level control through deep reinforcement
learning", Nature 2015), with the double-Q target of van Hasselt et al. ("Deep
Reinforcement Learning with Double Q-learning", AAAI 2016) as an option; the
dueling architecture is the model's (``q_network`` with ``dueling: true``).

Each iteration steps the environments ``train_freq`` times with an
epsilon-greedy policy (uniformly random actions until ``learning_starts``),
storing the transitions in a replay buffer, then takes ``gradient_steps``
gradient steps of the Huber loss on sampled minibatches. The target network is
copied from the online one (or moved towards it by ``tau``) every
``target_update_interval`` environment steps. Counting follows SB3:
``train_freq`` counts calls to the vector env's ``step``, the other settings
count environment steps summed over the copies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from modelzoo.errors import ConfigError
from modelzoo.train.rl.base import Algorithm, ReplayConfig, env_actions, torch_dtype
from modelzoo.train.rl.buffers import ReplayBuffer

__all__ = ["DQN", "DQNConfig", "linear_schedule"]


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """``start`` moving linearly to ``end`` over the first ``fraction`` of the run, then ``end``."""
    if fraction <= 0:
        return end
    return start + min(1.0, progress / fraction) * (end - start)


@dataclass
class DQNConfig(ReplayConfig):
    """The ``task`` section of a DQN recipe (defaults: SB3's DQN, with a smaller buffer)."""

    name: ClassVar[str] = "dqn"
    positive: ClassVar[tuple[str, ...]] = (
        "total_timesteps",
        "buffer_size",
        "batch_size",
        "train_freq",
        "target_update_interval",
    )

    buffer_size: int = 100_000  # transitions kept in the replay buffer
    learning_starts: int = 1000  # environment steps of random actions before learning
    batch_size: int = 32  # transitions per gradient step
    train_freq: int = 4  # vector-env steps per iteration
    gradient_steps: int = 1  # gradient steps per iteration
    target_update_interval: int = 10_000  # environment steps between target updates
    tau: float = 1.0  # target update: 1 copies, < 1 is a Polyak average
    exploration_fraction: float = 0.1  # share of total_timesteps over which epsilon decays
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.05
    double_q: bool = False  # pick the next action with the online network (double DQN)
    max_grad_norm: float | None = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("exploration_initial_eps", "exploration_final_eps"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"task.{key} must be in [0, 1]; got {getattr(self, key)}")


class DQN(Algorithm):
    """DQN on a Q-network (``q_network``, or ``nature_cnn_q_network`` on stacked frames):
    replay, target network, Huber loss, epsilon-greedy; the Nature DQN's Atari settings are
    configs/rl/dqn_pong.yaml and dqn_breakout.yaml."""

    config_class = DQNConfig
    model_kinds = ("q_network", "nature_cnn_q_network")
    config: DQNConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        obs_space = self.driver.observation_space
        self.target = copy.deepcopy(self.model)
        self.target.requires_grad_(False)
        self.replay = ReplayBuffer(
            self.config.buffer_size,
            tuple(obs_space.shape),
            torch_dtype(obs_space.dtype),
        )
        self.num_calls = 0  # vector-env steps, for the target update period

    def exploration_rate(self) -> float:
        cfg = self.config
        return linear_schedule(
            cfg.exploration_initial_eps,
            cfg.exploration_final_eps,
            cfg.exploration_fraction,
            self.driver.timesteps / cfg.total_timesteps,
        )

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.config.tau
        for target, online in zip(
            self.target.state_dict().values(), self.model.state_dict().values()
        ):
            if target.is_floating_point():
                target.lerp_(online, tau)
            else:
                target.copy_(online)

    @torch.no_grad()
    def collect(self, step: int) -> None:
        cfg, driver = self.config, self.driver
        period = max(cfg.target_update_interval // self.num_envs, 1)
        for _ in range(cfg.train_freq):
            obs = driver.obs
            if driver.timesteps < cfg.learning_starts:
                actions = torch.randint(0, self.model.action_dim, (self.num_envs,))
            else:
                with self.precision.autocast():
                    actions = self.model.act(
                        torch.as_tensor(obs, device=self.device), self.exploration_rate()
                    )
            result = driver.step(env_actions(actions, driver.action_space))
            self.replay.add(obs, actions.cpu(), result.rewards, result.final_obs, result.terminated)
            self.num_calls += 1
            if self.num_calls % period == 0:
                self._update_target()

    def iterate(self, step: int) -> dict[str, float]:
        cfg = self.config
        self.model.train()
        self.collect(step)
        metrics: dict[str, float] = {"exploration_rate": self.exploration_rate()}
        metrics["lr"] = self.update_lr()
        if self.driver.timesteps <= cfg.learning_starts or cfg.gradient_steps == 0:
            return metrics
        losses, q_means = [], []
        for _ in range(cfg.gradient_steps):
            batch = self.replay.sample(cfg.batch_size, self.device)
            with torch.no_grad(), self.precision.autocast():
                next_q = self.target(batch.next_obs)  # (B, action_dim)
                if cfg.double_q:
                    best = self.model(batch.next_obs).argmax(dim=1, keepdim=True)
                    next_value = next_q.gather(1, best).squeeze(1)
                else:
                    next_value = next_q.max(dim=1).values
            target_q = batch.rewards + cfg.gamma * (~batch.terminated) * next_value.float()
            with self.precision.autocast():
                q = self.model(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
            loss = F.smooth_l1_loss(q.float(), target_q)
            self.optimize(loss, step, "DQN loss")
            losses.append(loss.item())
            q_means.append(float(q.detach().float().mean()))
        metrics["loss"] = sum(losses) / len(losses)
        metrics["q_values"] = sum(q_means) / len(q_means)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.state_dict(),
            "replay": self.replay.state_dict(),
            "num_calls": self.num_calls,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.target.load_state_dict(state["target"])
        self.replay.load_state_dict(state["replay"])
        self.num_calls = int(state["num_calls"])
