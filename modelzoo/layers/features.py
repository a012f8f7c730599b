"""Feature extraction: the ``features_only=True`` wrapper shared by every classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.layers.checkpointing import enable_grad_checkpointing

__all__ = ["FeatureListNet", "resolve_out_indices"]


def resolve_out_indices(out_indices: Sequence[int] | None, num_levels: int, name: str) -> list[int]:
    """Validate feature indices (negative ones count from the end) and make them positive."""
    if out_indices is None:
        return list(range(num_levels))
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    resolved = []
    for index in out_indices:
        if not isinstance(index, int) or not -num_levels <= index < num_levels:
            raise ConfigError(
                f"out_indices={list(out_indices)} is out of range for {name}, which has "
                f"{num_levels} feature levels; use indices in [{-num_levels}, {num_levels - 1}]"
            )
        resolved.append(index % num_levels)
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"out_indices={list(out_indices)} names a feature level twice")
    return sorted(resolved)


class FeatureListNet(nn.Module):
    """Wraps a classifier so that it returns a list of feature maps.

    The model lists its levels in ``feature_info`` (dicts with ``num_chs``,
    ``reduction`` and ``module``). A model may define
    ``forward_intermediates(x, indices)`` (the zoo's ResNets and ViTs do), which
    ``torch.fx`` traces; otherwise the outputs of the named modules are captured
    with forward hooks while ``forward_features`` runs, which FX tracing sees only
    for modules it traces into (not for leaf modules such as ``nn.ReLU``).
    Parameter names stay those of the wrapped model under ``model.``.
    """

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        info = getattr(model, "feature_info", None)
        name = getattr(model, "model_name", type(model).__name__)
        if not info:
            raise ConfigError(
                f"{name} does not list feature levels (feature_info), so features_only=True "
                "cannot apply; use model.forward_features(x) instead"
            )
        self.out_indices = resolve_out_indices(out_indices, len(info), name)
        self.feature_info = [dict(info[i]) for i in self.out_indices]
        self.model = model
        self.model_name = name

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self.feature_info]

    def reductions(self) -> list[int]:
        return [f["reduction"] for f in self.feature_info]

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Gradient checkpointing of the wrapped model's blocks (as timm's feature wrappers do).

        Raises:
            ConfigError: the wrapped model does not support it.
        """
        enable_grad_checkpointing(self.model, enable)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of the levels ``out_indices`` for the input batch ``x``."""
        # One named input rather than *inputs: torch.fx cannot trace a variadic forward.
        custom = getattr(self.model, "forward_intermediates", None)
        if custom is not None:
            return list(custom(x, indices=self.out_indices))
        captured: dict[int, torch.Tensor] = {}
        handles = []
        for index, info in zip(self.out_indices, self.feature_info, strict=True):
            module = self.model.get_submodule(info["module"])

            def hook(_m: nn.Module, _i: object, out: torch.Tensor, index: int = index) -> None:
                captured[index] = out

            handles.append(module.register_forward_hook(hook))
        try:
            self.model.forward_features(x)
        finally:
            for handle in handles:
                handle.remove()
        return [captured[i] for i in self.out_indices]
