"""Preprocessing from the card: the pipeline a weight set was evaluated with.

Pretrained weights only score what their card says when images are prepared exactly as
they were when the weights were evaluated: resized with the same interpolation to the
same size, center-cropped, scaled to [0, 1] and normalized with the same mean and std.
Guessing any of it is the most common cause of silent accuracy loss. ``transforms``
reads those facts from the card and builds the pipeline with
``torchvision.transforms.v2``::

    import modelzoo as mz
    preprocess = mz.transforms("resnet50.tv2_in1k")     # resize 232, crop 224, ImageNet mean/std
    batch = preprocess(pil_image).unsqueeze(0)           # PIL images, uint8 or float tensors
    augment = mz.transforms("resnet50.tv2_in1k", train=True)   # RandomResizedCrop 224 + flip

    model = mz.create("resnet20.digits")
    mz.transforms(model)                                 # grey, 16x16, [0, 1]: its card's pipeline

Name forms: ``"arch.tag"`` (a weight set), ``"arch"`` (its default weight set), a model
made by ``create`` with pretrained weights (its ``pretrained_cfg``, else the weight set its
load report names), a ``save_pretrained`` folder, a :class:`~modelzoo.weights.WeightSet`, a
``pretrained_cfg`` / ``input_spec`` mapping, and the bridges' ``"timm/arch.tag"`` and
``"torchvision/arch.TAG"`` (read from the installed library, without network).

For the published cards the output equals ``torchvision.models.get_model_weights(arch)[TAG]
.transforms()`` and timm's ``create_transform(**resolve_data_config({}, pretrained_cfg=...))``
(tests check both, on PIL images and tensors of several sizes). To get there, uint8 tensors
are resized in float and rounded back to uint8, as torchvision's reference presets do:
``transforms.v2``'s native uint8 kernel differs from them by up to one grey level.

``pretrained_cfg(card)`` gives the same facts as a timm-style dict (``input_size``,
``interpolation``, ``crop_pct``, ``crop_mode``, ``mean``, ``std``, ``num_classes``,
``label_names``, plus the zoo's ``resize_size``), which ``create`` attaches to a pretrained
model as ``model.pretrained_cfg``; timm's ``resolve_data_config({}, model=model)`` reads it.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError, ModelzooError, WeightsError

__all__ = [
    "transforms",
    "pretrained_cfg",
    "resolve_pretrained_cfg",
    "build_transforms",
    "folder_pretrained_cfg",
    "overridden_cfg",
    "input_spec_of",
    "ReferenceResize",
    "ToChannels",
]

_logger = logging.getLogger(__name__)

DEFAULT_CROP_PCT = 0.875  # timm's and torchvision's classic 256 -> 224
TRAIN_SCALE = (0.08, 1.0)  # RandomResizedCrop, as torchvision's and timm's references
TRAIN_RATIO = (3 / 4, 4 / 3)
# Datasets whose classes change under a mirror image (a mirrored digit is another glyph):
# their cards' training pipelines do not flip.
_NO_FLIP_DATASETS = frozenset({"digits"})
_CROP_MODES = ("center", "squash")
_CFG_FILES = ("config.json", "model_card.json")  # save_pretrained / hub layout, fine-tune card


# --- the card's facts -------------------------------------------------------------------------


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a size in pixels, got {value!r}")
    if isinstance(value, int):
        return value, value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        h, w = value
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w)):
            return h, w
    raise ConfigError(f"{what} must be an integer or [height, width], got {value!r}")


def _floats(value: Any, channels: int, what: str) -> tuple[float, ...]:
    values = [value] if isinstance(value, (int, float)) else list(value)
    if len(values) == 1 and channels > 1:
        values = values * channels
    if len(values) != channels or not all(isinstance(v, (int, float)) for v in values):
        raise ConfigError(f"{what} must hold {channels} numbers (one per channel), got {value!r}")
    return tuple(float(v) for v in values)


def _image_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing facts of an ``input_spec`` (the zoo's card format), or {} if none."""
    size = spec.get("img_size", spec.get("size"))
    if size is None:
        return {}
    h, w = _pair(size, "input_spec img_size")
    chans = int(spec.get("in_chans", 3))
    mean = _floats(spec.get("mean", [0.0]), chans, "input_spec mean")
    std = _floats(spec.get("std", [1.0]), chans, "input_spec std")
    low, high = (float(v) for v in spec.get("value_range", (0.0, 1.0)))
    if high <= low:
        raise ConfigError(f"input_spec value_range must rise, got {[low, high]}")
    # The model saw lo + (hi - lo) * x for x in [0, 1], then (u - mean) / std: one
    # normalization of x with shifted, scaled mean and std.
    mean = tuple((m - low) / (high - low) for m in mean)
    std = tuple(s / (high - low) for s in std)
    crop_mode = spec.get("crop_mode")
    resize = spec.get("resize_size", spec.get("resize"))
    crop_pct = spec.get("crop_pct")
    if crop_mode is None:
        # The zoo's own data pipelines resize whole images to img_size (no crop).
        crop_mode = "center" if (resize is not None or crop_pct is not None) else "squash"
    if crop_mode not in _CROP_MODES:
        raise ConfigError(
            f"input_spec crop_mode must be one of {', '.join(_CROP_MODES)}, got {crop_mode!r}"
        )
    if crop_mode == "squash":
        crop_pct = 1.0 if crop_pct is None else float(crop_pct)
        resize_size: int | tuple[int, int] = (
            math.floor(h / crop_pct),
            math.floor(w / crop_pct),
        )
    else:
        crop_pct = float(crop_pct) if crop_pct is not None else None
        if resize is None:
            pct = crop_pct if crop_pct is not None else DEFAULT_CROP_PCT
            resize = math.floor(h / pct) if h == w else [math.floor(h / pct), math.floor(w / pct)]
        resize_size = resize if isinstance(resize, int) else _pair(resize, "resize_size")
        if crop_pct is None:
            crop_pct = h / (resize_size if isinstance(resize_size, int) else resize_size[0])
    hflip = spec.get("hflip")
    if hflip is None:
        hflip = 0.0 if spec.get("dataset") in _NO_FLIP_DATASETS else 0.5
    facts: dict[str, Any] = {
        "input_size": (chans, h, w),
        "interpolation": str(spec.get("interpolation", "bilinear")),
        "crop_pct": crop_pct,
        "crop_mode": crop_mode,
        "resize_size": resize_size,
        "mean": mean,
        "std": std,
        "hflip": float(hflip),
    }
    if spec.get("flatten"):
        facts["flatten"] = True
    return facts


def pretrained_cfg(source: Any) -> dict[str, Any]:
    """A weight set's input facts as a timm-style ``pretrained_cfg`` dict.

    Args:
        source: a :class:`~modelzoo.weights.WeightSet`, or a card's ``input_spec`` mapping.

    Returns:
        ``architecture``, ``tag``, ``num_classes``, ``label_names`` (the class names, or
        None), ``license``; for image cards also ``input_size`` (C, H, W),
        ``interpolation``, ``crop_pct``, ``crop_mode`` (``center``, or ``squash`` for the
        zoo's own weights, whose data was resized whole), ``resize_size`` (the size before
        the crop), ``mean`` and ``std`` (for values in [0, 1]; a card's ``value_range`` is
        folded in), ``hflip`` (the training flip probability) and ``flatten`` when the
        model takes flat vectors. Cards that take no images (text, RL) get no
        ``input_size``; :func:`transforms` refuses them.
    """
    from modelzoo.weights.card import class_names

    if isinstance(source, Mapping):
        spec, kwargs, head = source, source, {}
    elif all(hasattr(source, a) for a in ("arch", "tag", "input_spec")):
        spec = source.input_spec
        head = {
            "architecture": source.arch,
            "tag": source.tag,
            "source": source.name,
            "license": source.license,
        }
        kwargs = source.model_kwargs
    else:
        raise ConfigError(
            f"pretrained_cfg() takes a WeightSet or an input_spec mapping, got "
            f"{type(source).__name__}"
        )
    labels = class_names(spec.get("labels"))
    cfg = dict(head)
    num_classes = kwargs.get("num_classes")
    if num_classes is None and labels:
        num_classes = len(labels)
    cfg["num_classes"] = num_classes
    cfg["label_names"] = labels
    cfg.update(_image_facts(spec))
    return cfg


def _complete(cfg: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A timm-style cfg (``input_size`` ...) with every fact the pipeline needs filled in."""
    out = dict(cfg)
    c, h, w = (int(v) for v in out["input_size"])
    interpolation = out.get("interpolation") or "bilinear"
    mode = out.get("crop_mode") or "center"
    if mode not in _CROP_MODES:
        raise ConfigError(
            f"{where}: crop_mode {mode!r} is not supported; modelzoo builds "
            f"{' and '.join(_CROP_MODES)} pipelines"
        )
    spec = {
        "img_size": [h, w],
        "in_chans": c,
        "interpolation": interpolation,
        "crop_mode": mode,
        "crop_pct": out.get("crop_pct") or (1.0 if mode == "squash" else DEFAULT_CROP_PCT),
        "mean": out.get("mean") or [0.485, 0.456, 0.406][:c],
        "std": out.get("std") or [0.229, 0.224, 0.225][:c],
        "flatten": out.get("flatten", False),
    }
    if out.get("resize_size") is not None:
        spec["resize_size"] = out["resize_size"]
    if out.get("hflip") is not None:
        spec["hflip"] = out["hflip"]
    out.update(_image_facts(spec))
    return out


# --- where the facts come from ----------------------------------------------------------------


def folder_pretrained_cfg(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The preprocessing a model folder records, or None when it records none.

    Reads ``config.json`` (a ``pretrained_cfg`` entry, as the Hub layout and
    ``save_pretrained`` write it) and then ``model_card.json`` (its ``input_spec``, as
    ``modelzoo finetune`` writes it).
    """
    base = Path(directory)
    for name in _CFG_FILES:
        path = base / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise WeightsError(f"{path} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            continue
        cfg = data.get("pretrained_cfg")
        if isinstance(cfg, dict) and cfg.get("input_size"):
            return _complete(cfg, str(path))
        spec = data.get("input_spec")
        if isinstance(spec, dict):
            cfg = pretrained_cfg(spec)
            if cfg.get("input_size"):
                return cfg
    return None


def _external_cfg(name: str) -> dict[str, Any]:
    """The facts of a ``timm/`` or ``torchvision/`` weight set, from the installed library."""
    from modelzoo.registry import split_name

    arch, tag = split_name(name)
    library, _, model = arch.partition("/")
    if library == "timm":
        import timm.models

        full = f"{model}.{tag}" if tag else model
        found = timm.models.get_pretrained_cfg(full)
        if found is None:
            raise WeightsError(f"timm has no pretrained configuration named {full!r}")
        cfg = found.to_dict()
        cfg.setdefault("label_names", None)
        cfg["source"] = name
        return _complete(cfg, name)
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(model)
        weights = enum[tag] if tag else enum.DEFAULT
    except (KeyError, ValueError) as err:
        raise WeightsError(f"torchvision has no weights {name!r}: {err}") from None
    preset = weights.transforms()
    crop, resize = getattr(preset, "crop_size", None), getattr(preset, "resize_size", None)
    if crop is None or resize is None:
        raise ConfigError(f"{name}: its torchvision preset is not an image-classification one")
    categories = weights.meta.get("categories")
    cfg = {
        "source": name,
        "input_size": (3, crop[0], crop[-1]),
        "resize_size": resize[0] if len(resize) == 1 else list(resize),
        "interpolation": preset.interpolation.value,
        "crop_mode": "center",
        "mean": list(preset.mean),
        "std": list(preset.std),
        "num_classes": len(categories) if categories else None,
        "label_names": tuple(categories) if categories else None,
    }
    return _complete(cfg, name)


def resolve_pretrained_cfg(source: Any) -> dict[str, Any]:
    """The ``pretrained_cfg`` of a name, a model, a folder, a weight set or a mapping.

    See :func:`transforms` for the forms ``source`` takes.

    Raises:
        ConfigError: the source states no preprocessing (a model built without pretrained
            weights, a folder without a recorded configuration); the message says what to
            pass instead.
        WeightsError: a name that is no weight set.
    """
    from modelzoo.registry import EXTERNAL_PREFIXES, split_name

    if isinstance(source, nn.Module):
        return _model_cfg(source)
    if isinstance(source, Mapping):
        if source.get("input_size"):
            return _complete(source, "pretrained_cfg")
        return pretrained_cfg(source)
    if all(hasattr(source, a) for a in ("arch", "tag", "input_spec")):
        return pretrained_cfg(source)
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and Path(source).expanduser().is_dir()
    ):
        folder = Path(source).expanduser()
        cfg = folder_pretrained_cfg(folder)
        if cfg is None:
            raise ConfigError(
                f"{folder} records no preprocessing (no pretrained_cfg in config.json, no "
                "input_spec in model_card.json); pass the weight set it was trained from, "
                "e.g. transforms('resnet50.tv2_in1k'), or a pretrained_cfg mapping"
            )
        return cfg
    if not isinstance(source, str):
        raise ConfigError(
            "transforms() takes a weight-set name ('resnet50.tv2_in1k'), a model made by "
            f"modelzoo.create, a folder, a WeightSet or a mapping; got {type(source).__name__}"
        )
    if source.startswith(EXTERNAL_PREFIXES):
        return _external_cfg(source)
    from modelzoo.weights import get_weight_set

    arch, tag = split_name(source)
    return pretrained_cfg(get_weight_set(arch, tag))


def _model_cfg(model: nn.Module) -> dict[str, Any]:
    from modelzoo.layers.features import FeatureListNet

    inner = model.model if isinstance(model, FeatureListNet) else model
    name = getattr(inner, "model_name", None) or type(inner).__name__
    cfg = getattr(inner, "pretrained_cfg", None)
    if isinstance(cfg, Mapping) and cfg.get("input_size"):
        return _complete(cfg, f"{name}.pretrained_cfg")
    report = getattr(inner, "load_report", None)
    label = getattr(report, "source", None)
    if isinstance(label, str) and label:
        try:
            return resolve_pretrained_cfg(label)
        except ModelzooError as err:
            _logger.debug("%s: its weights %r name no card: %s", name, label, err)
    if isinstance(cfg, Mapping):  # a card that takes no images
        return dict(cfg)
    raise ConfigError(
        f"{name} carries no preprocessing: it was not built from a weight set "
        "(modelzoo.create(name, pretrained=...) sets model.pretrained_cfg). Pass the weight "
        f"set whose pipeline you want, e.g. transforms('{name}.<tag>'), or set "
        "model.pretrained_cfg"
    )


# --- the pipeline -----------------------------------------------------------------------------


def _interpolation(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    try:
        return InterpolationMode(name)
    except ValueError:
        names = ", ".join(m.value for m in InterpolationMode)
        raise ConfigError(f"unknown interpolation {name!r}; expected one of {names}") from None


class ReferenceResize(nn.Module):
    """Resize as torchvision's reference presets do, for PIL images and tensors alike.

    PIL images go through PIL (as everywhere in torchvision). Tensors are resized with
    antialiasing in float; uint8 tensors (single images or batches) are rounded back to
    uint8, bicubic results clamped first, exactly as ``torchvision.transforms.functional``
    does and unlike ``transforms.v2``'s native uint8 kernel. A tensor of any other dtype
    keeps its values unrounded.

    Args:
        size: an int resizes the shorter side to it, keeping the aspect ratio; (h, w) resizes
            to exactly that.
        interpolation: a ``torchvision.transforms.InterpolationMode`` or its name.
    """

    def __init__(self, size: int | Sequence[int], interpolation: Any = "bilinear") -> None:
        super().__init__()
        self.size = [size] if isinstance(size, int) else list(size)
        self.interpolation = (
            _interpolation(interpolation) if isinstance(interpolation, str) else interpolation
        )

    def forward(self, image: Any) -> Any:
        import torchvision.transforms.v2.functional as F
        from torchvision import tv_tensors
        from torchvision.transforms import InterpolationMode

        if not isinstance(image, torch.Tensor):
            return F.resize(image, self.size, interpolation=self.interpolation, antialias=True)
        plain = image.as_subclass(torch.Tensor)
        if plain.dtype == torch.uint8:
            out = F.resize(
                plain.float(), self.size, interpolation=self.interpolation, antialias=True
            )
            if self.interpolation == InterpolationMode.BICUBIC:
                out = out.clamp(0, 255)
            out = out.round().to(torch.uint8)
        else:
            out = F.resize(plain, self.size, interpolation=self.interpolation, antialias=True)
        return tv_tensors.wrap(out, like=image) if isinstance(image, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        return f"size={self.size}, interpolation={self.interpolation.value}, antialias=True"


class ToChannels(nn.Module):
    """Give an image the channel count a model takes: RGB (3) or grey (1).

    PIL images are converted with ``Image.convert`` (``"RGB"`` or ``"L"``). Tensors
    (``(..., C, H, W)``): grey is repeated to RGB, RGB becomes grey with the ITU-R 601
    weights PIL uses, and a fourth (alpha) channel is dropped.
    """

    def __init__(self, in_chans: int) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ConfigError(f"images have 1 (grey) or 3 (RGB) channels; got in_chans={in_chans}")
        self.in_chans = in_chans

    def forward(self, image: Any) -> Any:
        import torchvision.transforms.v2.functional as F

        if not isinstance(image, torch.Tensor):
            mode = "RGB" if self.in_chans == 3 else "L"
            return image if image.mode == mode else image.convert(mode)
        if image.ndim < 3:
            raise InputShapeError(
                f"expected an image tensor of shape (C, H, W) or a batch (B, C, H, W); got "
                f"shape {tuple(image.shape)}"
            )
        channels = image.shape[-3]
        if channels == 4:  # RGBA: the colour without its alpha
            image, channels = image[..., :3, :, :], 3
        if channels == self.in_chans:
            return image
        if channels == 1:
            return image.expand(*image.shape[:-3], 3, *image.shape[-2:]).clone()
        if channels == 3:
            return F.rgb_to_grayscale(image, num_output_channels=1)
        raise InputShapeError(
            f"expected images with 1, 3 or 4 channels in dimension -3; got shape "
            f"{tuple(image.shape)}"
        )

    def extra_repr(self) -> str:
        return f"in_chans={self.in_chans}"


class _Flatten(nn.Module):
    """(C, H, W) -> (C*H*W,) and (B, C, H, W) -> (B, C*H*W,): for models of flat vectors."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.flatten(-3)


def build_transforms(
    cfg: Mapping[str, Any],
    *,
    train: bool = False,
    scale: tuple[float, float] = TRAIN_SCALE,
    ratio: tuple[float, float] = TRAIN_RATIO,
    hflip: float | None = None,
) -> Any:
    """The ``transforms.v2`` pipeline a complete ``pretrained_cfg`` describes.

    Args:
        cfg: from :func:`pretrained_cfg` / :func:`resolve_pretrained_cfg`.
        train: the training augmentation instead of the evaluation pipeline.
        scale, ratio: RandomResizedCrop's area and aspect-ratio ranges (training only).
        hflip: the horizontal-flip probability (training only; default the card's).
    """
    from torchvision.transforms import v2

    if not cfg.get("input_size"):
        source = cfg.get("source") or cfg.get("architecture") or "this card"
        raise ConfigError(
            f"{source} describes no image input (its card has no img_size): transforms() "
            "builds image pipelines; text, audio and RL models prepare inputs otherwise"
        )
    chans, h, w = cfg["input_size"]
    interpolation = _interpolation(cfg["interpolation"])
    steps: list[nn.Module] = [ToChannels(chans)]
    if train:
        steps.append(
            v2.RandomResizedCrop(
                (h, w), scale=scale, ratio=ratio, interpolation=interpolation, antialias=True
            )
        )
        flip = cfg.get("hflip", 0.5) if hflip is None else hflip
        if flip > 0:
            steps.append(v2.RandomHorizontalFlip(flip))
    elif cfg["crop_mode"] == "squash":
        steps.append(ReferenceResize(cfg["resize_size"], interpolation))
        if tuple(cfg["resize_size"]) != (h, w):
            steps.append(v2.CenterCrop((h, w)))
    else:
        steps += [ReferenceResize(cfg["resize_size"], interpolation), v2.CenterCrop((h, w))]
    steps += [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg["mean"]), std=list(cfg["std"])),
        v2.ToPureTensor(),
    ]
    if cfg.get("flatten"):
        steps.append(_Flatten())
    return v2.Compose(steps)


def transforms(
    name_or_model: Any,
    *,
    train: bool = False,
    img_size: int | None = None,
    in_chans: int | None = None,
    hflip: float | None = None,
    scale: tuple[float, float] = TRAIN_SCALE,
) -> Any:
    """The preprocessing a weight set was evaluated with, as a ``transforms.v2`` pipeline.

    Evaluation (default): to the card's channels, resize (the card's interpolation; the
    shorter side to ``resize_size`` = ``img_size / crop_pct``), center crop to
    ``img_size``, to float in [0, 1], normalize with the card's mean and std. The zoo's own
    weights were trained on images resized whole, so their pipeline resizes to
    ``img_size`` without a crop. Training (``train=True``): RandomResizedCrop to the card's
    input size (area ``scale``, aspect 3/4 to 4/3) and a horizontal flip, then the same
    scaling and normalization, as torchvision's and timm's reference recipes.

    Works on PIL images, uint8 tensors (values 0..255) and float tensors (values in
    [0, 1]), single ``(C, H, W)`` images or ``(B, C, H, W)`` batches; returns float32
    tensors. (A batch gets one random crop for all its images when ``train=True``.)

    Args:
        name_or_model: ``"resnet50.tv2_in1k"``, ``"resnet50"`` (its default weight set),
            ``"resnet20.digits"`` (the zoo's own), a model made by ``modelzoo.create`` with
            pretrained weights, a ``save_pretrained`` folder, a ``WeightSet``, a
            ``pretrained_cfg``/``input_spec`` mapping, ``"timm/<arch>.<tag>"`` or
            ``"torchvision/<arch>.<WEIGHTS>"``.
        train: the training augmentation instead of the evaluation pipeline.
        img_size: another input size (the resize keeps the card's ``crop_pct``).
        in_chans: another channel count (1: grey, mean and std averaged over the card's
            channels, the way the loader sums an RGB first layer for grey input).
        hflip: the training flip probability (default 0.5; 0 for the digits cards, whose
            classes change in a mirror).
        scale: RandomResizedCrop's range of image area (training only).

    Raises:
        ConfigError: the source states no image preprocessing (a model built without
            weights, a text model); the message says what to pass instead.
        WeightsError: an unknown weight-set name (with close matches).
    """
    cfg = resolve_pretrained_cfg(name_or_model)
    if cfg.get("input_size") and (img_size is not None or in_chans is not None):
        cfg = overridden_cfg(cfg, img_size=img_size, in_chans=in_chans)
    return build_transforms(cfg, train=train, hflip=hflip, scale=scale)


def overridden_cfg(
    cfg: Mapping[str, Any], *, img_size: int | None = None, in_chans: int | None = None
) -> dict[str, Any]:
    """``cfg`` for another input size (same ``crop_pct``) or channel count.

    One channel instead of three averages the card's mean and std, the way the loader
    sums an RGB first layer's weights for grey input.
    """
    if not cfg.get("input_size"):
        raise ConfigError("overridden_cfg() needs an image cfg (with input_size)")
    chans, h, w = cfg["input_size"]
    out = dict(cfg)
    if img_size is not None:
        if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
            raise ConfigError(f"img_size must be an integer >= 1, got {img_size!r}")
        h = w = img_size
        out.pop("resize_size", None)  # recomputed from crop_pct
    if in_chans is not None and in_chans != chans:
        if in_chans not in (1, 3):
            raise ConfigError(f"in_chans must be 1 (grey) or 3 (RGB), got {in_chans!r}")
        mean, std = sum(cfg["mean"]) / chans, sum(cfg["std"]) / chans
        out["mean"], out["std"] = [mean] * in_chans, [std] * in_chans
        chans = in_chans
    out["input_size"] = (chans, h, w)
    return _complete(out, "transforms()")


def input_spec_of(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A complete image ``pretrained_cfg`` in the cards' ``input_spec`` form.

    What a card (e.g. a fine-tuned model's ``model_card.json``) records so that
    :func:`pretrained_cfg` gives the same pipeline back.
    """
    if not cfg.get("input_size"):
        raise ConfigError("input_spec_of() needs an image cfg (with input_size)")
    chans, h, w = cfg["input_size"]
    resize = cfg["resize_size"]
    spec: dict[str, Any] = {
        "img_size": h if h == w else [h, w],
        "in_chans": chans,
        "resize_size": resize if isinstance(resize, int) else list(resize),
        "crop_pct": cfg["crop_pct"],
        "crop_mode": cfg["crop_mode"],
        "interpolation": cfg["interpolation"],
        "mean": list(cfg["mean"]),
        "std": list(cfg["std"]),
        "hflip": cfg.get("hflip", 0.5),
    }
    if cfg.get("flatten"):
        spec["flatten"] = True
    return spec
