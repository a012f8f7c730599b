"""Transfer learning: pretrained weights into a changed model, freezing, layer-wise learning rates.

Loading (``load_pretrained``) resolves a weight set, a file, a directory or a
URL through ``modelzoo.weights.fetch``, reads it, finds the state dict inside
a trainer checkpoint, strips ``module.`` (DDP) and ``_orig_mod.``
(``torch.compile``) prefixes, then fits it to the model key by key:

- same name and shape: loaded;
- the first convolution with another input-channel count: adapted with
  :func:`adapt_input_conv_weight` (e.g. RGB weights for grey images);
- classifier-head tensors of another shape (``num_classes`` changed): the
  model keeps its fresh initialization ("re-initialized");
- in the file but not the model: dropped; in the model but not the file:
  missing (kept at initialization, logged as a warning, as Hugging Face does);
- any other shape difference raises ``WeightsError``, even with
  ``strict=False``: adapting a hidden layer silently would give a model that
  looks pretrained and is not. So does a file in which no backbone parameter
  fits (weights of another architecture).

``strict=True`` refuses every difference. Nothing is written into the model
until every key has been checked, so a failed load leaves it untouched.

Freezing (``freeze``/``unfreeze``/``GradualUnfreeze``) sets ``requires_grad``
and keeps frozen BatchNorm layers in eval mode (see :func:`freeze`);
``param_groups`` builds optimizer groups without weight decay on biases and
norms and, with ``layer_decay``, smaller learning rates far from the head.
``save_pretrained``/``from_pretrained`` use the Hugging Face hub-mixin layout:
``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from modelzoo.errors import ConfigError, ModelzooError, WeightsError

__all__ = [
    "adapt_input_conv_weight",
    "adapt_input_conv",
    "AdaptedKey",
    "ReinitializedKey",
    "LoadReport",
    "load_pretrained",
    "read_state_dict",
    "freeze",
    "unfreeze",
    "trainable_parameter_count",
    "GradualUnfreeze",
    "layer_ids",
    "param_groups",
    "extract_features",
    "save_pretrained",
    "from_pretrained",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
]

_logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"  # Hugging Face's sharded layout
_OTHER_WEIGHT_NAMES = ("pytorch_model.bin", "model.pth", "model.pt")
# Where trainer checkpoints keep the model's state dict, in order of preference: the raw
# weights before any EMA copy ("ema", "state_dict_ema"), which a user asks for explicitly.
_NESTED_STATE_KEYS = ("model", "state_dict", "model_state_dict", "module", "net", "network")
_CONFIG_FORMAT = 1
# Learned tokens and position tables: decaying them toward zero has no regularizing meaning.
DEFAULT_NO_WEIGHT_DECAY = ("cls_token", "dist_token", "reg_token", "mask_token", "pos_embed")


# --------------------------------------------------------------------------------------
# Input-layer adaptation
# --------------------------------------------------------------------------------------


def adapt_input_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Map a first-layer weight ``(out, c, *kernel)`` to ``in_chans`` input channels.

    Fewer channels fold the old ones onto the new (channel ``i`` is added to
    ``i % in_chans``; to one channel: the sum), so a grey image gives the
    response its RGB replica gave. More channels repeat the old ones
    cyclically and rescale by ``c / in_chans``, which keeps the activation
    scale (exactly so when the new input repeats the old channels).
    """
    if in_chans < 1:
        raise ValueError(f"in_chans must be at least 1; got {in_chans}")
    old = weight.shape[1]
    if in_chans == old:
        return weight.clone()
    if in_chans < old:
        folded = weight.new_zeros((weight.shape[0], in_chans, *weight.shape[2:]))
        for i in range(old):
            folded[:, i % in_chans] += weight[:, i]
        return folded
    repeats = math.ceil(in_chans / old)
    tiled = weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))
    return tiled[:, :in_chans] * (old / in_chans)


def adapt_input_conv(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_chans`` channels, its weights adapted."""
    if conv.groups != 1:
        raise ValueError("adapting a grouped first convolution is not supported")
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv_weight(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _adapt_reason(old: int, new: int) -> str:
    if new < old:
        how = "summed" if new == 1 else f"folded (channel i added to i mod {new})"
        return f"input channels {old} -> {new}: pretrained channels {how}"
    return f"input channels {old} -> {new}: pretrained channels repeated, scaled by {old}/{new}"


# --------------------------------------------------------------------------------------
# The load report
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptedKey:
    """A tensor loaded after a change of shape (the first convolution's input channels)."""

    key: str
    from_shape: tuple[int, ...]
    to_shape: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class ReinitializedKey:
    """A classifier-head tensor whose file shape differs; the model keeps its initialization."""

    key: str
    file_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class LoadReport:
    """What ``load_pretrained`` did with each tensor.

    Attributes:
        source: the weights, as ``arch.tag``, a path or a URL.
        loaded: model keys set from the file unchanged.
        adapted: model keys set from a reshaped file tensor.
        reinitialized: head keys left at the model's initialization.
        dropped: file keys the model does not have.
        missing: model keys the file does not have (left at initialization).
    """

    source: str
    loaded: tuple[str, ...] = ()
    adapted: tuple[AdaptedKey, ...] = ()
    reinitialized: tuple[ReinitializedKey, ...] = ()
    dropped: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """Whether every tensor of the model came from the file unchanged."""
        return not (self.adapted or self.reinitialized or self.dropped or self.missing)

    def __str__(self) -> str:
        total = len(self.loaded) + len(self.adapted)
        lines = [f"loaded {total} tensors from {self.source} ({len(self.adapted)} adapted)"]
        for a in self.adapted:
            lines.append(f"  adapted {a.key}: {a.from_shape} -> {a.to_shape} ({a.reason})")
        for r in self.reinitialized:
            lines.append(
                f"  re-initialized {r.key}: file {r.file_shape}, model {r.model_shape} ({r.reason})"
            )
        for title, keys in (
            ("dropped (not in the model)", self.dropped),
            ("missing", self.missing),
        ):
            if keys:
                shown = ", ".join(keys[:10]) + (
                    f", ... {len(keys) - 10} more" if len(keys) > 10 else ""
                )
                lines.append(f"  {title}: {shown}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Resolving and reading weights
# --------------------------------------------------------------------------------------


def _is_weight_set(source: object) -> bool:
    return all(hasattr(source, a) for a in ("arch", "tag", "files"))


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://", "file://"))


def _model_label(model: nn.Module) -> str:
    return getattr(model, "model_name", None) or type(model).__name__


def _safe_weight_sets(arch: str | None) -> list[Any]:
    if not arch:
        return []
    from modelzoo.weights import weight_sets

    try:
        return list(weight_sets(arch))
    except ModelzooError:  # e.g. an external name the weights registry does not know
        return []


def _safe_is_tag(arch: str | None, tag: str) -> bool:
    if not arch:
        return False
    from modelzoo.weights import is_tag

    try:
        return bool(is_tag(arch, tag))
    except ModelzooError:
        return False


def _first_conv_hint(spec: object) -> str | None:
    """The first convolution a weight set's input spec names, if it names one."""
    if isinstance(spec, Mapping):
        value = spec.get("first_conv")
    else:
        value = getattr(spec, "first_conv", None)
    return value if isinstance(value, str) and value else None


def _fetch(source: object) -> Path:
    """The one way to a verified local file (cache, lock, offline rules: modelzoo.weights)."""
    from modelzoo.weights import fetch

    return fetch(source)


def _directory_files(directory: Path) -> list[Path]:
    if (directory / WEIGHTS_NAME).is_file():
        return [_fetch(directory / WEIGHTS_NAME)]
    index = directory / WEIGHTS_INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as err:
            raise WeightsError(f"{index} is not a valid shard index: {err}") from err
        return [_fetch(directory / name) for name in sorted(set(weight_map.values()))]
    for name in _OTHER_WEIGHT_NAMES:
        if (directory / name).is_file():
            return [_fetch(directory / name)]
    found = sorted(p.name for p in directory.iterdir())[:20]
    raise WeightsError(
        f"{directory} holds no {WEIGHTS_NAME} (the save_pretrained layout); it contains "
        f"{found or 'nothing'}. Pass the weight file itself (pretrained='{directory}/<file>')."
    )


def _unknown_source_message(model: nn.Module, text: str) -> str:
    arch = getattr(model, "model_name", None)
    sets = _safe_weight_sets(arch)
    if sets:
        tags = ", ".join(f"{w.tag!r}" for w in sets)
        known = f"The weight sets of {arch} are {tags} (create('{arch}.<tag>'))."
    else:
        known = f"{arch or _model_label(model)} has no pretrained weight sets."
    return (
        f"pretrained={text!r} is not a weight tag of {arch or _model_label(model)}, an existing "
        f"file or directory, a file in MODELZOO_WEIGHTS_DIR, or a URL. {known} To load your "
        "own weights pass a file (pretrained='path/to/model.safetensors' or a .pth/.ckpt), a "
        "save_pretrained directory, or a URL."
    )


def _resolve_source(model: nn.Module, source: object) -> tuple[list[Path], str, Any]:
    """The local files of ``source``, a label for messages, and its weight set (or None)."""
    if _is_weight_set(source):
        label = f"{source.arch}.{source.tag}"
        if not source.files:
            raise WeightsError(f"weight set {label} lists no files; its card is incomplete")
        return [_fetch(f) for f in source.files], label, source
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = text.decode()
        if _is_url(text):
            return [_fetch(text)], text, None
        path = Path(text).expanduser()
        if path.is_dir():
            return _directory_files(path), str(path), None
        if path.exists():
            return [_fetch(path)], str(path), None
        arch = getattr(model, "model_name", None)
        if isinstance(source, str) and _safe_is_tag(arch, text):
            from modelzoo.weights import get_weight_set

            return _resolve_source(model, get_weight_set(arch, text))
        if len(path.parts) == 1 and path.suffix:
            # A bare file name: fetch looks it up in MODELZOO_WEIGHTS_DIR.
            from modelzoo.errors import IntegrityError

            try:
                return [_fetch(text)], text, None
            except IntegrityError:
                raise
            except WeightsError:
                pass
        raise WeightsError(_unknown_source_message(model, text))
    raise WeightsError(
        f"pretrained must be a weight tag, a path, a URL or a weight set; got "
        f"{type(source).__name__}"
    )


def _extract_state_dict(obj: object, where: str) -> dict[str, torch.Tensor]:
    """The flat tensor mapping inside a state dict or a trainer checkpoint."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{where} holds a {type(obj).__name__}, not a state dict")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}
    for key in _NESTED_STATE_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner:
            return _extract_state_dict(inner, f"{where}[{key!r}]")
    keys = ", ".join(repr(k) for k in list(obj)[:10]) or "none"
    raise WeightsError(
        f"found no state dict in {where}: its top-level keys are {keys}. Expected a mapping of "
        f"names to tensors, or a checkpoint holding one under "
        f"{', '.join(repr(k) for k in _NESTED_STATE_KEYS[:3])}."
    )


_COMPILE_PREFIX = re.compile(r"(^|\.)_orig_mod\.")


def _normalize_keys(state: Mapping[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """Strip the wrappers' prefixes: DDP's ``module.`` and torch.compile's ``_orig_mod.``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        while new.startswith("module."):
            new = new[len("module.") :]
        new = _COMPILE_PREFIX.sub(r"\1", new)
        if new in out:
            raise WeightsError(f"{where} holds {new!r} twice (once as {key!r}) after stripping")
        out[new] = value
    return out


def read_state_dict(paths: Path | str | Sequence[Path | str]) -> dict[str, torch.Tensor]:
    """Read one or several weight files into one flat state dict.

    Trainer checkpoints are unwrapped and wrapper prefixes stripped (see the
    module docstring). Several files are merged; a key in two files raises.
    """
    from modelzoo.weights import read_weights

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    state: dict[str, torch.Tensor] = {}
    for path in paths:
        tensors = _normalize_keys(_extract_state_dict(read_weights(path), str(path)), str(path))
        overlap = sorted(state.keys() & tensors.keys())
        if overlap:
            raise WeightsError(
                f"{path} repeats keys of another file of the same weights ({', '.join(overlap[:5])}"
                "); a weight set's files must hold disjoint parts of the model"
            )
        state.update(tensors)
    return state


def _align_prefix(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Add or strip a ``model.`` prefix (a FeatureListNet's) when that matches more keys."""
    candidates = [state]
    if state and all(k.startswith("model.") for k in state):
        candidates.append({k[len("model.") :]: v for k, v in state.items()})
    if any(k.startswith("model.") for k in model_keys):
        candidates.append({f"model.{k}": v for k, v in state.items()})
    # max() keeps the first of equals: the keys as they are, unless a prefix matches more.
    return max(candidates, key=lambda s: len(s.keys() & model_keys))


# --------------------------------------------------------------------------------------
# Which keys are the head and the input layer
# --------------------------------------------------------------------------------------


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def _head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Dotted names of the classifier head: ``get_classifier()``, else the last Linear."""
    for prefix, module in model.named_modules():
        getter = getattr(module, "get_classifier", None)
        if not callable(getter):
            continue
        try:
            classifier = getter()
        except Exception:  # a model whose get_classifier needs arguments, or fails
            break
        if isinstance(classifier, nn.Module):
            for name, sub in module.named_modules():
                if sub is classifier and name:
                    return (f"{prefix}.{name}" if prefix else name,)
        break
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return (last,) if last else ()


def _first_conv_key(model: nn.Module, hint: str | None, model_keys: set[str]) -> str | None:
    """The weight key of the model's input convolution (a hint from the weights wins)."""
    cfg = getattr(model, "pretrained_cfg", None)  # timm models name theirs
    if hint is None and isinstance(cfg, Mapping) and isinstance(cfg.get("first_conv"), str):
        hint = cfg["first_conv"]
    if hint:
        key = hint if hint.endswith(".weight") else f"{hint}.weight"
        for candidate in (key, f"model.{key}"):
            if candidate in model_keys:
                return candidate
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return f"{name}.weight" if module.groups == 1 else None
    return None


def _alias_groups(model: nn.Module) -> dict[str, set[str]]:
    """For each state-dict key, the keys that share its tensor (tied weights)."""
    by_id: dict[int, set[str]] = {}
    tensors = model.state_dict(keep_vars=True)
    for key, tensor in tensors.items():
        by_id.setdefault(id(tensor), set()).add(key)
    return {key: by_id[id(tensor)] for key, tensor in tensors.items()}


def _adaptable(file_shape: torch.Size, model_shape: torch.Size) -> bool:
    return (
        len(file_shape) == len(model_shape) >= 3
        and file_shape[0] == model_shape[0]
        and file_shape[2:] == model_shape[2:]
    )


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def load_pretrained(model: nn.Module, source: object, *, strict: bool = False) -> LoadReport:
    """Load weights into ``model``, adapting the head and the input layer.

    Args:
        model: the model to fill (built with the caller's ``num_classes``/``in_chans``).
        source: a weight set (``modelzoo.weights``), a weight tag of the model's
            architecture, a local file (safetensors, or .pt/.pth/.bin/.ckpt loaded with
            ``weights_only=True``), a ``save_pretrained`` directory, or an http(s) URL.
        strict: refuse any missing, unexpected or reshaped key instead of adapting.

    Returns:
        A :class:`LoadReport` of what was loaded, adapted, re-initialized, dropped and missing.

    Raises:
        WeightsError: the source cannot be found or read; with ``strict``, any
            difference (each key named with both shapes); without, a shape
            difference outside the head and the first convolution, or weights in
            which no backbone parameter fits. The model is left unchanged.
    """
    paths, label, weight_set = _resolve_source(model, source)
    state = read_state_dict(paths)
    if not state:
        raise WeightsError(f"{label} holds no tensors")

    model_state = model.state_dict()
    model_keys = set(model_state)
    state = _align_prefix(state, model_keys)
    head = _head_prefixes(model)
    hint = _first_conv_hint(getattr(weight_set, "input_spec", None))
    first_conv = _first_conv_key(model, hint, model_keys)

    to_load: dict[str, torch.Tensor] = {}
    loaded: list[str] = []
    adapted: list[AdaptedKey] = []
    reinitialized: list[ReinitializedKey] = []
    dropped: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for key, tensor in state.items():
        target = model_state.get(key)
        if target is None:
            dropped.append(key)
        elif tensor.shape == target.shape:
            to_load[key] = tensor
            loaded.append(key)
        elif not strict and key == first_conv and _adaptable(tensor.shape, target.shape):
            to_load[key] = adapt_input_conv_weight(tensor, target.shape[1])
            reason = _adapt_reason(tensor.shape[1], target.shape[1])
            adapted.append(AdaptedKey(key, _shape(tensor), _shape(target), reason))
        elif not strict and _under(key, head):
            reason = "classifier head of another size: num_classes differs"
            reinitialized.append(ReinitializedKey(key, _shape(tensor), _shape(target), reason))
        else:
            mismatched.append((key, _shape(tensor), _shape(target)))

    aliases = _alias_groups(model)
    missing = [
        key
        for key in model_state
        if key not in state
        and not (aliases[key] & to_load.keys())  # a tied weight loaded under its other name
        and not key.endswith("num_batches_tracked")  # old BatchNorm files lack this counter
    ]
    name = _model_label(model)
    if strict and (mismatched or missing or dropped):
        raise WeightsError(
            _strict_message(name, label, mismatched, missing, dropped, model_state, state)
        )
    if mismatched:
        lines = "\n".join(f"  {k}: file {f}, model {m}" for k, f, m in mismatched)
        built_with = getattr(weight_set, "model_kwargs", None)
        hint_args = f" ({built_with})" if built_with else ""
        raise WeightsError(
            f"cannot load {label} into {name}: {len(mismatched)} tensor(s) outside the classifier "
            f"head and the first convolution have another shape in the file than in the model:\n"
            f"{lines}\nOnly the head (re-initialized) and the first convolution's input channels "
            f"(adapted) may differ. Build the model with the arguments the weights were made "
            f"with{hint_args}. The model was left unchanged."
        )
    params = {n for n, _ in model.named_parameters()}
    backbone = {n for n in params if not _under(n, head)} or params
    fitted = {k for k in to_load if aliases[k] & backbone}
    if backbone and not fitted:
        raise WeightsError(
            f"none of the {len(state)} tensors in {label} fits a parameter of {name} outside "
            f"its classifier head: are these weights of another architecture? The file's keys "
            f"look like {', '.join(list(state)[:4])}; the model's like "
            f"{', '.join(list(model_state)[:4])}. The model was left unchanged."
        )

    with torch.no_grad():
        model.load_state_dict(to_load, strict=False)
    report = LoadReport(
        source=label,
        loaded=tuple(loaded),
        adapted=tuple(adapted),
        reinitialized=tuple(reinitialized),
        dropped=tuple(dropped),
        missing=tuple(missing),
    )
    surprising = [k for k in (*missing, *dropped) if not _under(k, head)]
    if surprising:
        _logger.warning(
            "%s: %d tensor(s) outside the head do not match by name (missing from the file, "
            "left at their initialization: %s; not in the model, ignored: %s); fine-tune before "
            "use or check that the weights fit this architecture",
            name,
            len(surprising),
            [k for k in missing if not _under(k, head)][:10],
            [k for k in dropped if not _under(k, head)][:10],
        )
    _logger.info("%s: %s", name, report)
    return report


def _strict_message(
    name: str,
    label: str,
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    missing: list[str],
    dropped: list[str],
    model_state: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
) -> str:
    lines = [f"cannot load {label} into {name} with strict=True:"]
    lines += [f"  shape differs: {k}: file {f}, model {m}" for k, f, m in mismatched]
    lines += [f"  missing from the file: {k} (model {_shape(model_state[k])})" for k in missing]
    lines += [f"  not in the model: {k} (file {_shape(state[k])})" for k in dropped]
    lines.append(
        "The model was left unchanged. Pass strict=False to re-initialize a head of another "
        "size and adapt the first convolution's input channels, or build the model with the "
        "arguments the weights were made with."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Freezing
# --------------------------------------------------------------------------------------

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
                f"index {ref} is out of range: {_model_label(model)} has {len(levels)} {what} "
                f"({', '.join(levels)})"
            )
        ref = levels[ref]
        if ref not in names and f"model.{ref}" in names:  # feature_info of a FeatureListNet
            ref = f"model.{ref}"
    if ref not in names:
        close = difflib.get_close_matches(ref, [n for n in names if n], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{_model_label(model)} has no module named {ref!r}.{hint} See "
            "[name for name, _ in model.named_modules()]."
        )
    return ref


def _freeze(
    model: nn.Module, up_to: int | str | None, freeze_bn: bool
) -> tuple[list[str], list[str]]:
    """Freeze; return the parameters and BatchNorm modules that this call froze."""
    modules = list(model.named_modules())
    if up_to is None:
        head = _head_prefixes(model)
        if not head or not any(_under(n, head) for n, _ in model.named_parameters()):
            raise ConfigError(
                f"{_model_label(model)} has no classifier head to leave trainable; pass "
                "up_to=<module name or feature level> to say what to freeze"
            )
        in_region = {n for n, _ in modules if not _under(n, head)}
    else:
        target = _resolve_module(model, up_to)
        order = [n for n, _ in modules]
        end = order.index(target)
        # named_modules() is pre-order, so the target's submodules follow it contiguously.
        while end + 1 < len(order) and _under(order[end + 1], (target,)):
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
        if _under(name, prefixes) and not param.requires_grad:
            param.requires_grad_(True)
            names.append(name)
    for name, module in model.named_modules():
        if _under(name, prefixes):
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


# --------------------------------------------------------------------------------------
# Parameter groups
# --------------------------------------------------------------------------------------


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
    head = _head_prefixes(model)
    last = len(units) - 1
    ids: dict[str, int] = {}
    for name, _ in model.named_parameters():
        if _under(name, head):
            ids[name] = last
        else:
            ids[name] = next((i for i, u in enumerate(units) if _under(name, u)), 0)
    return ids


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(
        name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns
    )


def param_groups(
    model: nn.Module,
    lr: float,
    *,
    weight_decay: float = 0.0,
    layer_decay: float | None = None,
    no_weight_decay: Iterable[str] = DEFAULT_NO_WEIGHT_DECAY,
    trainable_only: bool = False,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: decay only on weights, optional layer-wise learning rates.

    Args:
        model: the model.
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
        layer factor, for schedulers that set ``lr`` themselves) and ``name``.
    """
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise ConfigError(f"layer_decay must be in (0, 1]; got {layer_decay}")
    skip = set(no_weight_decay)
    own = getattr(model, "no_weight_decay", None)
    if callable(own):
        skip |= set(own())
    ids = layer_ids(model) if layer_decay is not None else {}
    top = max(ids.values(), default=0)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if trainable_only and not param.requires_grad:
            continue
        decay = weight_decay > 0 and param.ndim >= 2 and not _matches(name, skip)
        layer = ids.get(name, top)
        scale = layer_decay ** (top - layer) if layer_decay is not None else 1.0
        group = groups.setdefault(
            (layer, decay),
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


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def extract_features(model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """Pooled features before the classifier: ``forward_head(..., pre_logits=True)``.

    The model's mode and autograd are left to the caller (``model.eval()``,
    ``torch.no_grad()``).
    """
    features = getattr(model, "forward_features", None)
    head = getattr(model, "forward_head", None)
    if not (callable(features) and callable(head)):
        raise ConfigError(
            f"{_model_label(model)} has no forward_features/forward_head, so it has no pooled "
            "features; use create(name, features_only=True) for feature maps"
        )
    return head(features(*inputs), pre_logits=True)


# --------------------------------------------------------------------------------------
# save_pretrained / from_pretrained
# --------------------------------------------------------------------------------------

_TYPE_MODULES = ("torch.", "modelzoo.")


def _encode(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, key) for v in value]}
    if isinstance(value, list):
        return [_encode(v, key) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, type) and issubclass(value, nn.Module):
        path = f"{value.__module__}.{value.__qualname__}"
        if path.startswith(_TYPE_MODULES):
            return {"__type__": path}
    raise ConfigError(
        f"save_pretrained: the builder argument {key}={value!r} cannot be written to "
        f"{CONFIG_NAME}; pass config={{...}} with JSON values (e.g. act_layer='gelu')"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if set(value) == {"__type__"}:
            return _import_layer_type(value["__type__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _import_layer_type(path: str) -> type[nn.Module]:
    # Only torch and modelzoo classes: config.json may come from anywhere.
    if not isinstance(path, str) or not path.startswith(_TYPE_MODULES):
        raise WeightsError(f"{CONFIG_NAME} names a layer type outside torch/modelzoo: {path!r}")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            return obj
        break
    raise WeightsError(f"{CONFIG_NAME} names layer type {path!r}, which is not an nn.Module class")


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_pretrained(
    model: nn.Module, directory: str | Path, *, config: Mapping[str, Any] | None = None
) -> Path:
    """Write ``config.json`` and ``model.safetensors``, from which ``from_pretrained`` rebuilds.

    Args:
        model: a model made by ``modelzoo.create`` (or a ``features_only`` wrapper of one).
        directory: created if needed; existing files of the same names are replaced.
        config: the builder arguments to record; default ``model.init_kwargs``
            (recorded by ``create``), with ``num_classes`` updated after a
            ``reset_classifier``.

    Returns:
        The directory.

    The files are written to a temporary directory beside the target and then
    renamed into place, so a failure never leaves a half-written file.
    """
    from safetensors.torch import save_model

    from modelzoo.layers.features import FeatureListNet

    inner = model.model if isinstance(model, FeatureListNet) else model
    name = getattr(model, "model_name", None) or getattr(inner, "model_name", None)
    if not name:
        raise ConfigError(
            "save_pretrained needs a model made by modelzoo.create() (it records the model "
            "name); set model.model_name = '<registered name>' and pass config={...}"
        )
    if config is None and not hasattr(inner, "init_kwargs"):
        _logger.warning(
            "save_pretrained: %s records no builder arguments (init_kwargs); pass config={...} "
            "(e.g. num_classes, in_chans) unless it was built with the defaults",
            name,
        )
    kwargs = dict(getattr(inner, "init_kwargs", {}) if config is None else config)
    num_classes = getattr(inner, "num_classes", None)
    if config is None and callable(getattr(inner, "get_classifier", None)):
        if isinstance(num_classes, int) and not isinstance(num_classes, bool):
            kwargs["num_classes"] = num_classes  # reset_classifier() may have changed it
    payload: dict[str, Any] = {
        "model_name": name,
        "model_kwargs": {k: _encode(v, k) for k, v in kwargs.items()},
        "format_version": _CONFIG_FORMAT,
    }
    if isinstance(model, FeatureListNet):
        payload["features_only"] = True
        payload["out_indices"] = list(model.out_indices)

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        # save_model drops the duplicate names of tied weights, which load_pretrained restores.
        save_model(inner, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"}, force_contiguous=True)
        _fsync_write(tmp / CONFIG_NAME, (json.dumps(payload, indent=2) + "\n").encode())
        if not directory.exists():
            try:
                os.rename(tmp, directory)
            except OSError:  # someone created it meanwhile: replace file by file below
                pass
        if tmp.exists():
            for file in (WEIGHTS_NAME, CONFIG_NAME):
                os.replace(tmp / file, directory / file)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _logger.info("saved %s to %s", name, directory)
    return directory


def from_pretrained(
    directory: str | Path, *, strict: bool | None = None, **overrides: Any
) -> nn.Module:
    """Rebuild a model written by :func:`save_pretrained`.

    Args:
        directory: the directory holding ``config.json`` and ``model.safetensors``.
        strict: refuse any difference between file and model; default: strict
            unless ``overrides`` change the model.
        **overrides: builder arguments that replace the recorded ones, e.g.
            ``num_classes=5`` (the head is re-initialized) or ``in_chans=1``
            (the first convolution is adapted).

    Returns:
        The model, with ``load_report`` set.
    """
    import modelzoo

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsError(
            f"{directory} has no {CONFIG_NAME}, so it was not written by save_pretrained; to load "
            f"weights into a model you build, use modelzoo.create(name, pretrained='{directory}')"
        )
    try:
        payload = json.loads(config_path.read_text())
        name = payload["model_name"]
        kwargs = _decode(payload.get("model_kwargs", {}))
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{config_path} is not a valid modelzoo config: {err}") from err
    kwargs.update(overrides)
    model = modelzoo.create(name, **kwargs)
    strict = not overrides if strict is None else strict
    model.load_report = load_pretrained(model, directory, strict=strict)
    if payload.get("features_only") and not overrides.get("features_only"):
        from modelzoo.layers.features import FeatureListNet

        model = FeatureListNet(model, payload.get("out_indices"))
    return model
