"""Loaders for a user's own data: a folder of images per class, or a CSV table.

``image_folder`` reads the layout torchvision's ImageFolder reads
(``root/<class>/<image>``); Pillow is imported only when an image is loaded. By
default every image is resized whole to ``img_size`` and scaled to [0, 1]; with
``weights=`` (what fine-tuning a pretrained model passes) images are prepared with
that weight set's own pipeline (:func:`modelzoo.transforms`: its size, crop,
interpolation, mean and std; training images with the standard augmentation), so
a pretrained model sees its inputs as it was trained to. ``csv`` reads a table of
numeric features and a target column with the standard library's csv module.
Splits are seeded, so every process sees the same ones.
"""

from __future__ import annotations

import csv as _csv
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from modelzoo.data.digits import split_indices
from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = ["ImageFolderDataset", "find_images", "image_folder", "csv_dataset"]

_logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")

_LAYOUT = (
    "Lay the folder out as root/<class_name>/<image>, one subfolder per class, e.g. "
    "root/cat/001.png and root/dog/001.jpg (extensions: " + ", ".join(IMAGE_EXTENSIONS) + ")."
)


# --- image folders ---------------------------------------------------------------------------


def find_images(root: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted subfolder names) and ``(path, class_index)`` pairs.

    Files are listed per class in sorted order; hidden files and folders are skipped,
    as are class folders without images.
    """
    base = Path(root).expanduser()
    if not base.exists():
        raise ConfigError(f"image_folder: root {base} does not exist. {_LAYOUT}")
    if not base.is_dir():
        raise ConfigError(f"image_folder: root {base} is a file, not a folder. {_LAYOUT}")
    classes: list[str] = []
    samples: list[tuple[Path, int]] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not files:
            _logger.warning("image_folder: skipping %s, which holds no images", folder)
            continue
        samples.extend((f, len(classes)) for f in files)
        classes.append(folder.name)
    if not classes:
        loose = [p.name for p in base.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS][:3]
        found = (
            f" It holds images directly ({', '.join(loose)}, ...) but no class subfolders."
            if loose
            else ""
        )
        raise ConfigError(
            f"image_folder: found no images in class subfolders of {base}.{found} {_LAYOUT}"
        )
    return classes, samples


def _open_image(path: Path) -> Any:
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - pillow comes with torchvision
        raise ConfigError("image_folder needs Pillow to read images: pip install pillow") from err
    with Image.open(path) as image:
        image.load()
        return image


def _load_image(path: Path, img_size: int, in_chans: int) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if in_chans == 1 else "RGB")
        if image.size != (img_size, img_size):
            image = image.resize((img_size, img_size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32) / 255.0
    if in_chans == 1:
        return torch.from_numpy(array.copy()).unsqueeze(0)  # (1, H, W)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())  # (H, W, 3) -> (3, H, W)


class ImageFolderDataset(Dataset):
    """Images read on access, with their labels.

    Without ``transform`` an image becomes float32 (in_chans, img_size, img_size) in
    [0, 1], resized whole (bilinear); with it, the PIL image is passed to ``transform``
    (e.g. ``modelzoo.transforms("resnet50.tv2_in1k")``), which makes the tensor.

    Args:
        samples: ``(path, class_index)`` pairs.
        img_size: side length every image is resized to (without ``transform``).
        in_chans: 1 (grey) or 3 (RGB) (without ``transform``).
        transform: turns a PIL image into the model's input tensor.
    """

    def __init__(
        self,
        samples: list[tuple[Path, int]],
        img_size: int,
        in_chans: int,
        transform: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        self.samples = samples
        self.img_size = img_size
        self.in_chans = in_chans
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.samples[index]
        try:
            if self.transform is None:
                image = _load_image(path, self.img_size, self.in_chans)
            else:
                image = self.transform(_open_image(path))
        except OSError as err:
            raise ConfigError(f"image_folder: cannot read {path} as an image: {err}") from err
        return image, torch.tensor(label, dtype=torch.long)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"need val_fraction, test_fraction >= 0 with a sum below 1; got "
            f"val_fraction={val_fraction}, test_fraction={test_fraction}"
        )


def _card_pipelines(
    weights: str, img_size: int | None, in_chans: int | None, augment: bool | None
) -> tuple[Callable, Callable, dict[str, Any]]:
    """The training and evaluation pipelines of a weight set, and the facts they follow."""
    from modelzoo.transforms import (
        build_transforms,
        input_spec_of,
        overridden_cfg,
        resolve_pretrained_cfg,
    )

    cfg = resolve_pretrained_cfg(weights)
    if not cfg.get("input_size"):
        raise ConfigError(
            f"image_folder: weights={weights!r} take no images (their card has no img_size); "
            "name an image classifier's weight set, e.g. weights='resnet50.tv2_in1k'"
        )
    if img_size is not None or in_chans is not None:
        cfg = overridden_cfg(cfg, img_size=img_size, in_chans=in_chans)
    if augment is None:
        # Published ImageNet weights were trained with RandomResizedCrop and flips; the
        # zoo's own weights (images resized whole) without augmentation.
        augment = cfg["crop_mode"] == "center"
    evaluate = build_transforms(cfg)
    train = build_transforms(cfg, train=True) if augment else evaluate
    return train, evaluate, input_spec_of(cfg)


@register_dataset("image_folder")
def image_folder(
    *,
    root: str,
    img_size: int | None = None,
    in_chans: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    weights: str | None = None,
    augment: bool | None = None,
) -> DataBundle:
    """Your own images, one subfolder per class: ``root/<class_name>/<image>``.

    Classes are the sorted subfolder names (their indices are the labels); each
    class's images are listed in sorted order and split per class by ``seed``.
    Items are ``(image, label)``: a float32 (in_chans, H, W) tensor and an int64 label.

    Without ``weights`` images are resized whole to ``img_size`` (bilinear) and scaled to
    [0, 1]. With ``weights`` (a weight set such as ``"resnet50.tv2_in1k"``, an architecture
    for its default set, or ``"timm/<arch>.<tag>"``) they are prepared as that weight set
    expects (:func:`modelzoo.transforms`): validation and test images with its evaluation
    pipeline (resize, center crop, mean/std), training images with RandomResizedCrop and
    a flip at its input size for published ImageNet weights (their recipes augment; the
    zoo's own weights were trained without); ``info["preprocessing"]`` records the facts,
    so a card can say how the fine-tuned model's inputs must be prepared.

    Args:
        root: the folder that holds the class subfolders.
        img_size: the side length of the images (default 32, or the weights' input size);
            with ``weights`` it overrides the card's, keeping its crop ratio.
        in_chans: 3 for RGB, 1 for greyscale (default 3, or the weights' channels).
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for testing (0: no test split).
        seed: the split's seed.
        weights: prepare images with this weight set's pipeline.
        augment: augment training images (default: for published ImageNet ``weights``).
    """
    if in_chans is not None and in_chans not in (1, 3):
        raise ConfigError(f"in_chans must be 1 (greyscale) or 3 (RGB); got {in_chans}")
    if img_size is not None and img_size < 1:
        raise ConfigError(f"img_size must be >= 1; got {img_size}")
    _check_fractions(val_fraction, test_fraction)
    train_tf = eval_tf = None
    preprocessing: dict[str, Any] | None = None
    if weights is not None:
        if not isinstance(weights, str):
            raise ConfigError(
                f"image_folder: weights must name a weight set such as 'resnet50.tv2_in1k'; "
                f"got {weights!r}"
            )
        train_tf, eval_tf, preprocessing = _card_pipelines(weights, img_size, in_chans, augment)
        img_size, in_chans = preprocessing["img_size"], preprocessing["in_chans"]
    else:
        if augment:
            raise ConfigError(
                "image_folder: augment=true needs weights=<weight set>, whose input size and "
                "pipeline the augmentation follows (e.g. weights='resnet50.tv2_in1k')"
            )
        img_size = 32 if img_size is None else img_size
        in_chans = 3 if in_chans is None else in_chans
    classes, samples = find_images(root)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    test_idx, val_idx, train_idx = split_indices(labels, [test_fraction, val_fraction], seed)

    def subset(idx: np.ndarray, transform: Callable | None) -> ImageFolderDataset | None:
        if len(idx) == 0:
            return None
        return ImageFolderDataset([samples[i] for i in idx], img_size, in_chans, transform)

    if len(train_idx) == 0:
        raise ConfigError(f"image_folder: no training images left in {root}; lower val_fraction")
    info: dict[str, Any] = {
        "task": "classification",
        "num_classes": len(classes),
        "classes": classes,
        "in_chans": in_chans,
        "img_size": img_size,
        "in_features": in_chans * img_size * img_size,
        "root": str(Path(root).expanduser()),
    }
    if preprocessing is not None:
        info["preprocessing"] = preprocessing
        info["weights"] = weights
    _logger.info("image_folder: %d images of %d classes in %s", len(samples), len(classes), root)
    return DataBundle(
        subset(train_idx, train_tf), subset(val_idx, eval_tf), subset(test_idx, eval_tf), info
    )


# --- CSV tables ------------------------------------------------------------------------------


def _read_rows(file: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    with file.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in _csv.reader(handle, delimiter=delimiter) if row]
    if len(rows) < 2:
        raise ConfigError(
            f"csv: {file} needs a header row and at least one data row; it has {len(rows)} row(s)"
        )
    header = [name.strip() for name in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ConfigError(
                f"csv: row {line} of {file} has {len(row)} fields but the header has "
                f"{len(header)} ({', '.join(header)}); check the delimiter ({delimiter!r})"
            )
    return header, rows[1:]


def _column_index(header: list[str], column: str | int | None) -> int:
    if column is None:
        return len(header) - 1
    if isinstance(column, str) and column not in header and column.lstrip("-").isdigit():
        column = int(column)  # an index given on the command line arrives as text
    if isinstance(column, int):
        if not -len(header) <= column < len(header):
            raise ConfigError(
                f"csv: target_column={column} is out of range for {len(header)} columns"
            )
        return column % len(header)
    if column not in header:
        raise ConfigError(f"csv: no column named {column!r}; the columns are: {', '.join(header)}")
    return header.index(column)


def _to_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _features(
    rows: list[list[str]], columns: list[int], header: list[str], file: Path
) -> np.ndarray:
    out = np.empty((len(rows), len(columns)), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            value = _to_float(row[col].strip())
            if value is None:
                raise ConfigError(
                    f"csv: column {header[col]!r} must hold finite numbers, but row {r + 2} of "
                    f"{file} has {row[col]!r} there. Encode categories as numbers, fill missing "
                    f"values, or leave the column out with feature_columns=[...]"
                )
            out[r, c] = value
    return out


@register_dataset("csv")
def csv_dataset(
    *,
    path: str,
    target_column: str | int | None = None,
    feature_columns: list[str] | None = None,
    task: Literal["auto", "classification", "regression"] = "auto",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    standardize: bool = True,
    delimiter: str = ",",
) -> DataBundle:
    """A table of your own: numeric feature columns and one target column.

    The first row names the columns (row numbers in messages count it as row 1).
    Items are ``(features, target)``: float32 (in_features,) and an int64 class
    index or a float32 value. Classes are the target's distinct values, sorted
    (numerically when they are all numbers), numbered 0..k-1; ``info["classes"]``
    maps an index back to its label.

    Args:
        path: the CSV file.
        target_column: the target's name or index (default: the last column).
        feature_columns: the feature columns to use (default: all but the target).
        task: ``"classification"``, ``"regression"`` or ``"auto"``: regression when every
            target is a number and some is not a whole number, classification otherwise.
        val_fraction: share of rows held out for validation (per class for classification).
        test_fraction: share of rows held out for testing (per class for classification).
        seed: the split's seed.
        standardize: scale features to zero mean, unit variance with the training split's
            statistics (kept in ``info["feature_mean"]``/``info["feature_std"]``).
        delimiter: the field separator.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"csv: {file} is not a file; pass path= a CSV file with a header row")
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(
            f"csv: task must be 'auto', 'classification' or 'regression'; got {task!r}"
        )
    _check_fractions(val_fraction, test_fraction)
    header, rows = _read_rows(file, delimiter)
    target = _column_index(header, target_column)
    if feature_columns is None:
        columns = [i for i in range(len(header)) if i != target]
    else:
        columns = [_column_index(header, name) for name in feature_columns]
        if target in columns:
            raise ConfigError(f"csv: the target column {header[target]!r} is also a feature")
    if not columns:
        raise ConfigError(f"csv: {file} has no feature columns besides the target")
    x = _features(rows, columns, header, file)
    raw = [row[target].strip() for row in rows]
    numbers = [_to_float(v) for v in raw]
    all_numeric = all(v is not None for v in numbers)
    if task == "auto":
        fractional = all_numeric and any(not float(v).is_integer() for v in numbers)
        task = "regression" if fractional else "classification"
        _logger.info("csv: target %r looks like %s", header[target], task)

    info: dict[str, Any] = {
        "task": task,
        "in_features": len(columns),
        "feature_names": [header[i] for i in columns],
        "target_column": header[target],
    }
    if task == "regression":
        if not all_numeric:
            line = next(i for i, v in enumerate(numbers) if v is None) + 2
            raise ConfigError(
                f"csv: a regression target must be numeric, but column {header[target]!r} has "
                f"{raw[line - 2]!r} in row {line} of {file}; use task='classification'"
            )
        y = torch.tensor(numbers, dtype=torch.float32)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(rows))
        n_test = int(round(test_fraction * len(rows)))
        n_val = int(round(val_fraction * len(rows)))
        test_idx = np.sort(order[:n_test])
        val_idx = np.sort(order[n_test : n_test + n_val])
        train_idx = np.sort(order[n_test + n_val :])
        info["num_classes"] = 1  # the output width, under the name classifier builders take
    else:
        if all_numeric:
            classes = sorted(set(raw), key=lambda v: (float(v), v))
        else:
            classes = sorted(set(raw))
        lookup = {c: i for i, c in enumerate(classes)}
        labels = np.array([lookup[v] for v in raw], dtype=np.int64)
        y = torch.from_numpy(labels)
        test_idx, val_idx, train_idx = split_indices(labels, [test_fraction, val_fraction], seed)
        info["num_classes"] = len(classes)
        info["classes"] = classes
    if len(train_idx) == 0:
        raise ConfigError(f"csv: no training rows left in {file}; lower val/test_fraction")

    features = torch.from_numpy(x)
    if standardize:
        mean = features[train_idx].mean(0)
        std = features[train_idx].std(0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))  # a constant column stays finite
        features = (features - mean) / std
        info["feature_mean"] = mean.tolist()
        info["feature_std"] = std.tolist()

    def subset(idx: np.ndarray) -> TensorDataset | None:
        return TensorDataset(features[idx], y[idx]) if len(idx) else None

    return DataBundle(subset(train_idx), subset(val_idx), subset(test_idx), info)
