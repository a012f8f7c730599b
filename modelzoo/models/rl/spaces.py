"""From gymnasium spaces to the network that fits them (``from_spaces``), and the check
that a built network fits an environment (``check_spaces``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.layers.helpers import model_name
from modelzoo.registry import create

if TYPE_CHECKING:
    import gymnasium

__all__ = ["check_spaces", "from_spaces"]

_logger = logging.getLogger(__name__)

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
