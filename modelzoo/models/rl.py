"""Reinforcement-learning networks: policies, value functions, actor-critics and Q-networks.

- Williams, "Simple statistical gradient-following algorithms for connectionist
  reinforcement learning" (Machine Learning, 1992): stochastic policies trained
  through the log-likelihood of their actions (``mlp_policy``).
- Mnih et al., "Asynchronous Methods for Deep Reinforcement Learning" (ICML 2016)
  and Schulman et al., "Proximal Policy Optimization Algorithms" (arXiv 1707.06347,
  2017): actor-critics with a policy and a value head (``actor_critic``).
- Mnih et al., "Human-level control through deep reinforcement learning" (Nature,
  2015): the DQN Q-network and its convolutional trunk (``q_network``,
  ``nature_cnn_actor_critic``); Wang et al., "Dueling Network Architectures for Deep
  Reinforcement Learning" (ICML 2016): ``q_network(dueling=True)``.

Conventions follow Stable-Baselines3 (SB3) and CleanRL. ``net_arch`` describes the
hidden layers: a list ``[64, 64]`` is one trunk shared by the policy and the value
head; ``dict(pi=[64, 64], vf=[64, 64])`` gives each head its own trunk; and
``[64, dict(pi=[32], vf=[32])]`` shares the first layers, then splits (the format of
SB3 before 1.8; SB3 1.8+ reads a plain list as two separate trunks of that shape).
Weights start orthogonal with gain sqrt(2) in hidden layers, 0.01 in the policy head
and 1.0 in value and Q heads, biases at zero (``ortho_init=False`` keeps PyTorch's
default initialization). Module names follow SB3's policies (``mlp_extractor.policy_net``,
``action_net``, ``value_net``, ``log_std``, ``features_extractor.cnn``).

Policies return ``torch.distributions`` objects: a categorical over logits for
discrete actions, or a diagonal Gaussian with a learnable, state-independent
``log_std`` for continuous ones, whose ``log_prob`` and ``entropy`` sum over the
action dimensions. Both are registered as pytree nodes, so ``torch.export`` can
return them. Continuous actions are not squashed: clip them to the action space's
bounds before ``env.step``, as SB3 does.

``from_spaces(env.observation_space, env.action_space)`` builds the network that fits
a gymnasium environment and ``check_spaces`` checks a built one against it.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import LayerType, check_image, get_act_layer, graph_leaf, param_dtype
from modelzoo.layers.helpers import model_name
from modelzoo.layers.specs import TensorSpec
from modelzoo.layers.tracing import is_tracing
from modelzoo.registry import create, register_model

if TYPE_CHECKING:
    import gymnasium

__all__ = [
    "ActionOutput",
    "ActorCritic",
    "CategoricalDistribution",
    "ContinuousCritic",
    "DiagGaussianDistribution",
    "EvaluationOutput",
    "MLPPolicy",
    "MLPValue",
    "MlpExtractor",
    "NatureCNN",
    "NatureCNNActorCritic",
    "NatureCNNQNetwork",
    "PolicyOutput",
    "QNetwork",
    "SACOutput",
    "SACPolicy",
    "TD3Output",
    "TD3Policy",
    "check_spaces",
    "from_spaces",
]

_logger = logging.getLogger(__name__)

_REINFORCE_PAPER = (
    "Williams, Simple statistical gradient-following algorithms for connectionist "
    "reinforcement learning, Machine Learning 1992"
)
_A2C_PAPER = "Mnih et al., Asynchronous Methods for Deep Reinforcement Learning, ICML 2016"
_DQN_PAPER = "Mnih et al., Human-level control through deep reinforcement learning, Nature 2015"

_HIDDEN_GAIN = math.sqrt(2)
_POLICY_GAIN = 0.01
_VALUE_GAIN = 1.0


# --- distributions and outputs ---------------------------------------------------------


class CategoricalDistribution(Categorical):
    """A categorical distribution over discrete actions, built from logits.

    A plain ``torch.distributions.Categorical`` that ``torch.export`` can return.
    """


class DiagGaussianDistribution(Independent):
    """A Gaussian with diagonal covariance over continuous actions.

    ``Independent(Normal(loc, scale), 1)``: ``log_prob`` and ``entropy`` sum over the
    action dimension and have shape (B,).

    Args:
        loc: the mean action, (B, action_dim).
        scale: the standard deviation, broadcastable to ``loc``.
        validate_args: as in ``torch.distributions``.
    """

    def __init__(
        self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None
    ) -> None:
        super().__init__(Normal(loc, scale, validate_args=validate_args), 1, validate_args)

    @property
    def loc(self) -> torch.Tensor:
        return self.base_dist.loc

    @property
    def scale(self) -> torch.Tensor:
        return self.base_dist.scale

    def expand(self, batch_shape: Sequence[int], _instance: Any = None) -> DiagGaussianDistribution:
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagGaussianDistribution(
            self.loc.expand(shape), self.scale.expand(shape), validate_args=False
        )


def _register_pytree_nodes() -> None:
    # Without this, torch.export refuses outputs that hold a distribution.
    if CategoricalDistribution not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            CategoricalDistribution,
            lambda d: ([d.logits], None),
            lambda children, _: CategoricalDistribution(logits=children[0], validate_args=False),
            serialized_type_name=f"{__name__}.CategoricalDistribution",
            flatten_with_keys_fn=lambda d: ([(pytree.GetAttrKey("logits"), d.logits)], None),
        )
    if DiagGaussianDistribution not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            DiagGaussianDistribution,
            lambda d: ([d.loc, d.scale], None),
            lambda children, _: DiagGaussianDistribution(*children, validate_args=False),
            serialized_type_name=f"{__name__}.DiagGaussianDistribution",
            flatten_with_keys_fn=lambda d: (
                [(pytree.GetAttrKey("loc"), d.loc), (pytree.GetAttrKey("scale"), d.scale)],
                None,
            ),
        )


_register_pytree_nodes()


class PolicyOutput(NamedTuple):
    """What an actor-critic returns."""

    dist: Distribution  # over actions; batch shape (B,)
    value: torch.Tensor  # state values, (B,)


class ActionOutput(NamedTuple):
    """What ``act`` returns."""

    action: torch.Tensor  # (B,) int64 for discrete actions, (B, action_dim) for continuous
    log_prob: torch.Tensor  # (B,)
    value: torch.Tensor | None  # (B,); None for a policy without a value head


class EvaluationOutput(NamedTuple):
    """What ``evaluate_actions`` returns: the terms of a policy-gradient loss."""

    log_prob: torch.Tensor  # (B,)
    entropy: torch.Tensor  # (B,)
    value: torch.Tensor  # (B,)


@graph_leaf  # FX symbolic tracing cannot build a distribution from proxies: one opaque step
def _action_distribution(params: torch.Tensor, log_std: torch.Tensor | None) -> Distribution:
    """A categorical over ``params`` as logits, or a Gaussian with mean ``params``."""
    # Argument validation is data-dependent, which a captured graph cannot hold.
    validate = False if is_tracing() else None
    if log_std is None:
        return CategoricalDistribution(logits=params, validate_args=validate)
    return DiagGaussianDistribution(params, log_std.exp().expand_as(params), validate)


# --- helpers ---------------------------------------------------------------------------


def _as_shape(obs_dim: int | Sequence[int]) -> tuple[int, ...]:
    try:
        shape = (operator.index(obs_dim),)
    except TypeError:
        try:
            shape = tuple(operator.index(d) for d in obs_dim)
        except TypeError:
            shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise ConfigError(
            f"obs_dim must be a positive size (e.g. 4) or a shape of positive sizes (e.g. (3, 2)); "
            f"got {obs_dim!r}"
        )
    return shape


def _widths(net_arch: Any, what: str) -> list[int]:
    if isinstance(net_arch, (str, bytes)) or not isinstance(net_arch, Sequence):
        raise ConfigError(
            f"{what} must be a list of layer widths such as [64, 64]; got {net_arch!r} "
            "(separate pi/vf trunks are for actor_critic)"
        )
    widths = []
    for width in net_arch:
        try:
            width = operator.index(width)
        except TypeError:
            width = -1
        if width <= 0:
            raise ConfigError(
                f"{what} must be a list of positive layer widths such as [64, 64]; got {net_arch!r}"
            )
        widths.append(width)
    return widths


def _parse_net_arch(net_arch: Any) -> tuple[list[int], list[int], list[int]]:
    """Split an SB3-style ``net_arch`` into (shared, policy, value) hidden widths."""
    hint = (
        "Use a list [64, 64] for a shared trunk, dict(pi=[64, 64], vf=[64, 64]) for separate "
        "trunks, or [64, dict(pi=[64], vf=[64])] for both."
    )
    if isinstance(net_arch, Mapping):
        shared, branches = [], net_arch
    elif isinstance(net_arch, Sequence) and not isinstance(net_arch, (str, bytes)):
        items = list(net_arch)
        branches = items.pop() if items and isinstance(items[-1], Mapping) else {}
        shared = items
    else:
        raise ConfigError(f"net_arch={net_arch!r} is not understood. {hint}")
    unknown = set(branches) - {"pi", "vf"}
    if unknown:
        raise ConfigError(
            f"net_arch has unknown keys {sorted(unknown)}; only 'pi' and 'vf'. {hint}"
        )
    return (
        _widths(shared, "net_arch"),
        _widths(branches.get("pi", []), "net_arch['pi']"),
        _widths(branches.get("vf", []), "net_arch['vf']"),
    )


def _mlp(in_dim: int, widths: Sequence[int], act_layer: type[nn.Module]) -> nn.Sequential:
    """Linear + activation per width: SB3's layout, so its keys are ``0``, ``2``, ..."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), act_layer()]
        in_dim = width
    return nn.Sequential(*layers)


def _orthogonal_init(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if m.weight.is_meta:  # built on the meta device: there are no values to set
                continue
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _flat_observations(model: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """Check (B, *obs_shape) observations and flatten them to (B, obs_dim) floats."""
    name = model_name(model, type(model).__name__)
    return _as_flat_observations(obs, tuple(model.obs_shape), name, param_dtype(model))


@graph_leaf  # reads the observations' shape, which FX symbolic tracing cannot
def _as_flat_observations(
    obs: torch.Tensor, want: tuple[int, ...], model: str, dtype: torch.dtype | None
) -> torch.Tensor:
    # Compare the per-sample shape only: reading the batch size would pin it under export.
    if obs.ndim != len(want) + 1 or any(obs.shape[i + 1] != d for i, d in enumerate(want)):
        got = tuple(obs.shape)
        expected = "(B, " + ", ".join(str(d) for d in want) + ")"
        if got == want:
            fix = "Add a batch dimension with obs.unsqueeze(0)."
        else:
            size = got[1] if len(got) == 2 else got[1:]
            fix = (
                f"Build the model for this environment with from_spaces(env.observation_space, "
                f"env.action_space), or with obs_dim={size}."
            )
        raise InputShapeError(
            f"{model} expects observations of shape {expected}; got shape {got}. {fix}"
        )
    # Observations from numpy are often float64 or integers: the model's dtype is the one
    # it can compute in, so they are converted rather than refused.
    return obs.flatten(1).to(dtype)  # (B, obs_dim)


class _PolicyHead:
    """Acting helpers for modules with a ``get_distribution(obs)`` method."""

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> ActionOutput:
        """Choose actions for a batch of observations.

        Gradients flow through ``log_prob`` and ``value``; wrap the call in
        ``torch.no_grad()`` when collecting rollouts.

        Args:
            obs: observations, (B, ...).
            deterministic: take the most likely action (the mean for continuous
                actions) instead of sampling.
        """
        dist, value = self._dist_and_value(obs)
        action = dist.mode if deterministic else dist.sample()
        return ActionOutput(action, dist.log_prob(action), value)

    def _dist_and_value(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor | None]:
        return self.get_distribution(obs), None


# --- blocks ----------------------------------------------------------------------------


class MlpExtractor(nn.Module):
    """The hidden layers of an actor-critic: a shared part, then a policy and a value branch.

    Args:
        features_dim: size of the flattened observation features.
        net_arch: SB3-style architecture (see the module docstring).
        act_layer: activation type.
    """

    def __init__(self, features_dim: int, net_arch: Any, act_layer: type[nn.Module]) -> None:
        super().__init__()
        shared, pi, vf = _parse_net_arch(net_arch)
        self.shared_net = _mlp(features_dim, shared, act_layer)
        latent = shared[-1] if shared else features_dim
        self.policy_net = _mlp(latent, pi, act_layer)
        self.value_net = _mlp(latent, vf, act_layer)
        self.latent_dim_pi = pi[-1] if pi else latent
        self.latent_dim_vf = vf[-1] if vf else latent

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shared = self.shared_net(features)
        return self.policy_net(shared), self.value_net(shared)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.policy_net(self.shared_net(features))

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_net(self.shared_net(features))


class NatureCNN(nn.Module):
    """The DQN convolutional trunk: three convolutions, then one linear layer of 512.

    Args:
        in_chans: stacked frames (channels) per observation.
        img_size: (height, width) of each frame; at least 36 so that the last
            convolution has an output.
        features_dim: width of the final linear layer.
    """

    def __init__(
        self, in_chans: int = 4, img_size: tuple[int, int] = (84, 84), features_dim: int = 512
    ) -> None:
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(in_chans, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        # Computed, not measured with a dummy forward, so that it works on the meta device.
        h, w = img_size
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        self.linear = nn.Sequential(nn.Linear(64 * h * w, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(x))


# --- models ----------------------------------------------------------------------------


class MLPPolicy(_PolicyHead, nn.Module):
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
        self.obs_shape = _as_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.action_dim = action_dim
        self.continuous = continuous
        widths = _widths(net_arch, "net_arch")
        self.mlp = _mlp(self.obs_dim, widths, get_act_layer(act_layer))
        self.action_net = nn.Linear(widths[-1] if widths else self.obs_dim, action_dim)
        log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_parameter("log_std", log_std if continuous else None)
        if ortho_init:
            _orthogonal_init(self.mlp, _HIDDEN_GAIN)
            _orthogonal_init(self.action_net, _POLICY_GAIN)

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        """The action distribution for a batch of observations (B, *obs_shape)."""
        latent = self.mlp(_flat_observations(self, obs))
        return _action_distribution(self.action_net(latent), self.log_std)

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
        self.obs_shape = _as_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        widths = _widths(net_arch, "net_arch")
        self.mlp = _mlp(self.obs_dim, widths, get_act_layer(act_layer))
        self.value_net = nn.Linear(widths[-1] if widths else self.obs_dim, 1)
        if ortho_init:
            _orthogonal_init(self.mlp, _HIDDEN_GAIN)
            _orthogonal_init(self.value_net, _VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.mlp(_flat_observations(self, obs))
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
        self.obs_shape = _as_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.action_dim = action_dim
        self.continuous = False
        self.dueling = dueling
        widths = _widths(net_arch, "net_arch")
        latent = widths[-1] if widths else self.obs_dim
        self.mlp = _mlp(self.obs_dim, widths, get_act_layer(act_layer))
        if dueling:
            self.value_net = nn.Linear(latent, 1)
            self.advantage_net = nn.Linear(latent, action_dim)
        else:
            self.q_net = nn.Linear(latent, action_dim)
        if ortho_init:
            _orthogonal_init(self.mlp, _HIDDEN_GAIN)
            for head in ("q_net", "value_net", "advantage_net"):
                if hasattr(self, head):
                    _orthogonal_init(getattr(self, head), _VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.mlp(_flat_observations(self, obs))
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


class _ActorCriticBase(_PolicyHead, nn.Module):
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
            _orthogonal_init(self.features_extractor, _HIDDEN_GAIN)
            _orthogonal_init(self.mlp_extractor, _HIDDEN_GAIN)
            _orthogonal_init(self.action_net, _POLICY_GAIN)
            _orthogonal_init(self.value_net, _VALUE_GAIN)

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, obs: torch.Tensor) -> PolicyOutput:
        latent_pi, latent_vf = self.mlp_extractor(self.extract_features(obs))
        dist = _action_distribution(self.action_net(latent_pi), self.log_std)
        return PolicyOutput(dist, self.value_net(latent_vf).squeeze(-1))

    def get_distribution(self, obs: torch.Tensor) -> Distribution:
        """The action distribution alone (skips the value branch when it is separate)."""
        latent_pi = self.mlp_extractor.forward_actor(self.extract_features(obs))
        return _action_distribution(self.action_net(latent_pi), self.log_std)

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
        self.obs_shape = _as_shape(obs_dim)
        self.obs_dim = math.prod(self.obs_shape)
        self.features_extractor = nn.Identity()  # observations are flattened in extract_features
        if net_arch is None:
            net_arch = dict(pi=[64, 64], vf=[64, 64])
        self._build_heads(
            self.obs_dim, action_dim, net_arch, act_layer, continuous, log_std_init, ortho_init
        )

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.features_extractor(_flat_observations(self, obs))


@graph_leaf  # branches on the dtype, which FX symbolic tracing cannot
def _scale_frames(obs: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """uint8 frames to [0, 1] in the model's dtype; float frames converted as they are."""
    return obs.to(dtype) / 255.0 if obs.dtype == torch.uint8 else obs.to(dtype)


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
        x = _scale_frames(obs, param_dtype(self))
        check_image(x, model=name, in_chans=self.in_chans, size=self.img_size)
        return self.features_extractor(x)  # (B, features_dim)


# --- gymnasium spaces ------------------------------------------------------------------


_KINDS = {
    "actor_critic": "actor_critic",
    "policy": "mlp_policy",
    "mlp_policy": "mlp_policy",
    "value": "mlp_value",
    "mlp_value": "mlp_value",
    "q_network": "q_network",
    "nature_cnn_actor_critic": "nature_cnn_actor_critic",
    "nature_cnn_q_network": "nature_cnn_q_network",
    "sac_policy": "sac_policy",
    "td3_policy": "td3_policy",
}
# Kinds that take image observations through the Nature CNN, and the network they become.
_CNN_KINDS = {
    "actor_critic": "nature_cnn_actor_critic",
    "nature_cnn_actor_critic": "nature_cnn_actor_critic",
    "q_network": "nature_cnn_q_network",
    "nature_cnn_q_network": "nature_cnn_q_network",
}


def _image_layout(space: Any) -> str | None:
    """'first' or 'last' (channel axis) for an image Box space, None for other spaces.

    An image is a rank-3 Box of uint8 pixels, or of floats bounded to [0, 1].
    """
    import numpy as np

    if len(space.shape) != 3:
        return None
    pixels = space.dtype == np.uint8
    unit_floats = (
        np.issubdtype(space.dtype, np.floating)
        and np.all(space.low >= 0)
        and np.all(space.high <= 1)
    )
    if not (pixels or unit_floats):
        return None
    smallest = int(np.argmin(space.shape))
    if space.shape[0] == space.shape[smallest]:
        return "first"
    return "last" if smallest == 2 else "ambiguous"


def _unsupported(observation_space: Any, action_space: Any, why: str) -> ConfigError:
    return ConfigError(
        f"cannot build a network for observation space {observation_space} and action space "
        f"{action_space}: {why}"
    )


def _action_kwargs(observation_space: Any, action_space: Any, name: str) -> dict[str, Any]:
    from gymnasium import spaces

    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise _unsupported(
                observation_space,
                action_space,
                f"the networks number actions from 0, but this space starts at "
                f"{action_space.start}; add it to the chosen action before env.step",
            )
        return dict(action_dim=int(action_space.n), continuous=False)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        if name in ("q_network", "nature_cnn_q_network"):
            raise _unsupported(
                observation_space,
                action_space,
                "a Q-network needs discrete actions; use kind='actor_critic' (a Gaussian "
                "policy) for continuous ones",
            )
        return dict(action_dim=int(action_space.shape[0]), continuous=True)
    raise _unsupported(
        observation_space,
        action_space,
        "actions must be Discrete or a one-dimensional Box (MultiDiscrete, MultiBinary, Dict "
        "and Tuple action spaces are not supported)",
    )


def from_spaces(
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space | None,
    kind: str = "actor_critic",
    **kwargs: Any,
) -> nn.Module:
    """Build the network that fits a gymnasium environment's spaces.

    Box observations of any shape are flattened into an MLP; image observations
    (rank-3 Box of uint8, or of floats in [0, 1], channels first) get the Nature
    CNN actor-critic. Discrete actions give a categorical policy, one-dimensional
    Box actions a Gaussian one.

    Args:
        observation_space: ``env.observation_space``.
        action_space: ``env.action_space`` (ignored for ``kind="value"``).
        kind: ``"actor_critic"``, ``"policy"``, ``"value"``, ``"q_network"`` or
            ``"nature_cnn_actor_critic"`` (a registered name also works).
        **kwargs: other builder arguments, e.g. ``net_arch``.

    Raises:
        ConfigError: a combination of spaces and kind that no network here supports;
            the message names both spaces.
    """
    from gymnasium import spaces

    name = _KINDS.get(kind)
    if name is None:
        raise ConfigError(f"unknown kind {kind!r}; choose one of {', '.join(_KINDS)}")
    if not isinstance(observation_space, spaces.Box) or not observation_space.shape:
        raise _unsupported(
            observation_space,
            action_space,
            "observations must be a Box with at least one dimension (Discrete, "
            "MultiDiscrete, Dict and Tuple observations are not supported; flatten or "
            "one-hot encode them with a gymnasium ObservationWrapper)",
        )
    shape = tuple(int(d) for d in observation_space.shape)
    layout = _image_layout(observation_space)
    if name.startswith("nature_cnn") and len(shape) != 3:
        raise _unsupported(observation_space, action_space, "the Nature CNN needs (C, H, W) frames")
    if layout is not None and name in _CNN_KINDS:
        if layout != "first":
            raise _unsupported(
                observation_space,
                action_space,
                "image observations must have their channels first, (C, H, W); move the "
                "channel axis with an ObservationWrapper (e.g. np.transpose(obs, (2, 0, 1)))",
            )
        name = _CNN_KINDS[name]
    elif layout is not None:
        raise _unsupported(
            observation_space,
            action_space,
            f"image observations need a convolutional network, and only the actor-critic and "
            f"the Q-network have one; use kind='actor_critic' or 'q_network' (kind={kind!r} "
            f"would flatten every pixel)",
        )
    if name.startswith("nature_cnn"):
        model_args: dict[str, Any] = dict(in_chans=shape[0], img_size=shape[1:])
    else:
        model_args = dict(obs_dim=shape[0] if len(shape) == 1 else shape)
    if name in _CONTINUOUS_KINDS:
        model_args.update(_continuous_kwargs(observation_space, action_space, name))
    elif name != "mlp_value":
        model_args.update(_action_kwargs(observation_space, action_space, name))
        if name in ("q_network", "nature_cnn_q_network"):
            del model_args["continuous"]
    model = create(name, **dict(model_args, **kwargs))
    check_spaces(model, observation_space, None if name == "mlp_value" else action_space)
    _logger.debug("built %s for %s -> %s", name, observation_space, action_space)
    return model


def check_spaces(
    model: nn.Module,
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space | None = None,
) -> None:
    """Check that a network fits an environment's spaces.

    Args:
        model: a network from this module.
        observation_space: ``env.observation_space``.
        action_space: ``env.action_space``; None skips the action check (value networks
            have no actions to check).

    Raises:
        ConfigError: the observation shape, the number or size of actions, or the kind
            of actions (discrete or continuous) differ; the message names both.
    """
    from gymnasium import spaces

    name = model_name(model, type(model).__name__)
    fix = "Build it with from_spaces(env.observation_space, env.action_space)."
    want = tuple(model.obs_shape)
    got = tuple(int(d) for d in observation_space.shape or ())
    if not isinstance(observation_space, spaces.Box) or got != want:
        raise ConfigError(
            f"{name} takes observations of shape {want}, but the observation space "
            f"{observation_space} gives shape {got}. {fix}"
        )
    if action_space is None or not hasattr(model, "action_dim"):
        return
    continuous = getattr(model, "continuous", False)
    built = f"{model.action_dim} {'continuous' if continuous else 'discrete'}"
    if isinstance(action_space, spaces.Discrete):
        if continuous or model.action_dim != int(action_space.n):
            raise ConfigError(
                f"{name} was built for {built} actions, but the action space {action_space} "
                f"has {int(action_space.n)} discrete actions. {fix}"
            )
    elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        size = int(action_space.shape[0])
        if not continuous or model.action_dim != size:
            raise ConfigError(
                f"{name} was built for {built} actions, but the action space {action_space} "
                f"has continuous actions of size {size}. {fix}"
            )
    else:
        raise ConfigError(
            f"{name} cannot act in the action space {action_space}: only Discrete and "
            f"one-dimensional Box action spaces are supported."
        )


# --- registration ----------------------------------------------------------------------


def _observation_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    return (TensorSpec(tuple(model.obs_shape), name="observations"),)


def _value_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size,)


def _q_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.action_dim)


def _register(*, task: str, paper: str, **kwargs: Any) -> Any:
    return register_model(family="rl", task=task, inputs=_observation_inputs, paper=paper, **kwargs)


@_register(task="rl_value", paper=_A2C_PAPER, output_shape=_value_output)
def mlp_value(*, obs_dim: int | Sequence[int] = 4, **kwargs: Any) -> MLPValue:
    """V(s) with two hidden layers of 64 (tanh); defaults fit CartPole."""
    model_args = dict(obs_dim=obs_dim, net_arch=[64, 64], act_layer=nn.Tanh)
    return MLPValue(**dict(model_args, **kwargs))


@_register(task="rl_policy", paper=_REINFORCE_PAPER)
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


@_register(task="rl_q", paper=_DQN_PAPER, output_shape=_q_output)
def q_network(*, obs_dim: int | Sequence[int] = 4, action_dim: int = 2, **kwargs: Any) -> QNetwork:
    """Q(s, .) with two hidden layers of 64 (ReLU), as SB3's DQN; ``dueling=True`` available."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[64, 64], act_layer=nn.ReLU)
    return QNetwork(**dict(model_args, **kwargs))


@_register(task="rl_actor_critic", paper=_A2C_PAPER)
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


@_register(task="rl_actor_critic", paper=_DQN_PAPER)
def nature_cnn_actor_critic(
    *, in_chans: int = 4, action_dim: int = 6, **kwargs: Any
) -> NatureCNNActorCritic:
    """The Nature-DQN trunk on 4 stacked 84x84 frames, shared by policy and value (Atari)."""
    model_args = dict(in_chans=in_chans, img_size=84, action_dim=action_dim, net_arch=[])
    return NatureCNNActorCritic(**dict(model_args, **kwargs))


# --- continuous control (SAC, TD3) and the convolutional Q-network ----------------------

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
        widths = _widths(net_arch, "critic_arch")
        act = get_act_layer(act_layer)
        self.q_networks = nn.ModuleList()
        for _ in range(n_critics):
            trunk = _mlp(obs_dim + action_dim, widths, act)
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
        widths = _widths(net_arch, "net_arch")
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
        self.obs_shape = _as_shape(obs_dim)
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
        return self.critic(_flat_observations(self, obs), squashed)

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
        self.latent_pi = _mlp(self.obs_dim, widths, act)
        latent = widths[-1] if widths else self.obs_dim
        self.mu = nn.Linear(latent, self.action_dim)
        self.log_std = nn.Linear(latent, self.action_dim)

    def actor_outputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (clamped) log std of the Gaussian before the tanh, each (B, action_dim)."""
        latent = self.latent_pi(_flat_observations(self, obs))
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
        self.actor = _mlp(self.obs_dim, widths, act)
        self.actor.append(nn.Linear(widths[-1] if widths else self.obs_dim, self.action_dim))
        self.actor.append(nn.Tanh())

    def actor_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The actor's action in squashed units, (B, action_dim)."""
        return self.actor(_flat_observations(self, obs))

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> ActionOutput:
        """The actor's action in the action space's units (log-probability 0: no density)."""
        action = self.actor_action(obs)
        return ActionOutput(self.to_env(action), action.new_zeros(action.shape[0]), None)

    def forward(self, obs: torch.Tensor) -> TD3Output:
        squashed = self.actor_action(obs)
        return TD3Output(self.to_env(squashed), self.q_values(obs, squashed))


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
            _orthogonal_init(self.features_extractor, _HIDDEN_GAIN)
            for head in ("q_net", "value_net", "advantage_net"):
                if hasattr(self, head):
                    _orthogonal_init(getattr(self, head), _VALUE_GAIN)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = _scale_frames(obs, param_dtype(self))  # one FX-traceable step, as in the actor-critic
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


_CONTINUOUS_KINDS = ("sac_policy", "td3_policy")


def _continuous_kwargs(observation_space: Any, action_space: Any, name: str) -> dict[str, Any]:
    """action_dim and the bounds for ``sac_policy``/``td3_policy`` (bounded Box actions only)."""
    import numpy as np
    from gymnasium import spaces

    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise _unsupported(
            observation_space,
            action_space,
            f"{name} needs continuous (one-dimensional Box) actions; use q_network (DQN) or "
            "actor_critic (PPO/A2C) for discrete ones",
        )
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise _unsupported(
            observation_space,
            action_space,
            f"{name} squashes actions into the space's bounds, which must be finite",
        )
    return dict(
        action_dim=int(action_space.shape[0]),
        action_low=[float(x) for x in action_space.low],
        action_high=[float(x) for x in action_space.high],
    )


@_register(task="rl_actor_critic", paper=_SAC_PAPER)
def sac_policy(
    *, obs_dim: int | Sequence[int] = 3, action_dim: int = 1, **kwargs: Any
) -> SACPolicy:
    """SAC's squashed-Gaussian actor and twin critics, 256-256 ReLU each (SB3/CleanRL)."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[256, 256])
    return SACPolicy(**dict(model_args, **kwargs))


@_register(task="rl_actor_critic", paper=_TD3_PAPER)
def td3_policy(
    *, obs_dim: int | Sequence[int] = 3, action_dim: int = 1, **kwargs: Any
) -> TD3Policy:
    """TD3's deterministic actor and twin critics, 256-256 ReLU each (CleanRL)."""
    model_args = dict(obs_dim=obs_dim, action_dim=action_dim, net_arch=[256, 256])
    return TD3Policy(**dict(model_args, **kwargs))


@_register(task="rl_q", paper=_DQN_PAPER, output_shape=_q_output)
def nature_cnn_q_network(
    *, in_chans: int = 4, action_dim: int = 6, **kwargs: Any
) -> NatureCNNQNetwork:
    """The Nature DQN: its trunk on 4 stacked 84x84 frames and a linear Q head (Atari)."""
    model_args = dict(in_chans=in_chans, img_size=84, action_dim=action_dim)
    return NatureCNNQNetwork(**dict(model_args, **kwargs))
