"""Gradient (activation) checkpointing: keep a block's inputs, recompute the rest in backward.

Chen et al., "Training Deep Nets with Sublinear Memory Cost" (arXiv:1604.06174).

A model that supports it mixes in :class:`GradCheckpointing` and runs its repeated
blocks through :func:`run_block`; ``model.set_grad_checkpointing(True)`` (timm's name
and meaning) then stores only each block's input during a training forward pass and
recomputes the block's activations when backward reaches it. Peak activation memory
falls from one set per block to about one block's worth plus the block inputs, for
roughly one extra forward pass of compute.

Checkpointing acts only in training mode with gradients enabled: in ``eval()`` or under
``torch.no_grad()`` the blocks run as usual, so inference, ``torch.fx`` tracing and
``torch.export`` see the plain graph. Dropout masks are the same in the recomputation
(torch restores the RNG state), and normalization layers with running statistics
(BatchNorm) are updated once per step, not again by the recomputation, so a
checkpointed step changes the model exactly as a plain one does.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from modelzoo.errors import ConfigError

__all__ = [
    "GRAD_CHECKPOINTING_MODELS",
    "GradCheckpointing",
    "enable_grad_checkpointing",
    "run_block",
    "run_blocks",
    "supports_grad_checkpointing",
]

# The native models that support it, for error messages (the zoo's family names, and the
# Conformer of the audio family); timm models bring their own set_grad_checkpointing.
GRAD_CHECKPOINTING_MODELS = (
    "resnet family (resnet*, plain*)",
    "vit family (vit_*)",
    "transformer family (gpt*, transformer_*)",
    "conformer_ctc (audio family)",
)

# BatchNorm updates its running statistics in place on every training forward; the
# recomputation must not do it a second time.
_RUNNING_STAT_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class GradCheckpointing:
    """Mixin for ``nn.Module`` models: ``set_grad_checkpointing`` and the switch it sets.

    The model's forward asks :meth:`grad_checkpointing_active` whether to run its blocks
    through :func:`run_block`.
    """

    grad_checkpointing: bool = False  # set by set_grad_checkpointing

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in backward instead of storing them.

        Trades about one extra forward pass of compute for activation memory; acts only in
        training mode with gradients enabled.

        Args:
            enable: turn checkpointing on (True) or off (False).

        Raises:
            ConfigError: ``enable`` is not a bool.
        """
        if not isinstance(enable, bool):
            raise ConfigError(
                f"set_grad_checkpointing(enable=...) takes True or False; got {enable!r} "
                f"({type(enable).__name__})"
            )
        self.grad_checkpointing = enable

    def grad_checkpointing_active(self) -> bool:
        """Whether this forward pass checkpoints: enabled, training, and recording gradients."""
        return self.grad_checkpointing and self.training and torch.is_grad_enabled()


def supports_grad_checkpointing(model: nn.Module) -> bool:
    """Whether ``model`` has timm's ``set_grad_checkpointing`` (native or timm model)."""
    return callable(getattr(model, "set_grad_checkpointing", None))


def enable_grad_checkpointing(model: nn.Module, enable: bool = True) -> None:
    """Call ``model.set_grad_checkpointing(enable)``, refusing models that lack it.

    Raises:
        ConfigError: the model has no ``set_grad_checkpointing``; the message names the model
            and the models that support it.
    """
    if not supports_grad_checkpointing(model):
        name = getattr(model, "model_name", None) or type(model).__name__
        raise ConfigError(
            f"{name} does not support gradient checkpointing (it has no "
            f"set_grad_checkpointing method). Supported: {'; '.join(GRAD_CHECKPOINTING_MODELS)}, "
            "and timm/<name> models. Remove train.grad_checkpointing, or choose one of these "
            "models."
        )
    model.set_grad_checkpointing(enable)


@contextlib.contextmanager
def _running_stats_kept(norms: list[nn.Module]) -> Iterator[None]:
    """Undo what a recomputation does to the running statistics of ``norms``."""
    saved = [
        (m, [b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)])
        for m in norms
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for live, old in zip(
                    (m.running_mean, m.running_var, m.num_batches_tracked), buffers, strict=True
                ):
                    live.copy_(old)


def _contexts(norms: list[nn.Module]) -> tuple[Any, Any]:
    # (context of the first forward, context of the recomputation in backward)
    return contextlib.nullcontext(), _running_stats_kept(norms)


def _updating_norms(block: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in block.modules()
        if isinstance(m, _RUNNING_STAT_NORMS)
        and m.training
        and m.track_running_stats
        and m.running_mean is not None
        and m.num_batches_tracked is not None
    ]


def run_block(block: Callable[..., Any], *args: Any, checkpointing: bool, **kwargs: Any) -> Any:
    """``block(*args, **kwargs)``, checkpointed when ``checkpointing`` is True.

    Args:
        block: the module (or function) to run.
        *args: its positional inputs; tensors among them are what checkpointing stores.
        checkpointing: usually ``model.grad_checkpointing_active()``; False runs the block
            directly, so graphs captured in eval mode hold no checkpoint.
        **kwargs: its keyword inputs.
    """
    if not checkpointing:
        return block(*args, **kwargs)
    norms = _updating_norms(block) if isinstance(block, nn.Module) else []
    extra: dict[str, Any] = {}
    # torch.compile accepts only its own selective-checkpoint contexts, so the running
    # statistics are only protected in eager mode; blocks without them need no context.
    if norms and not torch.compiler.is_compiling():
        extra["context_fn"] = functools.partial(_contexts, norms)
    return checkpoint(block, *args, use_reentrant=False, **extra, **kwargs)


def run_blocks(blocks: Iterable[nn.Module], x: Any, *, checkpointing: bool) -> Any:
    """Feed ``x`` through ``blocks`` in order, each checkpointed when ``checkpointing``."""
    for block in blocks:
        x = run_block(block, x, checkpointing=checkpointing)
    return x
