"""Freezing: train only part of a model, and unfreeze it on a schedule (``GradualUnfreeze``).

Frozen parameters get ``requires_grad=False``; frozen BatchNorm layers stay in
eval mode so their running statistics remain those of the pretrained weights.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from modelzoo.errors import ConfigError
from modelzoo.transfer.parts import head_prefixes, is_under, model_label

__all__ = ["freeze", "unfreeze", "trainable_parameter_count", "GradualUnfreeze"]

_logger = logging.getLogger(__name__)


_BN_FROZEN = "_modelzoo_bn_frozen"
_BN_HOOKED = "_modelzoo_bn_hooked"


def _keep_bn_eval(module: nn.Module, _args: object) -> None:
    # model.train() reaches every child; this undoes it for frozen BatchNorm right before
    # use, so their running statistics stay those of the pretrained weights.
    if module.training and getattr(module, _BN_FROZEN, False):
        module.train(False)


def _freeze_bn(module: nn.Module) -> bool:
    if getattr(module, _BN_FROZEN, False):
        return False
    if not getattr(module, _BN_HOOKED, False):
        module.register_forward_pre_hook(_keep_bn_eval)
        setattr(module, _BN_HOOKED, True)
    setattr(module, _BN_FROZEN, True)
    module.train(False)
    return True


def _unfreeze_bn(module: nn.Module, training: bool) -> None:
    if getattr(module, _BN_FROZEN, False):
        setattr(module, _BN_FROZEN, False)
        module.train(training)


def _resolve_module(model: nn.Module, ref: int | str) -> str:
    """A module name from a name or an index into ``feature_info`` (else top-level children)."""
    names = dict(model.named_modules())
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise ConfigError(f"expected a module name or an index; got {ref!r}")
    if isinstance(ref, int):
        info = getattr(model, "feature_info", None)
        if info:
            levels = [f["module"] for f in info]
            what = "feature_info levels"
        else:
            levels = [n for n, c in model.named_children() if any(True for _ in c.parameters())]
            what = "top-level children with parameters"
        if not -len(levels) <= ref < len(levels):
            raise ConfigError(
                f"index {ref} is out of range: {model_label(model)} has {len(levels)} {what} "
                f"({', '.join(levels)})"
            )
        ref = levels[ref]
        if ref not in names and f"model.{ref}" in names:  # feature_info of a FeatureListNet
            ref = f"model.{ref}"
    if ref not in names:
        close = difflib.get_close_matches(ref, [n for n in names if n], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{model_label(model)} has no module named {ref!r}.{hint} See "
            "[name for name, _ in model.named_modules()]."
        )
    return ref


def _freeze(
    model: nn.Module, up_to: int | str | None, freeze_bn: bool
) -> tuple[list[str], list[str]]:
    """Freeze; return the parameters and BatchNorm modules that this call froze."""
    modules = list(model.named_modules())
    if up_to is None:
        head = head_prefixes(model)
        if not head or not any(is_under(n, head) for n, _ in model.named_parameters()):
            raise ConfigError(
                f"{model_label(model)} has no classifier head to leave trainable; pass "
                "up_to=<module name or feature level> to say what to freeze"
            )
        in_region = {n for n, _ in modules if not is_under(n, head)}
    else:
        target = _resolve_module(model, up_to)
        order = [n for n, _ in modules]
        end = order.index(target)
        # named_modules() is pre-order, so the target's submodules follow it contiguously.
        while end + 1 < len(order) and is_under(order[end + 1], (target,)):
            end += 1
        in_region = set(order[: end + 1])
    frozen_params = []
    for name, param in model.named_parameters():
        owner = name.rpartition(".")[0]
        if owner in in_region and param.requires_grad:
            param.requires_grad_(False)
            frozen_params.append(name)
    frozen_bn = []
    if freeze_bn:
        for name, module in modules:
            if name in in_region and isinstance(module, _BatchNorm) and _freeze_bn(module):
                frozen_bn.append(name)
    return frozen_params, frozen_bn


def freeze(
    model: nn.Module, up_to: int | str | None = None, *, freeze_bn: bool = True
) -> list[str]:
    """Stop training part of a model (``requires_grad=False``).

    Args:
        model: the model.
        up_to: None freezes everything but the classifier head (a linear probe);
            a module name (``"layer2"``, ``"blocks.3"``) or an index into
            ``feature_info`` (else into the top-level children) freezes that
            module and every parameter registered before it (the stem, the
            embeddings).
        freeze_bn: keep frozen BatchNorm layers in eval mode, so their running
            statistics do not drift: a forward pre-hook switches them back to
            eval even after ``model.train()``. ``unfreeze`` lifts it.

    Returns:
        The names of the parameters this call froze.
    """
    return _freeze(model, up_to, freeze_bn)[0]


def unfreeze(model: nn.Module, modules: int | str | Sequence[int | str] | None = None) -> list[str]:
    """Train again the parameters (and BatchNorm statistics) of ``modules`` (default: all).

    Returns:
        The names of the parameters this call unfroze.
    """
    if modules is None:
        prefixes: tuple[str, ...] = ("",)
    else:
        refs = [modules] if isinstance(modules, (int, str)) else list(modules)
        prefixes = tuple(_resolve_module(model, r) for r in refs)
    names = []
    for name, param in model.named_parameters():
        if is_under(name, prefixes) and not param.requires_grad:
            param.requires_grad_(True)
            names.append(name)
    for name, module in model.named_modules():
        if is_under(name, prefixes):
            _unfreeze_bn(module, model.training)
    return names


def trainable_parameter_count(model: nn.Module) -> int:
    """How many parameter values an optimizer would update (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class GradualUnfreeze:
    """Train only the head first, then everything: a callback for the trainer.

    Construction freezes (as :func:`freeze` with ``up_to``). The state depends
    only on the position in training: the backbone is frozen while
    ``step < unfreeze_at_step`` (or ``epoch < unfreeze_at_epoch``), so a run
    resumed from a checkpoint lands in the same state as the uninterrupted one.

    Hooks: ``on_step(trainer, step)`` before each optimizer step, ``step``
    being the number of steps taken so far; ``on_epoch_start(trainer, epoch)``
    with the 0-based epoch. Or call :meth:`apply` yourself. An optimizer built
    over all parameters works throughout: frozen ones get no gradient, and
    optimizers skip parameters whose ``grad`` is None (build it with
    ``param_groups(model, lr)``, which includes frozen parameters).

    Only what this object froze is unfrozen; parameters frozen elsewhere stay so.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        unfreeze_at_step: int | None = None,
        unfreeze_at_epoch: int | None = None,
        up_to: int | str | None = None,
        freeze_bn: bool = True,
    ) -> None:
        if (unfreeze_at_step is None) == (unfreeze_at_epoch is None):
            raise ConfigError("give exactly one of unfreeze_at_step and unfreeze_at_epoch")
        self.model = model
        self.unfreeze_at_step = unfreeze_at_step
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.up_to = up_to
        self.freeze_bn = freeze_bn
        self._params: list[str] = []
        self._bn: list[str] = []
        self._set(frozen=True)

    @property
    def frozen(self) -> bool:
        """Whether the backbone is frozen now."""
        return self._frozen

    def _set(self, *, frozen: bool) -> None:
        if getattr(self, "_frozen", None) is frozen:
            return
        if frozen:
            self._params, self._bn = _freeze(self.model, self.up_to, self.freeze_bn)
        else:
            params = dict(self.model.named_parameters())
            modules = dict(self.model.named_modules())
            for name in self._params:
                params[name].requires_grad_(True)
            for name in self._bn:
                _unfreeze_bn(modules[name], self.model.training)
            self._params, self._bn = [], []
        self._frozen = frozen
        _logger.info("backbone %s", "frozen" if frozen else "unfrozen")

    def apply(self, step: int | None = None, *, epoch: int | None = None) -> bool:
        """Set the state for this position; returns whether the backbone is frozen."""
        if self.unfreeze_at_step is not None:
            if step is None:
                raise ConfigError("this schedule counts steps: call apply(step)")
            self._set(frozen=step < self.unfreeze_at_step)
        else:
            if epoch is None:
                raise ConfigError("this schedule counts epochs: call apply(epoch=epoch)")
            self._set(frozen=epoch < self.unfreeze_at_epoch)
        return self._frozen

    def on_step(self, trainer: object, step: int) -> None:
        """Trainer hook: before the optimizer step after ``step`` steps."""
        if self.unfreeze_at_step is not None:
            self.apply(step)

    def on_epoch_start(self, trainer: object, epoch: int) -> None:
        """Trainer hook: at the start of epoch ``epoch`` (0-based)."""
        if self.unfreeze_at_epoch is not None:
            self.apply(epoch=epoch)
