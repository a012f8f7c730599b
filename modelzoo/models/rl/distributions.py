"""What the RL networks return: action distributions (registered as pytree nodes, so
``torch.export`` can return them) and the named tuples of their outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.utils._pytree as pytree
from torch.distributions import Categorical, Distribution, Independent, Normal

from modelzoo.layers import graph_leaf
from modelzoo.layers.tracing import is_tracing

__all__ = [
    "ActionOutput",
    "CategoricalDistribution",
    "DiagGaussianDistribution",
    "EvaluationOutput",
    "PolicyOutput",
    "action_distribution",
]


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
    # Without this, torch.export refuses outputs that hold a distribution. The serialized
    # names are those of the one module this package once was, so that programs exported
    # then still load.
    if CategoricalDistribution not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            CategoricalDistribution,
            lambda d: ([d.logits], None),
            lambda children, _: CategoricalDistribution(logits=children[0], validate_args=False),
            serialized_type_name="modelzoo.models.rl.CategoricalDistribution",
            flatten_with_keys_fn=lambda d: ([(pytree.GetAttrKey("logits"), d.logits)], None),
        )
    if DiagGaussianDistribution not in pytree.SUPPORTED_NODES:
        pytree.register_pytree_node(
            DiagGaussianDistribution,
            lambda d: ([d.loc, d.scale], None),
            lambda children, _: DiagGaussianDistribution(*children, validate_args=False),
            serialized_type_name="modelzoo.models.rl.DiagGaussianDistribution",
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
def action_distribution(params: torch.Tensor, log_std: torch.Tensor | None) -> Distribution:
    """A categorical over ``params`` as logits, or a Gaussian with mean ``params``."""
    # Argument validation is data-dependent, which a captured graph cannot hold.
    validate = False if is_tracing() else None
    if log_std is None:
        return CategoricalDistribution(logits=params, validate_args=validate)
    return DiagGaussianDistribution(params, log_std.exp().expand_as(params), validate)
