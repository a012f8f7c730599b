"""Rollout storage with generalized advantage estimation, and the replay buffer of DQN.

Termination and truncation are kept apart. A terminated episode has no future:
its last transition does not bootstrap. A truncated one (a time limit) was cut
short of its future: its last transition bootstraps from the value of the final
observation, which gymnasium hands back separately (``final_obs``). Either way
the advantage recursion stops at the episode boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from modelzoo.errors import CheckpointError, ConfigError

__all__ = ["compute_gae", "RolloutBuffer", "RolloutBatch", "ReplayBuffer", "ReplayBatch"]


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimates (Schulman et al., 2016) and the returns they imply.

    All inputs are (T, N): T steps of N environments, in time order.

    Args:
        rewards: reward of each transition.
        values: V(s_t) of the observation acted on.
        next_values: V of the transition's successor: the next observation, or the
            final observation of an episode that ended at this step (only used when
            the episode was truncated, not terminated).
        terminated: the episode ended in a terminal state at this step.
        truncated: the episode was cut at this step (e.g. a time limit).
        gamma: discount factor.
        gae_lambda: bias/variance trade-off; 1 gives Monte-Carlo returns, 0 one-step TD.

    Returns:
        ``(advantages, returns)``, both (T, N); ``returns = advantages + values``.
    """
    terminated = terminated.to(values.dtype)
    episode_end = torch.logical_or(terminated.bool(), truncated.bool()).to(values.dtype)
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values  # (T, N)
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(values.shape[0])):
        running = deltas[t] + gamma * gae_lambda * (1.0 - episode_end[t]) * running
        advantages[t] = running
    return advantages, advantages + values


class RolloutBatch(NamedTuple):
    """A minibatch of flattened rollout samples."""

    obs: torch.Tensor
    actions: torch.Tensor
    old_log_prob: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutBuffer:
    """One iteration's transitions of N environments for T steps, for on-policy updates.

    Args:
        n_steps: steps per environment per rollout (T).
        num_envs: environments (N).
        obs_shape: shape of one observation.
        obs_dtype: torch dtype of observations (uint8 frames stay uint8).
        action_shape: ``()`` for discrete actions, ``(action_dim,)`` for continuous.
        action_dtype: int64 for discrete actions, float32 for continuous.
        device: where the tensors live.
    """

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype,
        action_shape: tuple[int, ...],
        action_dtype: torch.dtype,
        device: torch.device | str = "cpu",
    ) -> None:
        self.n_steps, self.num_envs, self.device = n_steps, num_envs, torch.device(device)
        size = (n_steps, num_envs)

        def zeros(shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(size + shape, dtype=dtype, device=self.device)

        self.obs = zeros(obs_shape, obs_dtype)
        self.actions = zeros(action_shape, action_dtype)
        self.log_probs = zeros()
        self.values = zeros()
        self.rewards = zeros()
        self.terminated = zeros(dtype=torch.bool)
        self.truncated = zeros(dtype=torch.bool)
        self.final_values = zeros()  # V(final_obs) where an episode was truncated, else 0
        self.advantages = zeros()
        self.returns = zeros()
        self.pos = 0

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def add(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        final_values: torch.Tensor,
    ) -> None:
        """Store one step of every environment (each argument has a leading (N,) axis)."""
        if self.full:
            raise RuntimeError("the rollout buffer is full; call reset() after the update")
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = final_values
        self.pos += 1

    def compute_returns_and_advantages(
        self, last_values: torch.Tensor, gamma: float, gae_lambda: float
    ) -> None:
        """GAE over the full buffer; ``last_values`` is V of the observations after it, (N,)."""
        if not self.full:
            raise RuntimeError(f"the rollout holds {self.pos} of {self.n_steps} steps")
        following = torch.cat([self.values[1:], last_values.unsqueeze(0)])  # (T, N)
        next_values = torch.where(self.truncated, self.final_values, following)
        self.advantages, self.returns = compute_gae(
            self.rewards,
            self.values,
            next_values,
            self.terminated,
            self.truncated,
            gamma,
            gae_lambda,
        )

    def reset(self) -> None:
        self.pos = 0

    def batches(self, batch_size: int | None = None) -> Iterator[RolloutBatch]:
        """Shuffled minibatches over all T*N samples (torch's global RNG: part of a checkpoint).

        ``batch_size=None`` yields the whole rollout once, in order. A last partial
        batch is kept.
        """
        total = self.n_steps * self.num_envs
        flat = RolloutBatch(
            self.obs.flatten(0, 1),  # (T*N, *obs_shape)
            self.actions.flatten(0, 1),
            self.log_probs.flatten(),
            self.values.flatten(),
            self.advantages.flatten(),
            self.returns.flatten(),
        )
        if batch_size is None:
            yield flat
            return
        order = torch.randperm(total).to(self.device)
        for start in range(0, total, batch_size):
            idx = order[start : start + batch_size]
            yield RolloutBatch(*(x[idx] for x in flat))


class ReplayBatch(NamedTuple):
    """Transitions sampled from a replay buffer."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """A ring of the last ``capacity`` transitions, sampled uniformly.

    ``next_obs`` is each transition's true successor (the final observation where an
    episode ended) and ``terminated`` says whether to bootstrap from it, so truncated
    episodes keep their future value.

    Args:
        capacity: transitions kept; the oldest are overwritten.
        obs_shape: shape of one observation.
        obs_dtype: torch dtype of stored observations.
        action_shape: ``()`` for discrete actions.
        action_dtype: dtype of stored actions.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: torch.dtype = torch.float32,
        action_shape: tuple[int, ...] = (),
        action_dtype: torch.dtype = torch.int64,
    ) -> None:
        if capacity < 1:
            raise ConfigError(f"task.buffer_size must be >= 1; got {capacity}")
        self.capacity = capacity
        self.obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = torch.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = torch.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.pos = 0  # where the next transition goes
        self.size = 0  # transitions stored

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        next_obs: Any,
        terminated: Any,
    ) -> None:
        """Store a batch of transitions (one per environment), each with a leading (N,) axis."""
        obs = torch.as_tensor(np.asarray(obs))
        n = obs.shape[0]
        idx = (self.pos + torch.arange(n)) % self.capacity
        self.obs[idx] = obs.to(self.obs.dtype)
        self.next_obs[idx] = torch.as_tensor(np.asarray(next_obs)).to(self.obs.dtype)
        self.actions[idx] = torch.as_tensor(np.asarray(actions)).to(self.actions.dtype)
        self.rewards[idx] = torch.as_tensor(np.asarray(rewards), dtype=torch.float32)
        self.terminated[idx] = torch.as_tensor(np.asarray(terminated), dtype=torch.bool)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, device: torch.device | str = "cpu") -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly with replacement (torch's global RNG)."""
        if self.size == 0:
            raise RuntimeError("the replay buffer is empty; collect transitions before sampling")
        idx = torch.randint(0, self.size, (batch_size,))
        return ReplayBatch(
            *(
                x[idx].to(device)
                for x in (self.obs, self.actions, self.rewards, self.next_obs, self.terminated)
            )
        )

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {
            "capacity": self.capacity,
            "pos": self.pos,
            "size": n,
            "obs": self.obs[:n].clone(),
            "next_obs": self.next_obs[:n].clone(),
            "actions": self.actions[:n].clone(),
            "rewards": self.rewards[:n].clone(),
            "terminated": self.terminated[:n].clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise CheckpointError(
                f"the checkpoint's replay buffer holds {state['capacity']} transitions, this "
                f"run's {self.capacity}; resume with the run's own task.buffer_size"
            )
        n = int(state["size"])
        for key in ("obs", "next_obs", "actions", "rewards", "terminated"):
            getattr(self, key)[:n] = state[key]
        self.pos, self.size = int(state["pos"]), n
