"""Shapes: generated images of coloured shapes, for object detection and semantic segmentation.

Each image is drawn from its own seeded generator (seed, split, index), so a
dataset is the same in every run and every process, and an image does not
depend on how many others are generated. An image (3, img_size, img_size),
float32 in [0, 1], shows 1 to ``max_objects`` shapes of the classes
``circle``, ``square``, ``triangle`` and ``ring`` (squares and triangles
rotated), of varied sizes, colours and positions, on a noisy background of a
random colour. Later shapes are drawn over earlier ones; a shape is placed only
where it leaves every earlier one at least ``1 - max_occlusion`` of its area.

Targets describe what is visible:

* ``boxes``: (n, 4) float32 xyxy in pixel-edge coordinates (pixel ``i`` spans
  ``[i, i + 1)``), the tight box of each shape's visible pixels;
* ``labels``: (n,) int64 in ``1..4`` (``CLASSES[label - 1]``; 0 is the background);
* ``mask``: (H, W) int64 semantic mask, 0 for background and the shape's label elsewhere.

``shapes_detection`` gives ``(images, targets)`` batches through
:func:`collate_detection`; its ``info["num_classes"]`` counts object classes
(4, without the background). ``shapes_segmentation`` gives ``(images, masks)``
batches; its ``info["num_classes"]`` counts the background too (5).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = [
    "CLASSES",
    "ShapesArrays",
    "ShapesDetection",
    "ShapesSegmentation",
    "collate_detection",
    "generate_shapes",
    "render_image",
    "shapes_detection",
    "shapes_segmentation",
]

CLASSES = ("circle", "square", "triangle", "ring")
_SPLITS = {"train": 0, "val": 1, "test": 2}
_MAX_TRIES = 30  # placements tried per shape before it is left out
_MIN_PIXELS = 6  # a shape smaller than this (after clipping) is not placed
_MIN_CONTRAST = 0.35  # colour distance between a shape and the background


@dataclass(frozen=True)
class ShapesArrays:
    """A generated split: images, semantic masks, and per-image boxes and labels."""

    images: np.ndarray  # (N, 3, S, S) uint8
    masks: np.ndarray  # (N, S, S) uint8, 0 = background, k = CLASSES[k - 1]
    boxes: tuple[np.ndarray, ...]  # per image (n, 4) float32 xyxy
    labels: tuple[np.ndarray, ...]  # per image (n,) int64 in 1..len(CLASSES)

    def __len__(self) -> int:
        return len(self.images)


def _shape_mask(
    kind: str, xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, d: float, angle: float
) -> np.ndarray:
    """Boolean (S, S) mask of one shape of diameter ``d`` centred at (cx, cy)."""
    dx, dy = xs - cx, ys - cy
    r = d / 2
    if kind == "circle":
        return dx * dx + dy * dy <= r * r
    if kind == "ring":
        dist2 = dx * dx + dy * dy
        return (dist2 <= r * r) & (dist2 >= (0.55 * r) ** 2)
    if kind == "square":
        half = r / math.sqrt(2)  # the square's corners touch the circle of diameter d
        u = dx * math.cos(angle) + dy * math.sin(angle)
        v = -dx * math.sin(angle) + dy * math.cos(angle)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == "triangle":
        corners = [
            (
                cx + r * math.cos(angle + k * 2 * math.pi / 3),
                cy + r * math.sin(angle + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        inside = np.ones_like(xs, dtype=bool)
        # An equilateral triangle is convex: inside means on the same side of every edge.
        for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
            inside &= (x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0) >= 0
        return inside
    raise ValueError(f"unknown shape {kind!r}")


def render_image(
    rng: np.random.Generator,
    img_size: int,
    *,
    max_objects: int = 4,
    min_objects: int = 1,
    size_range: tuple[float, float] = (0.2, 0.45),
    max_occlusion: float = 0.4,
    noise: float = 0.06,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image: (3, S, S) float32, (S, S) uint8 mask, (n, 4) float32 boxes, (n,) int64 labels."""
    s = img_size
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5  # pixel centres
    instances = np.full((s, s), -1, dtype=np.int16)
    areas: list[int] = []
    kinds: list[int] = []
    colours: list[np.ndarray] = []
    background = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        kind = int(rng.integers(len(CLASSES)))
        for _ in range(_MAX_TRIES):
            d = float(rng.uniform(*size_range)) * s
            cx, cy = rng.uniform(d / 2, s - d / 2, size=2)
            mask = _shape_mask(CLASSES[kind], xs, ys, cx, cy, d, float(rng.uniform(0, 2 * math.pi)))
            if mask.sum() < _MIN_PIXELS:
                continue
            visible = np.bincount(instances[~mask].ravel() + 1, minlength=len(areas) + 1)[1:]
            if all(v >= (1 - max_occlusion) * a for v, a in zip(visible, areas, strict=True)):
                break
        else:
            continue  # no room for this shape
        instances[mask] = len(areas)
        areas.append(int(mask.sum()))
        kinds.append(kind)
        for _ in range(10):
            colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
            if np.linalg.norm(colour - background) >= _MIN_CONTRAST:
                break
        colours.append(colour)

    # Background: its colour, a gentle gradient, then pixel noise over everything.
    tilt = rng.uniform(-0.15, 0.15, size=2).astype(np.float32)
    shade = (tilt[0] * (xs / s - 0.5) + tilt[1] * (ys / s - 0.5))[None]
    image = np.clip(background[:, None, None] + shade, 0, 1).astype(np.float32)
    mask = np.zeros((s, s), dtype=np.uint8)
    boxes, labels = [], []
    for index, (kind, colour) in enumerate(zip(kinds, colours, strict=True)):
        visible = instances == index
        image[:, visible] = colour[:, None]
        mask[visible] = kind + 1
        rows, cols = np.nonzero(visible)
        boxes.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        labels.append(kind + 1)
    image = np.clip(image + rng.normal(0.0, noise, size=image.shape), 0, 1).astype(np.float32)
    return (
        image,
        mask,
        np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        np.asarray(labels, dtype=np.int64),
    )


@functools.lru_cache(maxsize=8)
def generate_shapes(
    n: int,
    *,
    img_size: int = 64,
    max_objects: int = 4,
    min_objects: int = 1,
    size_range: tuple[float, float] = (0.2, 0.45),
    max_occlusion: float = 0.4,
    noise: float = 0.06,
    seed: int = 0,
    split: str = "train",
) -> ShapesArrays:
    """Generate ``n`` images of a split; image ``i`` depends only on (seed, split, i).

    Results are cached (the arrays are read-only), so building the same dataset
    twice in one process costs nothing the second time.
    """
    images = np.empty((n, 3, img_size, img_size), dtype=np.uint8)
    masks = np.empty((n, img_size, img_size), dtype=np.uint8)
    boxes, labels = [], []
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLITS[split], i])
        image, mask, b, lab = render_image(
            rng,
            img_size,
            max_objects=max_objects,
            min_objects=min_objects,
            size_range=size_range,
            max_occlusion=max_occlusion,
            noise=noise,
        )
        images[i] = np.round(image * 255).astype(np.uint8)
        masks[i] = mask
        boxes.append(b)
        labels.append(lab)
    for array in (images, masks, *boxes, *labels):
        array.flags.writeable = False
    return ShapesArrays(images, masks, tuple(boxes), tuple(labels))


class ShapesDetection(Dataset):
    """Items ``(image, {"boxes": (n, 4) float32, "labels": (n,) int64})``."""

    def __init__(self, arrays: ShapesArrays) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = torch.tensor(self.arrays.images[index], dtype=torch.float32) / 255
        target = {
            "boxes": torch.tensor(self.arrays.boxes[index]),
            "labels": torch.tensor(self.arrays.labels[index]),
        }
        return image, target


class ShapesSegmentation(Dataset):
    """Items ``(image, mask)``: (3, S, S) float32 and (S, S) int64 class indices."""

    def __init__(self, arrays: ShapesArrays) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.tensor(self.arrays.images[index], dtype=torch.float32) / 255
        return image, torch.tensor(self.arrays.masks[index], dtype=torch.long)


def collate_detection(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Stack the images (B, 3, H, W); keep the targets as a list, one dict per image."""
    images, targets = zip(*batch, strict=True)
    return torch.stack(images), list(targets)


def _check(
    n_train: int,
    img_size: int,
    max_objects: int,
    min_objects: int,
    min_size: float,
    max_size: float,
) -> None:
    if not 0 < min_size <= max_size <= 1:
        raise ConfigError(
            f"need 0 < min_size <= max_size <= 1 (fractions of img_size); got "
            f"min_size={min_size}, max_size={max_size}"
        )
    if n_train < 1:
        raise ConfigError(f"n_train must be >= 1; got {n_train}")
    if img_size < 16:
        raise ConfigError(f"img_size must be >= 16 for shapes to be recognisable; got {img_size}")
    if not 0 <= min_objects <= max_objects or max_objects < 1:
        raise ConfigError(
            f"need 0 <= min_objects <= max_objects and max_objects >= 1; got "
            f"min_objects={min_objects}, max_objects={max_objects}"
        )


def _splits(
    n_train: int, n_val: int, n_test: int, **kwargs: Any
) -> tuple[ShapesArrays, ShapesArrays | None, ShapesArrays | None]:
    train = generate_shapes(n_train, split="train", **kwargs)
    val = generate_shapes(n_val, split="val", **kwargs) if n_val else None
    test = generate_shapes(n_test, split="test", **kwargs) if n_test else None
    return train, val, test


def _info(task: str, img_size: int, with_background: bool) -> dict[str, Any]:
    classes = (["background"] if with_background else []) + list(CLASSES)
    return {
        "task": task,
        "num_classes": len(classes),
        "classes": classes,
        "in_chans": 3,
        "img_size": img_size,
    }


@register_dataset("shapes_detection")
def shapes_detection(
    *,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 200,
    img_size: int = 64,
    max_objects: int = 4,
    min_objects: int = 1,
    min_size: float = 0.2,
    max_size: float = 0.45,
    max_occlusion: float = 0.4,
    noise: float = 0.06,
    seed: int = 0,
) -> DataBundle:
    """Generated shapes with boxes: ``(images, targets)`` batches, targets a list of dicts.

    ``info["num_classes"]`` is 4, the object classes without the background;
    labels run 1..4 (``info["classes"][label - 1]``).

    Args:
        n_train: training images.
        n_val: validation images (0: none).
        n_test: test images (0: none).
        img_size: side length of the square images.
        max_objects: most shapes per image.
        min_objects: fewest shapes per image (fewer when one finds no room).
        min_size: smallest shape diameter, as a fraction of img_size.
        max_size: largest shape diameter, as a fraction of img_size.
        max_occlusion: the largest share of a shape later ones may cover.
        noise: standard deviation of the pixel noise.
        seed: the dataset's seed.
    """
    _check(n_train, img_size, max_objects, min_objects, min_size, max_size)
    splits = _splits(
        n_train,
        n_val,
        n_test,
        img_size=img_size,
        max_objects=max_objects,
        min_objects=min_objects,
        size_range=(min_size, max_size),
        max_occlusion=max_occlusion,
        noise=noise,
        seed=seed,
    )
    train, val, test = (ShapesDetection(a) if a is not None else None for a in splits)
    info = _info("detection", img_size, with_background=False)
    return DataBundle(train, val, test, info, collate_fn=collate_detection)


@register_dataset("shapes_segmentation")
def shapes_segmentation(
    *,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 200,
    img_size: int = 64,
    max_objects: int = 4,
    min_objects: int = 1,
    min_size: float = 0.2,
    max_size: float = 0.45,
    max_occlusion: float = 0.4,
    noise: float = 0.06,
    seed: int = 0,
) -> DataBundle:
    """Generated shapes with semantic masks: ``(images, masks)`` batches.

    ``info["num_classes"]`` is 5: the background (class 0) and the four shapes.

    Args:
        n_train: training images.
        n_val: validation images (0: none).
        n_test: test images (0: none).
        img_size: side length of the square images.
        max_objects: most shapes per image.
        min_objects: fewest shapes per image (fewer when one finds no room).
        min_size: smallest shape diameter, as a fraction of img_size.
        max_size: largest shape diameter, as a fraction of img_size.
        max_occlusion: the largest share of a shape later ones may cover.
        noise: standard deviation of the pixel noise.
        seed: the dataset's seed.
    """
    _check(n_train, img_size, max_objects, min_objects, min_size, max_size)
    splits = _splits(
        n_train,
        n_val,
        n_test,
        img_size=img_size,
        max_objects=max_objects,
        min_objects=min_objects,
        size_range=(min_size, max_size),
        max_occlusion=max_occlusion,
        noise=noise,
        seed=seed,
    )
    train, val, test = (ShapesSegmentation(a) if a is not None else None for a in splits)
    info = _info("segmentation", img_size, with_background=True)
    return DataBundle(train, val, test, info)
