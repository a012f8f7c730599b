"""Optimizer parameter groups: weight decay on weights only, layer-wise learning-rate decay.

``param_groups`` is what ``build_optimizer`` uses for every run; with
``layer_decay`` (``train.layer_decay`` in a recipe) learning rates shrink by
that factor per layer going from the head to the input, as in BEiT/timm.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.transfer.parts import head_prefixes, is_under

__all__ = ["layer_ids", "param_groups", "DEFAULT_NO_WEIGHT_DECAY"]

# Learned tokens and position tables: decaying them toward zero has no regularizing meaning.
DEFAULT_NO_WEIGHT_DECAY = ("cls_token", "dist_token", "reg_token", "mask_token", "pos_embed")


def _has_params(module: nn.Module, recurse: bool = True) -> bool:
    return any(True for _ in module.parameters(recurse=recurse))


def _is_stack(module: nn.Module) -> bool:
    """A sequence of blocks (ViT ``blocks``, a ResNet stage, VGG ``features``)."""
    return isinstance(module, (nn.Sequential, nn.ModuleList)) and (
        sum(_has_params(c) for c in module.children()) >= 2
    )


def layer_ids(model: nn.Module) -> dict[str, int]:
    """The depth of each parameter for layer-wise learning rates: 0 is the input end.

    The stem (everything before the first stack of blocks, and parameters of
    the model itself such as ``cls_token``) is layer 0; each block of a stack
    (``blocks.N``, ``layerK.N``, ``features.N``) is a layer; what follows the
    last stack (final norm, head) is the last layer, and the classifier head is
    always last. Models without stacks get one layer per top-level child.
    """
    root, prefix = model, ""
    while True:  # see through single-child wrappers such as FeatureListNet
        kids = [(n, c) for n, c in root.named_children() if _has_params(c)]
        if len(kids) == 1 and not _has_params(root, recurse=False) and not _is_stack(kids[0][1]):
            prefix = f"{prefix}{kids[0][0]}."
            root = kids[0][1]
            continue
        break
    stacks = [i for i, (_, c) in enumerate(kids) if _is_stack(c)]
    units: list[list[str]] = []
    if not stacks:
        units = [[prefix + n] for n, _ in kids]
    else:
        units.append([prefix + n for n, _ in kids[: stacks[0]]])
        for n, child in kids[stacks[0] : stacks[-1] + 1]:
            if _is_stack(child):
                units += [
                    [f"{prefix}{n}.{cn}"] for cn, c in child.named_children() if _has_params(c)
                ]
            else:
                units.append([prefix + n])
        units.append([prefix + n for n, _ in kids[stacks[-1] + 1 :]])
    units = [u for u in units if u] or [[prefix.rstrip(".")]]
    head = head_prefixes(model)
    last = len(units) - 1
    ids: dict[str, int] = {}
    for name, _ in model.named_parameters():
        if is_under(name, head):
            ids[name] = last
        else:
            ids[name] = next((i for i, u in enumerate(units) if is_under(name, u)), 0)
    return ids


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(
        name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns
    )


def param_groups(
    model: nn.Module | Iterable[tuple[str, nn.Parameter]],
    lr: float,
    *,
    weight_decay: float = 0.0,
    layer_decay: float | None = None,
    no_weight_decay: Iterable[str] = DEFAULT_NO_WEIGHT_DECAY,
    trainable_only: bool = False,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: decay only on weights, optional layer-wise learning rates.

    This is how every optimizer of the trainer is built (``build_optimizer``), so a
    run's groups follow from its model and ``train`` section alone and a resumed run
    rebuilds the same ones.

    Args:
        model: the model, or its named parameters (then without ``layer_decay``, which
            needs the model's structure).
        lr: the learning rate of the head (of every group without ``layer_decay``).
        weight_decay: applied to parameters with ``ndim >= 2``; biases, norm
            scales, and names matching ``no_weight_decay`` or the model's own
            ``no_weight_decay()`` (e.g. ``pos_embed``) get none.
        layer_decay: multiply the learning rate by this once per layer going
            from the head to the input (see :func:`layer_ids`); e.g. 0.75.
        no_weight_decay: parameter names, module prefixes or fnmatch patterns kept
            free of decay besides those with ``ndim < 2`` (default: class and
            register tokens and ``pos_embed``; pass ``()`` to decay them).
        trainable_only: leave out frozen parameters; by default they are kept, so
            an optimizer built now still trains them after ``unfreeze``.

    Returns:
        Groups with ``params``, ``lr``, ``weight_decay``, ``lr_scale`` (the
        layer factor, for schedulers that set ``lr`` themselves) and ``name``;
        per layer (input first) the group of decayed weights comes before the
        group of the others. Which parameters share a group depends on the model
        only, not on the value of ``weight_decay`` (with 0 the weights' group
        gets 0), so changing it between runs keeps the optimizer's layout.
    """
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise ConfigError(
            f"layer_decay={layer_decay!r} is out of range: expected a number > 0 and <= 1, "
            "e.g. 0.75 (1 gives every layer the same learning rate)"
        )
    skip = set(no_weight_decay)
    if isinstance(model, nn.Module):
        own = getattr(model, "no_weight_decay", None)
        if callable(own):
            skip |= set(own())
        named = list(model.named_parameters())
        ids = layer_ids(model) if layer_decay is not None else {}
    else:
        if layer_decay is not None:
            raise ConfigError(
                "layer_decay needs the model, to tell its layers apart; pass the module to "
                "param_groups instead of its named parameters"
            )
        named = list(model)
        ids = {}
    top = max(ids.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in named:
        if trainable_only and not param.requires_grad:
            continue
        decay = param.ndim >= 2 and not _matches(name, skip)
        layer = ids.get(name, top)
        scale = layer_decay ** (top - layer) if layer_decay is not None else 1.0
        group = groups.setdefault(
            (layer, not decay),  # the decayed weights' group first, as optimizers always had it
            {
                "name": f"layer{layer}_{'decay' if decay else 'no_decay'}",
                "params": [],
                "lr": lr * scale,
                "lr_scale": scale,
                "weight_decay": weight_decay if decay else 0.0,
            },
        )
        group["params"].append(param)
    return [groups[k] for k in sorted(groups)]
