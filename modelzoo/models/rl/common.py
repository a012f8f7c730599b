"""The parts the RL networks share: observation checks, SB3-style ``net_arch`` parsing,
MLP and Nature-CNN trunks, SB3's orthogonal initialization gains, and registration."""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import graph_leaf, param_dtype
from modelzoo.layers.helpers import model_name
from modelzoo.layers.specs import TensorSpec
from modelzoo.models.rl.distributions import ActionOutput
from modelzoo.registry import register_model

__all__ = [
    "HIDDEN_GAIN",
    "POLICY_GAIN",
    "VALUE_GAIN",
    "MlpExtractor",
    "NatureCNN",
    "PolicyHead",
    "as_obs_shape",
    "flat_observations",
    "layer_widths",
    "mlp_layers",
    "orthogonal_init",
    "parse_net_arch",
    "q_output",
    "register_rl_model",
    "scale_frames",
    "value_output",
]

# SB3's initialization: orthogonal, gain sqrt(2) in hidden layers, 0.01 in the policy head,
# 1.0 in value and Q heads.
HIDDEN_GAIN = math.sqrt(2)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0


def as_obs_shape(obs_dim: int | Sequence[int]) -> tuple[int, ...]:
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


def layer_widths(net_arch: Any, what: str) -> list[int]:
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


def parse_net_arch(net_arch: Any) -> tuple[list[int], list[int], list[int]]:
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
        layer_widths(shared, "net_arch"),
        layer_widths(branches.get("pi", []), "net_arch['pi']"),
        layer_widths(branches.get("vf", []), "net_arch['vf']"),
    )


def mlp_layers(in_dim: int, widths: Sequence[int], act_layer: type[nn.Module]) -> nn.Sequential:
    """Linear + activation per width: SB3's layout, so its keys are ``0``, ``2``, ..."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), act_layer()]
        in_dim = width
    return nn.Sequential(*layers)


def orthogonal_init(module: nn.Module, gain: float) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if m.weight.is_meta:  # built on the meta device: there are no values to set
                continue
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def flat_observations(model: nn.Module, obs: torch.Tensor) -> torch.Tensor:
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


class PolicyHead:
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


@graph_leaf  # branches on the dtype, which FX symbolic tracing cannot
def scale_frames(obs: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """uint8 frames to [0, 1] in the model's dtype; float frames converted as they are."""
    return obs.to(dtype) / 255.0 if obs.dtype == torch.uint8 else obs.to(dtype)


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
        shared, pi, vf = parse_net_arch(net_arch)
        self.shared_net = mlp_layers(features_dim, shared, act_layer)
        latent = shared[-1] if shared else features_dim
        self.policy_net = mlp_layers(latent, pi, act_layer)
        self.value_net = mlp_layers(latent, vf, act_layer)
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


# --- registration ----------------------------------------------------------------------


def observation_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    return (TensorSpec(tuple(model.obs_shape), name="observations"),)


def value_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size,)


def q_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.action_dim)


def register_rl_model(*, task: str, paper: str, **kwargs: Any) -> Any:
    return register_model(family="rl", task=task, inputs=observation_inputs, paper=paper, **kwargs)
