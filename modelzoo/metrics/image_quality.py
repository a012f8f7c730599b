"""Full-reference image quality: PSNR and SSIM, per image.

- PSNR: ``10 * log10(data_range**2 / MSE)``, the mean squared error taken over each
  image's channels and pixels.
- SSIM: Wang, Bovik, Sheikh & Simoncelli, "Image Quality Assessment: From Error
  Visibility to Structural Similarity" (IEEE TIP 2004). Local means, variances and
  covariance under an 11x11 Gaussian window of standard deviation 1.5, constants
  ``C1 = (0.01 * L)**2`` and ``C2 = (0.03 * L)**2`` for a data range ``L``, the SSIM
  map over every position where the window fits inside the image (no padding),
  averaged over positions and channels. These are the paper's settings and those of
  scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=L)``.

Both compute in float64 and take (B, C, H, W) or (C, H, W) tensors.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["psnr", "ssim", "gaussian_window"]

Reduction = Literal["mean", "none"]


def _batched(pred: torch.Tensor, target: torch.Tensor, what: str) -> tuple[torch.Tensor, ...]:
    if pred.shape != target.shape:
        raise ValueError(
            f"{what}: pred and target must have the same shape; got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    if pred.ndim != 4 or pred.numel() == 0:
        raise ValueError(
            f"{what} takes non-empty (B, C, H, W) or (C, H, W) images; got shape "
            f"{tuple(pred.shape)}"
        )
    return pred.double(), target.double()


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}")


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image (``reduction="none"``: shape (B,)).

    Identical images give ``inf``. With ``reduction="mean"`` the per-image values are
    averaged (the usual way to report a test set), not the pooled error.

    Args:
        pred: images (B, C, H, W) or (C, H, W).
        target: reference images of the same shape.
        data_range: the span of the pixel values (1 for [0, 1], 255 for bytes).
        reduction: ``"mean"`` over images or ``"none"``.
    """
    pred, target = _batched(pred, target, "psnr")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0; got {data_range}")
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    return _reduce(10.0 * torch.log10(data_range**2 / mse), reduction)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A (size, size) Gaussian window summing to one, float64."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be a positive odd int; got {size}")
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004), per image (``reduction="none"``: shape (B,)).

    Args:
        pred: images (B, C, H, W) or (C, H, W).
        target: reference images of the same shape.
        data_range: the span of the pixel values (1 for [0, 1], 255 for bytes).
        window_size: side of the Gaussian window (odd; at most the image's sides).
        sigma: the window's standard deviation.
        k1: stabilizer of the luminance term, ``C1 = (k1 * data_range)**2``.
        k2: stabilizer of the contrast-structure term, ``C2 = (k2 * data_range)**2``.
        reduction: ``"mean"`` over images or ``"none"``.

    Raises:
        ValueError: the shapes differ, or the window does not fit in the image.
    """
    pred, target = _batched(pred, target, "ssim")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0; got {data_range}")
    h, w = pred.shape[-2:]
    if window_size > min(h, w):
        raise ValueError(
            f"ssim's {window_size}x{window_size} window does not fit in {h}x{w} images; pass "
            f"an odd window_size <= {min(h, w)} (and a smaller sigma), or compare larger images"
        )
    channels = pred.shape[1]
    window = gaussian_window(window_size, sigma).to(pred.device)
    window = window.expand(channels, 1, window_size, window_size)

    def local_mean(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=channels)  # depthwise, valid positions only

    mu_x, mu_y = local_mean(pred), local_mean(target)
    var_x = local_mean(pred * pred) - mu_x**2
    var_y = local_mean(target * target) - mu_y**2
    cov = local_mean(pred * target) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return _reduce(ssim_map.flatten(1).mean(dim=1), reduction)
