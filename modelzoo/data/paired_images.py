"""Image-to-image translation data that needs no download: paired and unpaired.

Three datasets, each built from data shipped with the zoo's dependencies:

* ``edges2digits`` (paired, like pix2pix's edges2shoes): sklearn's handwritten
  digits upsampled to ``img_size``, and their edge maps from a Canny-style filter
  (Gaussian smoothing, Sobel gradients, non-maximum suppression, hysteresis).
  Batches ``(edges, digits, labels)``: (B, 1, S, S) in {0, 1}, (B, 1, S, S) in
  [0, 1], (B,) int64.
* ``masks2scenes`` (paired, like pix2pix's labels2facades): semantic masks of the
  shapes generator (``modelzoo.data.shapes``) as colour-coded label images, and
  scenes painted from them: each class has its colour and texture (shaded discs,
  striped squares, hatched triangles, outlined rings on a graded background) and
  every scene a random light gradient and pixel noise, which no translation can
  predict. Batches ``(labels_rgb, scenes, masks)``: (B, 3, S, S), (B, 3, S, S) in
  [0, 1], (B, S, S) int64.
* ``digit_styles`` (unpaired, for CycleGAN): the digits in two renderings, domain
  A ``chalk`` (thin light strokes on a slate-green board) and domain B ``ink`` (thick
  dark-blue strokes on cream paper). The training split is cut per class into two
  halves, one rendered in each style, so no training digit is seen in both domains.
  Batches ``(a, b, labels_a, labels_b)``: (B, 3, S, S) each in [0, 1]. In the
  validation and test splits ``b`` is the *same* digit as ``a`` in style B, a
  ground truth that unpaired training never sees and evaluation may use.

Splits are stratified and seeded (``modelzoo.data.digits.split_indices``; the
shapes' images depend only on (seed, split, index)), so every run and every
process sees the same ones. ``info["task"]`` names the training task
(``pix2pix`` or ``cyclegan``); ``info["in_chans"]`` and ``info["out_chans"]`` are
the source and target channels.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from modelzoo.data.digits import load_digits_arrays, split_indices
from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.data.shapes import CLASSES, generate_shapes
from modelzoo.errors import ConfigError

__all__ = [
    "DIGIT_STYLES",
    "LABEL_COLOURS",
    "canny_edges",
    "colour_masks",
    "digit_styles",
    "edges2digits",
    "masks2scenes",
    "paint_scenes",
    "render_digits",
    "upsample_digits",
]

# Label image colours, background first, then CLASSES (circle, square, triangle, ring).
LABEL_COLOURS = np.array(
    [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]],
    dtype=np.float32,
)

# Two renderings of a digit: stroke width (the dilation radius in pixels at 32x32; a
# negative one thins), stroke colour and background colour (RGB in [0, 1]).
DIGIT_STYLES: dict[str, dict[str, object]] = {
    "chalk": {"width": -1, "ink": (0.95, 0.95, 0.88), "paper": (0.13, 0.3, 0.24)},
    "ink": {"width": 1, "ink": (0.08, 0.13, 0.45), "paper": (0.98, 0.94, 0.8)},
}
_SPLITS = {"train": 0, "val": 1, "test": 2}


# --- digits -----------------------------------------------------------------------------------


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"need 0 <= val_fraction, 0 < test_fraction and val_fraction + test_fraction < 1; "
            f"got val_fraction={val_fraction}, test_fraction={test_fraction}"
        )


def _check_size(img_size: int, multiple: int = 4) -> None:
    if not isinstance(img_size, int) or img_size < 8 or img_size % multiple:
        raise ConfigError(
            f"img_size must be an int >= 8 and a multiple of {multiple}; got {img_size!r}. "
            "Use e.g. 16 or 32."
        )


def upsample_digits(images: np.ndarray, img_size: int) -> np.ndarray:
    """(N, 8, 8) digits in [0, 1] to (N, img_size, img_size), bilinear as the ``digits`` data."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    return x[:, 0].clamp(0, 1).numpy()


def canny_edges(
    images: np.ndarray, *, sigma: float = 1.0, low: float = 0.1, high: float = 0.25
) -> np.ndarray:
    """Edge maps of grey images, the way Canny (1986) finds them.

    Gaussian smoothing, Sobel gradients, non-maximum suppression across the edge
    (the gradient direction rounded to 0, 45, 90 or 135 degrees; of two tied pixels the
    one further along the gradient stays), then hysteresis:
    pixels above ``high`` times the image's largest gradient are edges, and so are
    pixels above ``low`` times it that connect (8-neighbourhood) to one.

    Args:
        images: (N, H, W) floats.
        sigma: standard deviation of the smoothing, in pixels.
        low: the weak threshold, relative to each image's largest gradient.
        high: the strong threshold, relative to each image's largest gradient.

    Returns:
        (N, H, W) float32, 1 on edges and 0 elsewhere.
    """
    from scipy import ndimage

    if images.ndim != 3:
        raise ValueError(f"canny_edges takes (N, H, W) images; got shape {images.shape}")
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high; got low={low}, high={high}")
    x = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma))
    gy = ndimage.sobel(x, axis=1)
    gx = ndimage.sobel(x, axis=2)
    magnitude = np.hypot(gx, gy)
    peak = magnitude.reshape(len(x), -1).max(axis=1)[:, None, None]
    # Rounded so that the two pixels either side of a step edge tie exactly (below).
    magnitude = np.round(magnitude / np.maximum(peak, 1e-12), 9)
    # The two neighbours across the edge, for each of the four rounded directions.
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = (np.round(angle / 45.0).astype(np.int64)) % 4  # 0: 0, 1: 45, 2: 90, 3: 135 deg
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    h, w = magnitude.shape[1:]

    def shifted(dy: int, dx: int) -> np.ndarray:
        return padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}  # (dy, dx) along the gradient
    keep = np.zeros_like(magnitude, dtype=bool)
    for s, (dy, dx) in offsets.items():
        # Strictly above the neighbour ahead, at least the one behind: of two tied pixels
        # across an edge only one stays, so edges are one pixel wide.
        local_max = (magnitude > shifted(dy, dx)) & (magnitude >= shifted(-dy, -dx))
        keep |= (sector == s) & local_max
    thin = np.where(keep, magnitude, 0.0)
    weak = thin > low
    strong = thin > high
    # Connected weak pixels within one image (no connection across the batch axis).
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    labels, count = ndimage.label(weak, structure=structure)
    has_strong = np.zeros(count + 1, dtype=bool)
    has_strong[np.unique(labels[strong])] = True
    has_strong[0] = False
    return has_strong[labels].astype(np.float32)


def render_digits(images: np.ndarray, style: str, img_size: int = 32) -> np.ndarray:
    """(N, 8, 8) digits in [0, 1] rendered in a style of ``DIGIT_STYLES``: (N, 3, S, S) float32.

    The stroke is the upsampled digit's intensity, sharpened, thickened (max filter) or
    thinned (min filter) by the style's width, and softened by one pixel of blur; the
    image blends the style's paper and ink colours by it.
    """
    from scipy import ndimage

    if style not in DIGIT_STYLES:
        raise ConfigError(f"unknown digit style {style!r}; known: {', '.join(DIGIT_STYLES)}")
    spec = DIGIT_STYLES[style]
    x = upsample_digits(images, img_size)
    stroke = np.clip((x - 0.25) / 0.5, 0.0, 1.0)  # sharper edges than the bilinear ramp
    radius = int(round(int(spec["width"]) * img_size / 32))
    if radius:
        size = (1, 2 * abs(radius) + 1, 2 * abs(radius) + 1)
        filt = ndimage.maximum_filter if radius > 0 else ndimage.minimum_filter
        stroke = filt(stroke, size=size, mode="constant", cval=0.0)
    stroke = ndimage.gaussian_filter(stroke, sigma=(0, 0.5, 0.5))
    ink = np.asarray(spec["ink"], dtype=np.float32)[None, :, None, None]
    paper = np.asarray(spec["paper"], dtype=np.float32)[None, :, None, None]
    s = stroke[:, None].astype(np.float32)
    return np.clip(paper * (1 - s) + ink * s, 0.0, 1.0).astype(np.float32)


def _digit_splits(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    test_idx, val_idx, train_idx = split_indices(labels, [test_fraction, val_fraction], seed)
    return train_idx, val_idx, test_idx


@register_dataset("edges2digits")
def edges2digits(
    *,
    img_size: int = 32,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    sigma: float = 1.0,
    low: float = 0.1,
    high: float = 0.25,
) -> DataBundle:
    """Edge maps to digits (paired): ``(edges, digits, labels)`` batches.

    The split is the ``digits`` dataset's for the same seed and fractions, so a model
    of that data never saw these test digits either.

    Args:
        img_size: side length of both images (a multiple of 4, at least 8).
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for testing.
        seed: the split's seed.
        sigma: smoothing of the edge filter, in pixels.
        low: weak hysteresis threshold, relative to each image's largest gradient.
        high: strong hysteresis threshold, relative to each image's largest gradient.
    """
    _check_size(img_size)
    _check_fractions(val_fraction, test_fraction)
    images, labels = load_digits_arrays()
    digits = upsample_digits(images, img_size)
    edges = canny_edges(digits, sigma=sigma * img_size / 32, low=low, high=high)
    x = torch.from_numpy(edges)[:, None]
    y = torch.from_numpy(digits)[:, None]
    t = torch.from_numpy(labels)

    def subset(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(x[idx], y[idx], t[idx])

    train, val, test = (subset(i) for i in _digit_splits(labels, val_fraction, test_fraction, seed))
    info = {
        "task": "pix2pix",
        "in_chans": 1,
        "out_chans": 1,
        "img_size": img_size,
        "num_classes": 10,
        "source": "edges",
        "target": "digits",
    }
    return DataBundle(train, val if len(val) else None, test, info)


@register_dataset("digit_styles")
def digit_styles(
    *,
    img_size: int = 32,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    style_a: str = "chalk",
    style_b: str = "ink",
    judge: bool = False,
) -> DataBundle:
    """The digits in two styles (unpaired training): ``(a, b, labels_a, labels_b)`` batches.

    The training split's digits are halved per class (seeded): one half is rendered
    in ``style_a`` only, the other in ``style_b`` only, and training item ``i`` pairs
    A image ``i`` with a B image drawn by a fixed seeded permutation (usually of
    another class). Validation and test items hold the same digit in both styles.

    With ``judge=True`` the data is a 20-class classification of every digit of each
    split in both styles instead, ``(image, domain * 10 + digit)``: what a judge of
    translations (does an A->B image look like style B, and like the same digit?)
    trains on. The splits are the same, so the judge never sees a test digit.

    Args:
        img_size: side length (a multiple of 4, at least 8).
        val_fraction: share of each class held out for validation.
        test_fraction: share of each class held out for testing.
        seed: the split's seed.
        style_a: rendering of domain A (a key of ``DIGIT_STYLES``).
        style_b: rendering of domain B.
        judge: give the 20-class classification data described above instead.
    """
    _check_size(img_size)
    _check_fractions(val_fraction, test_fraction)
    if style_a == style_b:
        raise ConfigError(f"style_a and style_b must differ; both are {style_a!r}")
    images, labels = load_digits_arrays()
    train_idx, val_idx, test_idx = _digit_splits(labels, val_fraction, test_fraction, seed)
    rng = np.random.default_rng([seed, 7])
    half_a, half_b = [], []
    for c in np.unique(labels):
        idx = rng.permutation(train_idx[labels[train_idx] == c])
        half_a.extend(idx[: len(idx) // 2 + len(idx) % 2])
        half_b.extend(idx[len(idx) // 2 + len(idx) % 2 :])
    half_a, half_b = np.sort(np.array(half_a)), np.sort(np.array(half_b))
    t = torch.from_numpy(labels)

    def render(idx: np.ndarray, style: str) -> torch.Tensor:
        return torch.from_numpy(render_digits(images[idx], style, img_size))

    if judge:

        def both(idx: np.ndarray) -> TensorDataset:
            x = torch.cat([render(idx, style_a), render(idx, style_b)])
            return TensorDataset(x, torch.cat([t[idx], t[idx] + 10]))

        info = {
            "task": "classification",
            "num_classes": 20,
            "classes": [f"{style} {d}" for style in (style_a, style_b) for d in range(10)],
            "in_chans": 3,
            "img_size": img_size,
        }
        val = both(val_idx) if len(val_idx) else None
        return DataBundle(both(train_idx), val, both(test_idx), info)

    # Training pairs: every A image once, B images by a fixed permutation (cycled).
    n = max(len(half_a), len(half_b))
    pick_a = half_a[np.arange(n) % len(half_a)]
    pick_b = half_b[rng.permutation(n) % len(half_b)]
    train = TensorDataset(render(pick_a, style_a), render(pick_b, style_b), t[pick_a], t[pick_b])

    def paired(idx: np.ndarray) -> TensorDataset:
        return TensorDataset(render(idx, style_a), render(idx, style_b), t[idx], t[idx])

    info = {
        "task": "cyclegan",
        "in_chans": 3,
        "out_chans": 3,
        "img_size": img_size,
        "num_classes": 10,
        "domains": [style_a, style_b],
        "train_a": len(half_a),
        "train_b": len(half_b),
    }
    return DataBundle(train, paired(val_idx) if len(val_idx) else None, paired(test_idx), info)


# --- shapes ----------------------------------------------------------------------------------


def colour_masks(masks: np.ndarray) -> np.ndarray:
    """(N, S, S) class masks to (N, 3, S, S) label images in ``LABEL_COLOURS``."""
    return LABEL_COLOURS[masks.astype(np.int64)].transpose(0, 3, 1, 2).copy()


def paint_scenes(
    masks: np.ndarray, *, seed: int = 0, split: str = "train", noise: float = 0.03
) -> np.ndarray:
    """Scenes painted from (N, S, S) class masks: (N, 3, S, S) float32 in [0, 1].

    Background: sand coloured, lighter towards the top, with faint horizontal bands.
    Circles: orange balls lit in the middle; squares: blue with stripes every 4 pixels;
    triangles: green with diagonal hatching; rings: yellow; every shape with a dark
    outline. Then what the label image cannot tell: a light gradient of random direction
    and strength, and pixel noise. Scene ``i`` depends only on (mask ``i``, seed, split,
    i): its light and noise come from a generator seeded by them.
    """
    from scipy import ndimage

    masks = np.asarray(masks)
    n, s = len(masks), masks.shape[-1]
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    u, v = ys / max(s - 1, 1), xs / max(s - 1, 1)
    bands = 0.04 * np.sin(2 * math.pi * ys / 6.0)
    background = np.stack([base + 0.12 * (0.5 - u) + bands for base in (0.82, 0.74, 0.58)])
    image = np.repeat(background[None].astype(np.float32), n, axis=0)  # (N, 3, S, S)
    # Image by image, never across the batch: a 4-neighbourhood within each (S, S) plane,
    # and distances along the batch axis too long to matter.
    cross = np.zeros((3, 3, 3), dtype=bool)
    cross[1] = ndimage.generate_binary_structure(2, 1)
    stripe = (ys.astype(np.int64) % 4 < 2).astype(np.float32)
    hatch = ((xs + ys).astype(np.int64) % 4 == 0).astype(np.float32)
    for label in range(1, len(CLASSES) + 1):
        region = masks == label
        if not region.any():
            continue
        kind = CLASSES[label - 1]
        if kind == "circle":  # lit by the depth inside the ball (pixels from its border)
            depth = ndimage.distance_transform_edt(region, sampling=(4.0 * s, 1.0, 1.0))
            peak = depth.reshape(n, -1).max(axis=1)[:, None, None]
            lit = np.clip(depth / np.maximum(peak, 1.0), 0, 1)
            colour = [0.55 + 0.4 * lit, 0.2 + 0.35 * lit, 0.05 + 0.1 * lit]
        elif kind == "square":
            colour = [0.12 + 0.1 * stripe, 0.25 + 0.15 * stripe, 0.55 + 0.35 * stripe]
        elif kind == "triangle":
            colour = [0.2 - 0.1 * hatch, 0.68 - 0.3 * hatch, 0.25 - 0.1 * hatch]
        else:  # ring
            colour = [np.float64(0.95), np.float64(0.82), np.float64(0.15)]
        for c in range(3):
            image[:, c][region] = np.broadcast_to(colour[c], region.shape)[region]
        # The outline: shape pixels with a 4-neighbour outside the shape (inside the image).
        rim = region & ~ndimage.binary_erosion(region, structure=cross, border_value=1)
        image *= np.where(rim[:, None], np.float32(0.45), np.float32(1.0))
    out = np.empty_like(image)
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLITS[split], i, 1])
        angle = rng.uniform(0, 2 * math.pi)
        strength = rng.uniform(0.0, 0.15)
        light = strength * ((u - 0.5) * math.cos(angle) + (v - 0.5) * math.sin(angle))
        out[i] = np.clip(image[i] + light[None] + rng.normal(0.0, noise, size=image[i].shape), 0, 1)
    return out


@register_dataset("masks2scenes")
def masks2scenes(
    *,
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 500,
    img_size: int = 32,
    max_objects: int = 3,
    min_size: float = 0.25,
    max_size: float = 0.5,
    noise: float = 0.03,
    seed: int = 0,
    direction: Literal["masks_to_scenes", "scenes_to_masks"] = "masks_to_scenes",
) -> DataBundle:
    """Label images to painted scenes (paired): ``(labels_rgb, scenes, masks)`` batches.

    ``direction="scenes_to_masks"`` swaps source and target (the label image is then
    the target; ``masks`` stay the class indices).

    Args:
        n_train: training images.
        n_val: validation images (0: none).
        n_test: test images.
        img_size: side length (a multiple of 4, at least 16).
        max_objects: most shapes per image.
        min_size: smallest shape diameter, as a fraction of img_size.
        max_size: largest shape diameter, as a fraction of img_size.
        noise: standard deviation of the scenes' pixel noise.
        seed: the dataset's seed (masks and scenes).
        direction: ``masks_to_scenes`` or ``scenes_to_masks``.
    """
    _check_size(img_size)
    if img_size < 16:
        raise ConfigError(f"img_size must be >= 16 for shapes to be recognisable; got {img_size}")
    if n_train < 1 or n_test < 1 or n_val < 0:
        raise ConfigError(
            f"need n_train >= 1, n_test >= 1 and n_val >= 0; got n_train={n_train}, "
            f"n_val={n_val}, n_test={n_test}"
        )
    if direction not in ("masks_to_scenes", "scenes_to_masks"):
        raise ConfigError(
            f"direction must be 'masks_to_scenes' or 'scenes_to_masks'; got {direction!r}"
        )

    def split(n: int, name: str) -> TensorDataset | None:
        if n == 0:
            return None
        masks = generate_shapes(
            n,
            img_size=img_size,
            max_objects=max_objects,
            size_range=(min_size, max_size),
            seed=seed,
            split=name,
        ).masks
        labels = torch.from_numpy(colour_masks(masks))
        scenes = torch.from_numpy(paint_scenes(masks, seed=seed, split=name, noise=noise))
        source, target = (labels, scenes) if direction == "masks_to_scenes" else (scenes, labels)
        return TensorDataset(source, target, torch.from_numpy(masks.astype(np.int64)))

    info = {
        "task": "pix2pix",
        "in_chans": 3,
        "out_chans": 3,
        "img_size": img_size,
        "classes": ["background", *CLASSES],
        "source": "labels" if direction == "masks_to_scenes" else "scenes",
        "target": "scenes" if direction == "masks_to_scenes" else "labels",
    }
    return DataBundle(split(n_train, "train"), split(n_val, "val"), split(n_test, "test"), info)
