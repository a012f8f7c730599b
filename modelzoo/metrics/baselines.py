"""Trivial predictors that a learned model must beat to have learned anything."""

from __future__ import annotations

import torch

__all__ = ["mean_predictor_mse"]


def mean_predictor_mse(train_targets: torch.Tensor, test_targets: torch.Tensor) -> float:
    """Test MSE (per element) of always predicting the mean training target.

    For targets of shape (N, ...) the mean is taken over the N examples, so an image
    target gets the mean image. This is the floor a regression or reconstruction model
    is compared with: a ratio near 1 means the model learned nothing.

    Raises:
        ValueError: when either set is empty or their per-example shapes differ.
    """
    if len(train_targets) == 0 or len(test_targets) == 0:
        raise ValueError("mean_predictor_mse needs at least one training and one test target")
    if train_targets.shape[1:] != test_targets.shape[1:]:
        raise ValueError(
            f"per-example target shapes differ: train {tuple(train_targets.shape[1:])}, "
            f"test {tuple(test_targets.shape[1:])}"
        )
    mean = train_targets.double().mean(dim=0, keepdim=True)
    return float((test_targets.double() - mean).pow(2).mean())
