"""SAC's and TD3's networks for bounded continuous actions: an actor and twin Q critics."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.layers import LayerType, get_act_layer
from modelzoo.models.rl.common import (
    as_obs_shape,
    flat_observations,
    layer_widths,
    mlp_layers,
    register_rl_model,
)
from modelzoo.models.rl.distributions import ActionOutput

__all__ = ["ContinuousCritic", "SACOutput", "SACPolicy", "TD3Output", "TD3Policy"]

_SAC_PAPER = (
    "Haarnoja et al., Soft Actor-Critic: Off-Policy Maximum Entropy Deep Reinforcement Learning "
    "with a Stochastic Actor, ICML 2018"
)
_TD3_PAPER = (
    "Fujimoto et al., Addressing Function Approximation Error in Actor-Critic Methods, ICML 2018"
)
_LOG_STD_MIN, _LOG_STD_MAX = -20.0, 2.0  # SB3's and CleanRL's bounds of the SAC actor's log std


class SACOutput(NamedTuple):
    """What ``sac_policy`` returns: the deterministic action and what the losses use."""

    action: torch.Tensor  # (B, action_dim): tanh of the Gaussian's mean, in the env's units
    log_std: torch.Tensor  # (B, action_dim): the Gaussian's log standard deviation
    q_values: torch.Tensor  # (B, n_critics): every critic at that action


class TD3Output(NamedTuple):
    """What ``td3_policy`` returns."""

    action: torch.Tensor  # (B, action_dim), in the env's units
    q_values: torch.Tensor  # (B, n_critics)


def _bounds(value: float | Sequence[float], action_dim: int, what: str) -> list[float]:
    # Checked as Python floats: the model may be built on the meta device, which has no values.
    try:
        bound = [float(v) for v in (value if isinstance(value, Sequence) else [value])]
    except (TypeError, ValueError):
        bound = []
    if len(bound) == 1:
        bound = bound * action_dim
    if len(bound) != action_dim or not all(math.isfinite(b) for b in bound):
        raise ConfigError(
            f"{what} must be one finite number or one per action dimension ({action_dim}); "
            f"got {value!r}"
        )
    return bound


class ContinuousCritic(nn.Module):
    """``n_critics`` independent Q(s, a) MLPs on ``[observation, action]``; returns (B, n).

    Args:
        obs_dim: size of the flattened observation.
        action_dim: size of the action.
        net_arch: hidden widths of each critic.
        act_layer: activation type or name.
        n_critics: independent estimates (2: clipped double Q-learning).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        net_arch: Sequence[int] = (256, 256),
        act_layer: LayerType = nn.ReLU,
        n_critics: int = 2,
    ) -> None:
        super().__init__()
        widths = layer_widths(net_arch, "critic_arch")
        act = get_act_layer(act_layer)
        self.q_networks = nn.ModuleList()
        for _ in range(n_critics):
            trunk = mlp_layers(obs_dim + action_dim, widths, act)
            trunk.append(nn.Linear(widths[-1] if widths else obs_dim + action_dim, 1))
            self.q_networks.append(trunk)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, actions.to(features.dtype)], dim=-1)  # (B, obs_dim + action_dim)
        return torch.cat([q(x) for q in self.q_networks], dim=-1)  # (B, n_critics)


class _ContinuousActorCritic(nn.Module):
    """An actor and twin critics for bounded continuous actions (SAC, TD3).

    The networks work in squashed units, [-1, 1] per dimension; ``to_env`` maps
    them to the action space's bounds, which are buffers of the model (part of its
    weights file), so a loaded policy acts in the units it was trained in. SAC and
    TD3 take the same keywords and differ only in the actor (``_build_actor``).

    Args:
        obs_dim: size (or shape) of an observation.
        action_dim: size of an action.
        action_low: lower bound of the action space (one number or one per dimension).
        action_high: upper bound.
        net_arch: hidden widths of the actor.
        critic_arch: hidden widths of each critic (default: ``net_arch``).
        act_layer: activation type or name.
        n_critics: number of critics.
    """

    continuous = True

    def __init__(
        self,
        obs_dim: int | Sequence[int] = 3,
        action_dim: int = 1,
        action_low: float | Sequence[float] = -1.0,
        action_high: float | Sequence[float] = 1.0,
        net_arch: Sequence[int] = (256, 256),
        critic_arch: Sequence[int] | None = None,
        act_layer: LayerType = nn.ReLU,
        n_critics: int = 2,
    ) -> None:
        super().__init__()
        widths = layer_widths(net_arch, "net_arch")
        critic = widths if critic_arch is None else critic_arch
        act = self._setup(
            obs_dim, action_dim, action_low, action_high, critic, act_layer, n_critics
        )
        self._build_actor(widths, act)

    def _build_actor(self, widths: list[int], act: type[nn.Module]) -> None:
        """Add the actor's layers (the subclass's part of the model)."""
        raise NotImplementedError

    def _setup(
        self,
        obs_dim: int | Sequence[int],
        action_dim: int,
        action_low: float | Sequence[float],
        action_high: float | Sequence[float],
        critic_arch: Sequence[int],
        act_layer: LayerType,
        n_critics: int,
    ) -> type[nn.Module]:
        self.obs_shape = as_obs_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        if operator.index(action_dim) < 1:
            raise ConfigError(f"action_dim must be >= 1; got {action_dim}")
        self.action_dim = action_dim
        low = _bounds(action_low, action_dim, "action_low")
        high = _bounds(action_high, action_dim, "action_high")
        if not all(h > lo for lo, h in zip(low, high)):
            raise ConfigError(f"action_high must exceed action_low; got {low} and {high}")
        scale = [(h - lo) / 2 for lo, h in zip(low, high)]
        bias = [(h + lo) / 2 for lo, h in zip(low, high)]
        self.register_buffer("action_scale", torch.tensor(scale, dtype=torch.float32))
        self.register_buffer("action_bias", torch.tensor(bias, dtype=torch.float32))
        act = get_act_layer(act_layer)
        self.critic = ContinuousCritic(self.obs_dim, action_dim, critic_arch, act, n_critics)
        return act

    def to_env(self, squashed: torch.Tensor) -> torch.Tensor:
        """Actions in [-1, 1] to the action space's units."""
        return squashed * self.action_scale + self.action_bias

    def from_env(self, action: torch.Tensor) -> torch.Tensor:
        """Actions in the action space's units to [-1, 1] (clipped)."""
        return ((action - self.action_bias) / self.action_scale).clamp(-1.0, 1.0)

    def q_values(self, obs: torch.Tensor, squashed: torch.Tensor) -> torch.Tensor:
        """Every critic's Q(s, a) for actions in squashed units, (B, n_critics)."""
        return self.critic(flat_observations(self, obs), squashed)

    def critic_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(f"critic.{n}", p) for n, p in self.critic.named_parameters()]

    def actor_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("critic.")]


class SACPolicy(_ContinuousActorCritic):
    """SAC's tanh-squashed Gaussian actor and twin Q critics (SB3's ``SACPolicy`` layout).

    ``act(obs)`` samples ``tanh(u)``, ``u ~ N(mu(s), sigma(s))``, and returns it in
    the action space's units with its log-probability (the change of variables of
    the tanh included); ``deterministic=True`` takes ``tanh(mu)``.

    Takes the keywords of the continuous actor-critic base: ``obs_dim``, ``action_dim``,
    ``action_low``, ``action_high``, ``net_arch`` (the actor's hidden widths),
    ``critic_arch``, ``act_layer`` and ``n_critics``.
    """

    def _build_actor(self, widths: list[int], act: type[nn.Module]) -> None:
        self.latent_pi = mlp_layers(self.obs_dim, widths, act)
        latent = widths[-1] if widths else self.obs_dim
        self.mu = nn.Linear(latent, self.action_dim)
        self.log_std = nn.Linear(latent, self.action_dim)

    def actor_outputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (clamped) log std of the Gaussian before the tanh, each (B, action_dim)."""
        latent = self.latent_pi(flat_observations(self, obs))
        return self.mu(latent), self.log_std(latent).clamp(_LOG_STD_MIN, _LOG_STD_MAX)

    def sample(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in squashed units, (B, action_dim), and their log-probabilities, (B,).

        The sample is reparameterized: gradients flow through it to the actor.
        """
        mean, log_std = self.actor_outputs(obs)
        std = log_std.exp()
        u = mean if deterministic else mean + std * torch.randn_like(mean)
        # log N(u) - sum log(1 - tanh(u)^2), the second term in a form that stays finite.
        log_prob = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> ActionOutput:
        """Actions in the action space's units, their log-probabilities; no value (None)."""
        squashed, log_prob = self.sample(obs, deterministic)
        return ActionOutput(self.to_env(squashed), log_prob, None)

    def forward(self, obs: torch.Tensor) -> SACOutput:
        mean, log_std = self.actor_outputs(obs)
        squashed = torch.tanh(mean)
        return SACOutput(self.to_env(squashed), log_std, self.q_values(obs, squashed))


class TD3Policy(_ContinuousActorCritic):
    """TD3's deterministic actor (tanh output) and twin Q critics (SB3's ``TD3Policy`` layout).

    Exploration noise is the algorithm's: ``act`` always returns the actor's action.

    Takes the keywords of the continuous actor-critic base: ``obs_dim``, ``action_dim``,
    ``action_low``, ``action_high``, ``net_arch`` (the actor's hidden widths),
    ``critic_arch``, ``act_layer`` and ``n_critics``.
    """

    def _build_actor(self, widths: list[int], act: type[nn.Module]) -> None:
        self.actor = mlp_layers(self.obs_dim, widths, act)
        self.actor.append(nn.Linear(widths[-1] if widths else self.obs_dim, self.action_dim))
        self.actor.append(nn.Tanh())

    def actor_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's action in squashed units, (B, action_dim)."""
        return self.actor(flat_observations(self, obs))

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> ActionOutput:
        """The actor's action in the action space's units (log-probability 0: no density)."""
        action = self.actor_action(obs)
        return ActionOutput(self.to_env(action), action.new_zeros(action.shape[0]), None)

    def forward(self, obs: torch.Tensor) -> TD3Output:
        squashed = self.actor_action(obs)
        return TD3Output(self.to_env(squashed), self.q_values(obs, squashed))


# --- registration ----------------------------------------------------------------------


@register_rl_model(task="rl_actor_critic", paper=_SAC_PAPER)
def sac_policy(
    *, obs_dim: int | Sequence[int] = 3, action_dim: int = 1, **kwargs: Any
) -> SACPolicy:
    """SAC's squashed-Gaussian actor and twin critics, 256-256 ReLU each (SB3/CleanRL)."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[256, 256])
    return SACPolicy(**dict(model_args, **kwargs))


@register_rl_model(task="rl_actor_critic", paper=_TD3_PAPER)
def td3_policy(
    *, obs_dim: int | Sequence[int] = 3, action_dim: int = 1, **kwargs: Any
) -> TD3Policy:
    """TD3's deterministic actor and twin critics, 256-256 ReLU each (CleanRL)."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[256, 256])
    return TD3Policy(**dict(model_args, **kwargs))
