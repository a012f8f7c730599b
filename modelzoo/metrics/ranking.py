"""Ranking measures: how well a score separates two groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["auroc"]


def auroc(positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: the chance that a positive scores above a negative.

    Computed as the Mann-Whitney U statistic over average ranks, so a tie between a
    positive and a negative counts one half (the same value as
    ``sklearn.metrics.roc_auc_score`` on the concatenated scores).

    Args:
        positive: scores of the positive class (e.g. anomaly scores of unseen classes).
        negative: scores of the negative class.

    Returns:
        A value in [0, 1]: 1 when every positive outscores every negative, 0.5 for chance.

    Raises:
        ValueError: when either side is empty or a score is not finite.
    """
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError(
            f"auroc needs scores on both sides; got {pos.size} positive and {neg.size} negative"
        )
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("auroc needs finite scores; drop or replace NaN and inf first")
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # 1-based rank of each distinct value, averaged over its ties.
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))
