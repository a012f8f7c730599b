"""Policies, value functions, actor-critics and Q-networks for PPO, A2C and DQN: MLPs on
flat observations and the Nature-DQN trunk on stacked frames."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from modelzoo.errors import ConfigError
from modelzoo.layers import LayerType, check_image, get_act_layer, param_dtype
from modelzoo.layers.helpers import model_name
from modelzoo.models.rl.common import (
    HIDDEN_GAIN,
    POLICY_GAIN,
    VALUE_GAIN,
    MlpExtractor,
    NatureCNN,
    PolicyHead,
    as_obs_shape,
    flat_observations,
    layer_widths,
    mlp_layers,
    orthogonal_init,
    q_output,
    register_rl_model,
    scale_frames,
    value_output,
)
from modelzoo.models.rl.distributions import EvaluationOutput, PolicyOutput, action_distribution

__all__ = [
    "ActorCritic",
    "MLPPolicy",
    "MLPValue",
    "NatureCNNActorCritic",
    "NatureCNNQNetwork",
    "QNetwork",
]

_REINFORCE_PAPER = (
    "Williams, Simple statistical gradient-following algorithms for connectionist "
    "reinforcement learning, Machine Learning 1992"
)
_A2C_PAPER = "Mnih et al., Asynchronous Methods for Deep Reinforcement Learning, ICML 2016"
_DQN_PAPER = "Mnih et al., Human-level control through deep reinforcement learning, Nature 2015"


class MLPPolicy(PolicyHead, nn.Module):
    """A stochastic policy: an MLP and an action-distribution head.

    ``model(obs)`` returns a ``CategoricalDistribution`` (discrete actions) or a
    ``DiagGaussianDistribution`` (continuous) with batch shape (B,).

    Args:
        obs_dim: size of an observation vector, or the shape of one observation
            (e.g. (3, 2)), which is flattened.
        action_dim: number of discrete actions, or size of a continuous action.
        net_arch: hidden layer widths.
        act_layer: activation type or name.
        continuous: a Gaussian over continuous actions instead of a categorical.
        log_std_init: initial log standard deviation of the Gaussian.
        ortho_init: orthogonal initialization (gain sqrt(2) hidden, 0.01 head).
    """

    def __init__(
        self,
        obs_dim: int | Sequence[int] = 4,
        action_dim: int = 2,
        net_arch: Sequence[int] = (64, 64),
        act_layer: LayerType = nn.Tanh,
        continuous: bool = False,
        log_std_init: float = 0.0,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        self.obs_shape = as_obs_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.action_dim = action_dim
        self.continuous = continuous
        widths = layer_widths(net_arch, "net_arch")
        self.mlp = mlp_layers(self.obs_dim, widths, get_act_layer(act_layer))
        self.action_net = nn.Linear(widths[-1] if widths else self.obs_dim, action_dim)
        log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_parameter("log_std", log_std if continuous else None)
        if ortho_init:
            orthogonal_init(self.mlp, HIDDEN_GAIN)
            orthogonal_init(self.action_net, POLICY_GAIN)

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        """The action distribution for a batch of observations (B, *obs_shape)."""
        latent = self.mlp(flat_observations(self, obs))
        return action_distribution(self.action_net(latent), self.log_std)

    def forward(self, obs: torch.Tensor) -> Distribution:
        return self.get_distribution(obs)


class MLPValue(nn.Module):
    """A state-value function V(s): an MLP and a scalar head; returns (B,).

    Args:
        obs_dim: size of an observation vector, or the shape of one observation.
        net_arch: hidden layer widths.
        act_layer: activation type or name.
        ortho_init: orthogonal initialization (gain sqrt(2) hidden, 1.0 head).
    """

    def __init__(
        self,
        obs_dim: int | Sequence[int] = 4,
        net_arch: Sequence[int] = (64, 64),
        act_layer: LayerType = nn.Tanh,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        self.obs_shape = as_obs_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        widths = layer_widths(net_arch, "net_arch")
        self.mlp = mlp_layers(self.obs_dim, widths, get_act_layer(act_layer))
        self.value_net = nn.Linear(widths[-1] if widths else self.obs_dim, 1)
        if ortho_init:
            orthogonal_init(self.mlp, HIDDEN_GAIN)
            orthogonal_init(self.value_net, VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.mlp(flat_observations(self, obs))
        return self.value_net(latent).squeeze(-1)  # (B,)


class QNetwork(nn.Module):
    """Action values Q(s, a) for every discrete action: returns (B, action_dim).

    With ``dueling=True`` a value stream V(s) and an advantage stream A(s, a) are
    combined as ``Q = V + A - mean_a A``, which pins down the split between them.

    Args:
        obs_dim: size of an observation vector, or the shape of one observation.
        action_dim: number of discrete actions.
        net_arch: hidden layer widths, shared by both streams when dueling.
        act_layer: activation type or name.
        dueling: the dueling architecture of Wang et al. (2016).
        ortho_init: orthogonal initialization (gain sqrt(2) hidden, 1.0 heads).
    """

    def __init__(
        self,
        obs_dim: int | Sequence[int] = 4,
        action_dim: int = 2,
        net_arch: Sequence[int] = (64, 64),
        act_layer: LayerType = nn.ReLU,
        dueling: bool = False,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        self.obs_shape = as_obs_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.action_dim = action_dim
        self.continuous = False
        self.dueling = dueling
        widths = layer_widths(net_arch, "net_arch")
        latent = widths[-1] if widths else self.obs_dim
        self.mlp = mlp_layers(self.obs_dim, widths, get_act_layer(act_layer))
        if dueling:
            self.value_net = nn.Linear(latent, 1)
            self.advantage_net = nn.Linear(latent, action_dim)
        else:
            self.q_net = nn.Linear(latent, action_dim)
        if ortho_init:
            orthogonal_init(self.mlp, HIDDEN_GAIN)
            for head in ("q_net", "value_net", "advantage_net"):
                if hasattr(self, head):
                    orthogonal_init(getattr(self, head), VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.mlp(flat_observations(self, obs))
        if not self.dueling:
            return self.q_net(latent)
        advantage = self.advantage_net(latent)  # (B, action_dim)
        return self.value_net(latent) + advantage - advantage.mean(dim=-1, keepdim=True)

    def act(self, obs: torch.Tensor, epsilon: float = 0.0) -> torch.Tensor:
        """Epsilon-greedy actions, (B,) int64: random with probability ``epsilon``."""
        greedy = self(obs).argmax(dim=-1)
        if epsilon <= 0:
            return greedy
        explore = torch.rand(greedy.shape, device=greedy.device) < epsilon
        random = torch.randint_like(greedy, self.action_dim)
        return torch.where(explore, random, greedy)


class _ActorCriticBase(PolicyHead, nn.Module):
    """Features extractor, ``MlpExtractor``, and the policy and value heads."""

    features_extractor: nn.Module

    def _build_heads(
        self,
        features_dim: int,
        action_dim: int,
        net_arch: Any,
        act_layer: LayerType,
        continuous: bool,
        log_std_init: float,
        ortho_init: bool,
    ) -> None:
        self.action_dim = action_dim
        self.continuous = continuous
        self.mlp_extractor = MlpExtractor(features_dim, net_arch, get_act_layer(act_layer))
        self.action_net = nn.Linear(self.mlp_extractor.latent_dim_pi, action_dim)
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_parameter("log_std", log_std if continuous else None)
        if ortho_init:
            orthogonal_init(self.features_extractor, HIDDEN_GAIN)
            orthogonal_init(self.mlp_extractor, HIDDEN_GAIN)
            orthogonal_init(self.action_net, POLICY_GAIN)
            orthogonal_init(self.value_net, VALUE_GAIN)

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, obs: torch.Tensor) -> PolicyOutput:
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        dist = action_distribution(self.action_net(latent_pi), self.log_std)
        return PolicyOutput(dist, self.value_net(latent_vf).squeeze(-1))

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        """The action distribution alone (skips the value branch when it is separate)."""
        latent_pi = self.mlp_extractor.forward_actor(self.extract_features(obs))
        return action_distribution(self.action_net(latent_pi), self.log_std)

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        """State values alone, (B,)."""
        latent_vf = self.mlp_extractor.forward_critic(self.extract_features(obs))
        return self.value_net(latent_vf).squeeze(-1)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> EvaluationOutput:
        """Log-probabilities and entropy of the policy at ``actions``, and state values."""
        dist, value = self(obs)
        return EvaluationOutput(dist.log_prob(actions), dist.entropy(), value)

    def _dist_and_value(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor | None]:
        return self(obs)


class ActorCritic(_ActorCriticBase):
    """A policy and a state-value function on flat observations; returns ``PolicyOutput``.

    Args:
        obs_dim: size of an observation vector, or the shape of one observation
            (e.g. (3, 2)), which is flattened.
        action_dim: number of discrete actions, or size of a continuous action.
        net_arch: SB3-style hidden layers: a list is a shared trunk, ``dict(pi=...,
            vf=...)`` separate trunks (default ``dict(pi=[64, 64], vf=[64, 64])``).
        act_layer: activation type or name.
        continuous: a Gaussian over continuous actions instead of a categorical.
        log_std_init: initial log standard deviation of the Gaussian.
        ortho_init: orthogonal initialization (gains sqrt(2), 0.01 policy, 1.0 value).
    """

    def __init__(
        self,
        obs_dim: int | Sequence[int] = 4,
        action_dim: int = 2,
        net_arch: Sequence[Any] | Mapping[str, Sequence[int]] | None = None,
        act_layer: LayerType = nn.Tanh,
        continuous: bool = False,
        log_std_init: float = 0.0,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        self.obs_shape = as_obs_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.features_extractor = nn.Identity()  # observations are flattened in extract_features
        if net_arch is None:
            net_arch = dict(pi=[64, 64], vf=[64, 64])
        self._build_heads(
            self.obs_dim, action_dim, net_arch, act_layer, continuous, log_std_init, ortho_init
        )

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.features_extractor(flat_observations(self, obs))


class NatureCNNActorCritic(_ActorCriticBase):
    """An actor-critic on stacked frames with the Nature-DQN trunk; returns ``PolicyOutput``.

    Observations are (B, in_chans, H, W). uint8 frames are divided by 255 inside
    the model; floating-point frames are taken as already scaled to [0, 1] and used
    as they are. The trunk is shared by the policy and the value head, as in SB3's
    ``CnnPolicy`` and CleanRL's Atari PPO.

    Args:
        in_chans: stacked frames per observation.
        img_size: frame height and width (an int for square frames); at least 36.
        action_dim: number of discrete actions, or size of a continuous action.
        net_arch: SB3-style hidden layers after the trunk (default none).
        act_layer: activation of those layers.
        features_dim: width of the trunk's output.
        continuous: a Gaussian over continuous actions instead of a categorical.
        log_std_init: initial log standard deviation of the Gaussian.
        ortho_init: orthogonal initialization (gains sqrt(2), 0.01 policy, 1.0 value).
    """

    def __init__(
        self,
        in_chans: int = 4,
        img_size: int | Sequence[int] = 84,
        action_dim: int = 6,
        net_arch: Sequence[Any] | Mapping[str, Sequence[int]] | None = None,
        act_layer: LayerType = nn.ReLU,
        features_dim: int = 512,
        continuous: bool = False,
        log_std_init: float = 0.0,
        ortho_init: bool = True,
    ) -> None:
        super().__init__()
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(size) != 2 or min(size) < 36:
            raise ConfigError(
                f"the Nature CNN needs frames of at least 36x36 (its convolutions reduce 36 "
                f"pixels to 1); got img_size={img_size!r}. Resize the frames (84x84 is usual)."
            )
        self.in_chans = in_chans
        self.img_size = size
        self.obs_shape = (in_chans, *size)
        self.features_extractor = NatureCNN(in_chans, size, features_dim)
        self._build_heads(
            features_dim,
            action_dim,
            [] if net_arch is None else net_arch,
            act_layer,
            continuous,
            log_std_init,
            ortho_init,
        )

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        name = model_name(self, "nature_cnn_actor_critic")
        x = scale_frames(obs, param_dtype(self))
        check_image(x, model=name, in_chans=self.in_chans, size=self.img_size)
        return self.features_extractor(x)  # (B, features_dim)


class NatureCNNQNetwork(QNetwork):
    """Q(s, a) on stacked frames with the Nature-DQN trunk (Mnih et al., 2015): (B, action_dim).

    uint8 frames are divided by 255 inside the model. Acts like ``q_network``
    (``act(obs, epsilon)``), with the dueling heads as an option.

    Args:
        in_chans: stacked frames per observation.
        img_size: frame height and width (an int for square frames); at least 36.
        action_dim: number of discrete actions.
        features_dim: width of the trunk's output.
        dueling: the dueling architecture of Wang et al. (2016).
        ortho_init: orthogonal initialization (gain sqrt(2) trunk, 1.0 heads).
    """

    def __init__(
        self,
        in_chans: int = 4,
        img_size: int | Sequence[int] = 84,
        action_dim: int = 6,
        features_dim: int = 512,
        dueling: bool = False,
        ortho_init: bool = True,
    ) -> None:
        nn.Module.__init__(self)  # the trunk replaces QNetwork's MLP
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(size) != 2 or min(size) < 36:
            raise ConfigError(
                f"the Nature CNN needs frames of at least 36x36; got img_size={img_size!r}. "
                "Resize the frames (84x84 is usual)."
            )
        self.in_chans, self.img_size = in_chans, size
        self.obs_shape = (in_chans, *size)
        self.obs_dim = math.prod(self.obs_shape)
        self.action_dim = action_dim
        self.continuous = False
        self.dueling = dueling
        self.features_extractor = NatureCNN(in_chans, size, features_dim)
        if dueling:
            self.value_net = nn.Linear(features_dim, 1)
            self.advantage_net = nn.Linear(features_dim, action_dim)
        else:
            self.q_net = nn.Linear(features_dim, action_dim)
        if ortho_init:
            orthogonal_init(self.features_extractor, HIDDEN_GAIN)
            for head in ("q_net", "value_net", "advantage_net"):
                if hasattr(self, head):
                    orthogonal_init(getattr(self, head), VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = scale_frames(obs, param_dtype(self))  # one FX-traceable step, as in the actor-critic
        check_image(
            x,
            model=model_name(self, "nature_cnn_q_network"),
            in_chans=self.in_chans,
            size=self.img_size,
        )
        latent = self.features_extractor(x)  # (B, features_dim)
        if not self.dueling:
            return self.q_net(latent)
        advantage = self.advantage_net(latent)  # (B, action_dim)
        return self.value_net(latent) + advantage - advantage.mean(dim=-1, keepdim=True)


# --- registration ----------------------------------------------------------------------


@register_rl_model(task="rl_value", paper=_A2C_PAPER, output_shape=value_output)
def mlp_value(*, obs_dim: int | Sequence[int] = 4, **kwargs: Any) -> MLPValue:
    """V(s) with two hidden layers of 64 (tanh); defaults fit CartPole."""
    model_args = dict(obs_dim=obs_dim, net_arch=[64, 64], act_layer=nn.Tanh)
    return MLPValue(**dict(model_args, **kwargs))


@register_rl_model(task="rl_policy", paper=_REINFORCE_PAPER)
def mlp_policy(
    *,
    obs_dim: int | Sequence[int] = 4,
    action_dim: int = 2,
    continuous: bool = False,
    **kwargs: Any,
) -> MLPPolicy:
    """A policy with two hidden layers of 64 (tanh); defaults fit CartPole."""
    model_args = dict(
        obs_dim=obs_dim,
        action_dim=action_dim,
        continuous=continuous,
        net_arch=[64, 64],
        act_layer=nn.Tanh,
    )
    return MLPPolicy(**dict(model_args, **kwargs))


@register_rl_model(task="rl_q", paper=_DQN_PAPER, output_shape=q_output)
def q_network(*, obs_dim: int | Sequence[int] = 4, action_dim: int = 2, **kwargs: Any) -> QNetwork:
    """Q(s, .) with two hidden layers of 64 (ReLU), as SB3's DQN; ``dueling=True`` available."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[64, 64], act_layer=nn.ReLU)
    return QNetwork(**dict(model_args, **kwargs))


@register_rl_model(task="rl_actor_critic", paper=_A2C_PAPER)
def actor_critic(
    *,
    obs_dim: int | Sequence[int] = 4,
    action_dim: int = 2,
    continuous: bool = False,
    **kwargs: Any,
) -> ActorCritic:
    """SB3's default PPO/A2C MlpPolicy: separate 64-64 tanh trunks for policy and value."""
    model_args = dict(
        obs_dim=obs_dim,
        action_dim=action_dim,
        continuous=continuous,
        net_arch=dict(pi=[64, 64], vf=[64, 64]),
        act_layer=nn.Tanh,
    )
    return ActorCritic(**dict(model_args, **kwargs))


@register_rl_model(task="rl_actor_critic", paper=_DQN_PAPER)
def nature_cnn_actor_critic(
    *, in_chans: int = 4, action_dim: int = 6, **kwargs: Any
) -> NatureCNNActorCritic:
    """The Nature-DQN trunk on 4 stacked 84x84 frames, shared by policy and value (Atari)."""
    model_args = dict(in_chans=in_chans, img_size=84, action_dim=action_dim, net_arch=[])
    return NatureCNNActorCritic(**dict(model_args, **kwargs))


@register_rl_model(task="rl_q", paper=_DQN_PAPER, output_shape=q_output)
def nature_cnn_q_network(
    *, in_chans: int = 4, action_dim: int = 6, **kwargs: Any
) -> NatureCNNQNetwork:
    """The Nature DQN: its trunk on 4 stacked 84x84 frames and a linear Q head (Atari)."""
    model_args = dict(in_chans=in_chans, img_size=84, action_dim=action_dim)
    return NatureCNNQNetwork(**dict(model_args, **kwargs))
