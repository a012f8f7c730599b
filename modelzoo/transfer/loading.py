"""Loading pretrained weights into a model that may differ from theirs: ``load_pretrained``.

``load_pretrained`` resolves a weight set, a file, a directory or a URL through
``modelzoo.weights.fetch``, reads it, finds the state dict inside a trainer
checkpoint, strips ``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``)
prefixes, then fits it to the model key by key:

- same name and shape: loaded;
- the first convolution with another input-channel count: adapted with
  :func:`~modelzoo.transfer.adapt.adapt_input_conv_weight` (e.g. RGB weights for grey images);
- a ViT's position embedding for another patch grid (the model built with another
  ``img_size``): resampled with
  :func:`~modelzoo.transfer.adapt.resample_position_embedding` (bicubic, as timm does);
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
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import IntegrityError, ModelzooError, WeightsError
from modelzoo.transfer.adapt import (
    adapt_input_conv_weight,
    adapt_reason,
    resample_position_embedding,
)
from modelzoo.transfer.parts import first_conv_key, head_prefixes, is_under, model_label
from modelzoo.utils.io import UnsafeNameError, safe_file_name
from modelzoo.weights.layout import WEIGHTS_NAME

__all__ = [
    "AdaptedKey",
    "ReinitializedKey",
    "LoadReport",
    "load_pretrained",
    "read_state_dict",
    "WEIGHTS_NAME",
    "WEIGHTS_INDEX_NAME",
]

_logger = logging.getLogger(__name__)

WEIGHTS_INDEX_NAME = "model.safetensors.index.json"  # Hugging Face's sharded layout
_OTHER_WEIGHT_NAMES = ("pytorch_model.bin", "model.pth", "model.pt")
# Where other programs' checkpoints keep the model's state dict, in order of preference.
# modelzoo's own trainer checkpoints are read by train.checkpoint.evaluation_weights: the
# weights the run evaluated (the EMA copy when it kept one), which chose best.ckpt.
_NESTED_STATE_KEYS = ("model", "state_dict", "model_state_dict", "module", "net", "network")


@dataclass(frozen=True)
class AdaptedKey:
    """A tensor loaded after a change of shape (the first convolution's input channels, or a
    ViT's position embedding resampled to another patch grid)."""

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


def _is_weight_set(source: object) -> bool:
    return all(hasattr(source, a) for a in ("arch", "tag", "files"))


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://", "file://"))


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


def _shard_names(index: Path) -> list[str]:
    """The shard file names a ``model.safetensors.index.json`` lists, each a bare name.

    The index comes from outside: a shard name is only ever a file in the same folder.
    """
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise WeightsError(f"{index} is not a valid shard index: {err}") from err
    if not isinstance(weight_map, Mapping) or not weight_map:
        raise WeightsError(
            f"{index} is not a valid shard index: 'weight_map' must map tensor names to shard "
            "file names"
        )
    if not all(isinstance(v, str) for v in weight_map.values()):
        raise WeightsError(
            f"{index} is not a valid shard index: every value of 'weight_map' must be a shard "
            "file name (a string)"
        )
    names = []
    for shard in sorted(set(weight_map.values())):
        try:
            names.append(safe_file_name(shard))
        except UnsafeNameError as err:
            raise WeightsError(
                f"{index} lists the shard {shard!r}, which is not a file name in "
                f"{index.parent} ({err}); a shard index may only name files next to it. "
                "The index is corrupt or hostile: nothing was read."
            ) from None
    return names


def _directory_files(directory: Path) -> list[Path]:
    if (directory / WEIGHTS_NAME).is_file():
        return [_fetch(directory / WEIGHTS_NAME)]
    index = directory / WEIGHTS_INDEX_NAME
    if index.is_file():
        # Check every name before reading any shard: a bad index reads nothing. A bare name
        # cannot leave the folder; a symlink in it (a Hugging Face snapshot links each shard
        # to its blob) was put there by whoever owns the folder, not by the index.
        names = _shard_names(index)
        return [_fetch(directory / name) for name in names]
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
        known = f"{arch or model_label(model)} has no pretrained weight sets."
    return (
        f"pretrained={text!r} is not a weight tag of {arch or model_label(model)}, an existing "
        f"file or directory, a file in MODELZOO_WEIGHTS_DIR, or a URL. {known} To load your "
        "own weights pass a file (pretrained='path/to/model.safetensors' or a .pth/.ckpt), a "
        "save_pretrained directory, or a URL."
    )


def _looks_like_path(text: str) -> bool:
    """Whether ``pretrained=text`` reads as a file path rather than a weight tag."""
    path = Path(text)
    return (
        bool(path.suffix) or len(path.parts) > 1 or text.startswith(("~", ".", "/")) or "\\" in text
    )


def _not_found_message(model: nn.Module, text: str) -> str:
    path = Path(text).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    looked = [f"{absolute}"]
    dirs = os.environ.get("MODELZOO_WEIGHTS_DIR", "")
    if len(path.parts) == 1:
        looked.append(
            f"MODELZOO_WEIGHTS_DIR ({dirs})" if dirs.strip() else "MODELZOO_WEIGHTS_DIR (not set)"
        )
    missing_dir = next(
        (parent for parent in reversed(absolute.parents) if not parent.exists()), None
    )
    folder_note = f" The folder {missing_dir} does not exist." if missing_dir else ""
    arch = getattr(model, "model_name", None)
    tags = ", ".join(repr(w.tag) for w in _safe_weight_sets(arch))
    tag_note = f" The weight tags of {arch} are {tags}." if tags else ""
    return (
        f"pretrained={text!r}: file not found. Looked for {' and in '.join(looked)}."
        f"{folder_note} Check the path (relative paths start from {Path.cwd()}), or pass a "
        f"URL or a save_pretrained directory.{tag_note}"
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
            try:
                return [_fetch(text)], text, None
            except IntegrityError:
                raise
            except WeightsError:
                pass
        if _looks_like_path(text):
            raise WeightsError(_not_found_message(model, text))
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
    if "loop" in obj and "model" in obj:  # a modelzoo trainer checkpoint
        from modelzoo.train.checkpoint import evaluation_weights

        return _extract_state_dict(evaluation_weights(obj), f"{where} (evaluated weights)")
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
    head = head_prefixes(model)
    hint = _first_conv_hint(getattr(weight_set, "input_spec", None))
    first_conv = first_conv_key(model, hint, model_keys)
    # Position embeddings learned for another image size, fitted to this model's grid.
    resampled = {} if strict else resample_position_embedding(state, model)

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
            reason = adapt_reason(tensor.shape[1], target.shape[1])
            adapted.append(AdaptedKey(key, _shape(tensor), _shape(target), reason))
        elif key in resampled:
            to_load[key], reason = resampled[key]
            adapted.append(AdaptedKey(key, _shape(tensor), _shape(target), reason))
        elif not strict and is_under(key, head):
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
    name = model_label(model)
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
            f"{lines}\nOnly the head (re-initialized), the first convolution's input channels "
            f"(adapted) and a ViT's position embedding grid (resampled) may differ. Build the "
            f"model with the arguments the weights were made with{hint_args}. The model was "
            "left unchanged."
        )
    params = {n for n, _ in model.named_parameters()}
    backbone = {n for n in params if not is_under(n, head)} or params
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
    surprising = [k for k in (*missing, *dropped) if not is_under(k, head)]
    if surprising:
        _logger.warning(
            "%s: %d tensor(s) outside the head do not match by name (missing from the file, "
            "left at their initialization: %s; not in the model, ignored: %s); fine-tune before "
            "use or check that the weights fit this architecture",
            name,
            len(surprising),
            [k for k in missing if not is_under(k, head)][:10],
            [k for k in dropped if not is_under(k, head)][:10],
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
        "size, adapt the first convolution's input channels and resample a ViT's position "
        "embedding to its img_size, or build the model with the arguments the weights were "
        "made with."
    )
    return "\n".join(lines)
