"""How the torchvision datasets' images are prepared: from the recipe's data options
(size, channels, normalization from the training split's own statistics or ImageNet's,
augmentation) or from a model's card (``transforms="resnet50.tv2_in1k"``, or
``data.transforms: card`` for the recipe's own pretrained model, :func:`card_source`).
See :mod:`modelzoo.data.torchvision_datasets` for the options."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from modelzoo.errors import ConfigError

if TYPE_CHECKING:
    from modelzoo.data.torchvision_datasets import TorchvisionSplit

__all__ = ["CARD", "Preprocessing", "card_pipelines", "card_source", "recipe_pipelines"]

_logger = logging.getLogger(__name__)

CARD = "card"  # data.transforms: card -> the recipe's pretrained model (see card_source)

# The conventional statistics of ImageNet photos (torchvision's and timm's presets).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_PHOTO_SIZE = 224  # img_size for datasets of photos of varied sizes
CENTER_CROP_PCT = 0.875  # such photos are resized to img_size / 0.875, then center-cropped
# Statistics of a dataset not held in memory come from this many training images.
STATS_SAMPLES = 10_000
_GREY_MODES = ("1", "L", "I", "F", "I;16", "I;16B", "I;16L", "LA")


def _native(dataset: Any) -> tuple[int, tuple[int, int], bool]:
    """Channels, (height, width) of the first image, and whether every image has that size."""
    image = dataset[0][0]
    if torch.is_tensor(image):
        chans = 1 if image.ndim == 2 else int(image.shape[-3])
        size = (int(image.shape[-2]), int(image.shape[-1]))
    else:
        chans = 1 if getattr(image, "mode", "RGB") in _GREY_MODES else 3
        size = (int(image.size[1]), int(image.size[0]))
    data = getattr(dataset, "data", None)
    uniform = (
        (isinstance(data, np.ndarray) or torch.is_tensor(data))
        and data.ndim >= 3
        and len(data) == len(dataset)
    ) or getattr(dataset, "image_size", None) is not None  # FakeData draws one size
    return min(chans, 3), size, bool(uniform)


def _array_images(dataset: Any) -> torch.Tensor | None:
    """The dataset's images as one uint8 (N, C, H, W) tensor view, when it holds them so.

    CIFAR keeps (N, H, W, C), SVHN and STL10 (N, C, H, W), MNIST (N, H, W); which one is
    checked against the first image the dataset gives, so nothing is guessed.
    """
    data = getattr(dataset, "data", None)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if not torch.is_tensor(data) or data.dtype != torch.uint8 or len(data) != len(dataset):
        return None
    image = dataset[0][0]
    first = image if torch.is_tensor(image) else torch.from_numpy(np.asarray(image).copy())
    if data.ndim == 3 and first.shape == data.shape[1:] and torch.equal(first, data[0]):
        return data.unsqueeze(1)
    if data.ndim == 4:
        if first.shape == data.shape[1:] and torch.equal(first, data[0]):
            return data.permute(0, 3, 1, 2)  # (N, H, W, C)
        if first.ndim == 3 and torch.equal(first, data[0].permute(1, 2, 0)):
            return data  # (N, C, H, W)
    return None


def _channel_stats(
    train: TorchvisionSplit, plain: Callable[[Any], torch.Tensor], direct: bool, seed: int
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training split's images in [0, 1].

    Args:
        plain: the evaluation pipeline without normalization.
        direct: the images reach the model at their own size and channels, so a dataset
            that holds them in one array is read from it (exact, and fast).
    """
    array = _array_images(train.dataset) if direct else None
    total = torch.zeros(0, dtype=torch.float64)
    squares = total
    count = 0

    def add(batch: torch.Tensor) -> None:
        nonlocal total, squares, count
        x = batch.to(torch.float64)
        if not len(total):
            total = torch.zeros(x.shape[1], dtype=torch.float64)
            squares = torch.zeros_like(total)
        total += x.sum((0, 2, 3))
        squares += (x * x).sum((0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]

    if array is not None:
        # Integer sums of the raw bytes: exact, and far cheaper than floats per pixel.
        positions = train.indices
        for start in range(0, len(train), 8192):
            if positions is None:
                chunk = array[start : start + 8192]
            else:
                chunk = array[torch.from_numpy(positions[start : start + 8192])]
            x = chunk.to(torch.int64)
            if not len(total):
                total = torch.zeros(x.shape[1], dtype=torch.float64)
                squares = torch.zeros_like(total)
            total += x.sum((0, 2, 3)).double() / 255.0
            squares += (x * x).sum((0, 2, 3)).double() / 255.0**2
            count += x.shape[0] * x.shape[2] * x.shape[3]
    else:
        order = np.arange(len(train))
        if len(order) > STATS_SAMPLES:
            order = np.sort(np.random.default_rng(seed).choice(order, STATS_SAMPLES, replace=False))
            _logger.info(
                "normalize=dataset: mean and std from %d of %d training images",
                STATS_SAMPLES,
                len(train),
            )
        source = train.indices if train.indices is not None else np.arange(len(train.dataset))
        for i in order:
            add(plain(train.dataset[int(source[i])][0]).unsqueeze(0))
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    # A constant channel (a blank test image) would divide by zero: leave it unscaled.
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return [float(v) for v in mean], [float(v) for v in std]


def _recipe_spec(
    img_size: int, in_chans: int, uniform: bool, mean: Sequence[float], std: Sequence[float]
) -> dict[str, Any]:
    """The evaluation pipeline of recipe options, as a card's ``input_spec``."""
    spec: dict[str, Any] = {
        "img_size": img_size,
        "in_chans": in_chans,
        "mean": list(mean),
        "std": list(std),
        "interpolation": "bilinear",
    }
    if uniform:
        spec["crop_mode"] = "squash"  # resized whole (nothing, at their own size)
    else:
        spec.update(crop_mode="center", crop_pct=CENTER_CROP_PCT)
    return spec


def _train_pipeline(style: str, cfg: Mapping[str, Any], evaluate: Any, pad: int) -> Any:
    """The training pipeline of an augmentation style, around the evaluation pipeline."""
    from torchvision.transforms import v2

    from modelzoo.transforms import build_transforms

    _, h, w = cfg["input_size"]
    if style == "none":
        return evaluate
    if style == "random_resized_crop":
        return build_transforms(cfg, train=True, hflip=0.5)
    if style == "flip":
        return v2.Compose([v2.RandomHorizontalFlip(0.5), evaluate])
    # Padding after normalization pads with the mean colour (zero), as the paper's
    # zero-padding of mean-subtracted images did.
    steps = [evaluate, v2.RandomCrop((h, w), padding=pad, fill=0)]
    if style == "pad_crop_flip":
        steps.append(v2.RandomHorizontalFlip(0.5))
    return v2.Compose(steps)


@dataclass
class Preprocessing:
    """A split's pipelines and where they came from."""

    train: Any  # the training pipeline
    evaluate: Any  # the validation and test pipeline
    spec: dict[str, Any]  # the evaluation pipeline as a card's input_spec
    normalize: str  # where mean and std came from
    augment: str | bool  # the augmentation style (with a card: whether it augments)


def recipe_pipelines(
    train: TorchvisionSplit,
    img_size: int | None,
    in_chans: int | None,
    style: str | None,
    pad: int,
    normalize: str | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    seed: int,
) -> Preprocessing:
    """The pipelines the recipe's data options describe."""
    from modelzoo.transforms import build_transforms, input_spec_of, pretrained_cfg

    native_chans, (h, w), uniform = _native(train.dataset)
    chans = in_chans or native_chans
    squash = uniform and h == w  # images of one square size: resized whole, if at all
    if img_size is not None:
        size = img_size
    else:
        size = h if squash else min(h, w) if uniform else DEFAULT_PHOTO_SIZE
    norm = normalize or ("dataset" if uniform else "imagenet")
    if mean is not None and std is not None:
        norm = "given"
        stats = (list(mean), list(std))
        if {len(mean), len(std)} - {1, chans}:
            raise ConfigError(
                f"data.mean and data.std need {chans} numbers (one per channel); got "
                f"{list(mean)} and {list(std)}"
            )
    elif norm == "imagenet":
        stats = (list(IMAGENET_MEAN), list(IMAGENET_STD))
        if chans == 1:  # grey: the average channel, as the zoo treats RGB weights for grey
            stats = ([sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3])
    elif norm == "none":
        stats = ([0.0] * chans, [1.0] * chans)
    else:
        unscaled = _recipe_spec(size, chans, squash, [0.0] * chans, [1.0] * chans)
        direct = squash and size == h and chans == native_chans
        stats = _channel_stats(train, build_transforms(pretrained_cfg(unscaled)), direct, seed)
    if style == "auto":
        style = "pad_crop_flip" if size <= 64 else "random_resized_crop"
    spec = _recipe_spec(size, chans, squash, *stats)
    spec["hflip"] = 0.5 if style in ("flip", "pad_crop_flip", "random_resized_crop") else 0.0
    cfg = pretrained_cfg(spec)
    evaluate = build_transforms(cfg)
    return Preprocessing(
        _train_pipeline(style or "none", cfg, evaluate, pad),
        evaluate,
        input_spec_of(cfg),
        norm,
        style or "none",
    )


def card_source(model: Mapping[str, Any]) -> str:
    """The weight set whose preprocessing ``data.transforms: card`` means in a recipe.

    Args:
        model: the recipe's ``model`` section (``name``, and ``pretrained`` when set).

    Returns:
        A name :func:`modelzoo.transforms` takes: ``arch.tag``, ``arch`` (its default
        weight set), ``timm/...``/``torchvision/...`` or a model folder.

    Raises:
        ConfigError: the model is not pretrained, or its weights (a Hub repo, a file) state
            their preprocessing only once loaded; the message says to name the weight set.
    """
    from modelzoo.registry import EXTERNAL_PREFIXES, split_name

    name = model.get("name")
    pretrained = model.get("pretrained", False)
    fix = (
        "name the weights whose preprocessing to use instead, e.g. "
        "data.transforms=resnet50.tv2_in1k"
    )
    if not isinstance(name, str) or not name:
        raise ConfigError(f"data.transforms=card needs the recipe's model.name; {fix}")
    if name.startswith("hf-hub:") or (isinstance(pretrained, str) and "hf-hub:" in pretrained):
        raise ConfigError(
            f"data.transforms=card: the preprocessing of {name} is read from its Hub repo only "
            f"when the model is loaded; {fix}"
        )
    arch, tag = split_name(name)
    if tag is not None:
        return name
    if pretrained is True or (name.startswith(EXTERNAL_PREFIXES) and pretrained):
        return name
    if isinstance(pretrained, str) and pretrained:
        if Path(pretrained).expanduser().is_dir():
            return pretrained
        from modelzoo.weights import is_tag

        if is_tag(arch, pretrained):
            return f"{arch}.{pretrained}"
        raise ConfigError(
            f"data.transforms=card: model.pretrained={pretrained!r} is neither a weight set "
            f"of {arch} nor a model folder, so it states no preprocessing; {fix}"
        )
    raise ConfigError(
        f"data.transforms=card takes the preprocessing of the model's pretrained weights, "
        f"but model {name} is not pretrained (set model.pretrained), or {fix}"
    )


def card_pipelines(
    source: str, img_size: int | None, in_chans: int | None, augment: Any
) -> Preprocessing:
    """The pipelines of a weight set's card (see :func:`modelzoo.transforms`)."""
    from modelzoo.transforms import (
        build_transforms,
        input_spec_of,
        overridden_cfg,
        resolve_pretrained_cfg,
    )

    if source == CARD:
        raise ConfigError(
            "data.transforms=card means the recipe's pretrained model, which `modelzoo train` "
            "resolves (card_source); called directly, name the weight set, e.g. "
            "build_data('torchvision/CIFAR10', transforms='resnet50.tv2_in1k')"
        )
    cfg = resolve_pretrained_cfg(source)
    if not cfg.get("input_size"):
        raise ConfigError(
            f"data.transforms={source!r}: those weights take no images (their card has no "
            "img_size); name an image classifier's weight set, e.g. resnet50.tv2_in1k"
        )
    if img_size is not None or in_chans is not None:
        cfg = overridden_cfg(cfg, img_size=img_size, in_chans=in_chans)
    if augment not in (None, True, False):
        raise ConfigError(
            f"data.augment={augment!r} with data.transforms: the card's pipeline augments "
            "with its own crop and flip; set augment to true or false"
        )
    if augment is None:
        # Published ImageNet weights were trained with RandomResizedCrop and flips; the
        # zoo's own weights (images resized whole) without augmentation.
        augment = cfg["crop_mode"] == "center"
    evaluate = build_transforms(cfg)
    train = build_transforms(cfg, train=True) if augment else evaluate
    return Preprocessing(train, evaluate, input_spec_of(cfg), "card", bool(augment))
