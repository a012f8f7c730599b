"""sklearn's handwritten digits: 1,797 grey 8x8 images of 10 classes, shipped with scikit-learn.

Splits are stratified and seeded, so every run and every process sees the same
ones. Pixels are scaled to [0, 1]; ``img_size`` upsamples (bilinear) for models
that need larger inputs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = ["digits", "load_digits_arrays", "split_indices"]


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 8, 8) in [0, 1] as float32, labels (N,) as int64."""
    table = _digits_table()
    images = table[:, :-1].reshape(-1, 8, 8) / 16.0
    return images.astype(np.float32), table[:, -1].astype(np.int64)


def _digits_table() -> np.ndarray:
    """The (N, 65) table of pixel values (0-16) and the label, as scikit-learn ships it.

    The file is read the way ``sklearn.datasets.load_digits`` reads it, without importing
    scikit-learn: that import costs over a second in every process (each CLI command).
    Should a scikit-learn release move the file, its own loader is used.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


def split_indices(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Stratified split of indices into len(fractions) + 1 parts (the last takes the rest)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for i, fraction in enumerate(fractions):
            n = int(round(fraction * len(idx)))
            parts[i].extend(idx[start : start + n])
            start += n
        parts[-1].extend(idx[start:])
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


@register_dataset("digits")
def digits(
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    img_size: int = 8,
    flatten: bool = False,
    classes: Sequence[int] | None = None,
    train_per_class: int | None = None,
    relabel: bool = True,
) -> DataBundle:
    """The digits as (image, label) pairs.

    Args:
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for testing.
        seed: the split's seed.
        img_size: side length; 8 keeps the originals, larger sizes upsample.
        flatten: give (img_size*img_size,) vectors instead of (1, H, W) images.
        classes: keep only these digits (e.g. [0, 1, 2, 3, 4] for transfer experiments).
        train_per_class: keep only this many training images per class (few-label runs).
        relabel: with ``classes``, number the kept classes 0..k-1.
    """
    _check_arguments(val_fraction, test_fraction, img_size, classes, train_per_class)
    images, labels = load_digits_arrays()
    if classes is not None:
        keep = np.isin(labels, list(classes))
        images, labels = images[keep], labels[keep]
        if relabel:
            lookup = {c: i for i, c in enumerate(sorted(classes))}
            labels = np.array([lookup[int(y)] for y in labels], dtype=np.int64)
    test_idx, val_idx, train_idx = split_indices(labels, [test_fraction, val_fraction], seed)
    if train_per_class is not None:
        rng = np.random.default_rng(seed + 1)
        train_idx = np.sort(
            np.concatenate(
                [
                    rng.permutation(train_idx[labels[train_idx] == c])[:train_per_class]
                    for c in np.unique(labels)
                ]
            )
        )
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    if img_size != 8:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    if flatten:
        x = x.flatten(1)
    y = torch.from_numpy(labels)

    def subset(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(x[idx], y[idx])

    info = {
        "num_classes": int(len(np.unique(labels))),
        "in_chans": 1,
        "img_size": img_size,
        "in_features": img_size * img_size,
    }
    return DataBundle(subset(train_idx), subset(val_idx), subset(test_idx), info)


NUM_CLASSES = 10  # the digits 0..9


def _check_arguments(
    val_fraction: float,
    test_fraction: float,
    img_size: int,
    classes: Sequence[int] | None,
    train_per_class: int | None,
) -> None:
    """ConfigError for arguments that would give an empty, partial or silently wrong dataset."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
            raise ConfigError(
                f"data.{name}={value!r} is out of range: expected a share in [0, 1) of each "
                f"class, e.g. data.{name}=0.1"
            )
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves "
            "no training images: keep their sum below 1 (the defaults are 0.1 and 0.2)"
        )
    if isinstance(img_size, bool) or not isinstance(img_size, Integral) or img_size < 1:
        raise ConfigError(
            f"data.img_size={img_size!r} is out of range: expected an integer >= 1 (8 keeps "
            "the original 8x8 images), e.g. data.img_size=16"
        )
    if train_per_class is not None and (
        isinstance(train_per_class, bool)
        or not isinstance(train_per_class, Integral)
        or train_per_class < 1
    ):
        raise ConfigError(
            f"data.train_per_class={train_per_class!r} is out of range: expected an integer "
            ">= 1, or null for every training image"
        )
    if classes is None:
        return
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise ConfigError(
            f"data.classes={classes!r} must be a list of digits 0..{NUM_CLASSES - 1}, "
            "e.g. classes=[0, 1, 2]"
        )
    valid = range(NUM_CLASSES)
    bad = [
        c for c in classes if isinstance(c, bool) or not isinstance(c, Integral) or c not in valid
    ]
    if bad:
        raise ConfigError(
            f"data.classes={list(classes)!r} holds {', '.join(map(repr, bad))}, which "
            f"{'is not a digit' if len(bad) == 1 else 'are not digits'}: the digits dataset "
            f"has the classes 0..{NUM_CLASSES - 1}; pick from those, e.g. classes=[0, 1, 2]"
        )
    if not classes:
        raise ConfigError(
            f"data.classes is empty: name at least one of the digits 0..{NUM_CLASSES - 1}, "
            "or leave it out for all ten"
        )
    repeated = sorted({c for c in classes if list(classes).count(c) > 1})
    if repeated:
        raise ConfigError(
            f"data.classes={list(classes)!r} names {repeated} more than once; list each digit once"
        )
