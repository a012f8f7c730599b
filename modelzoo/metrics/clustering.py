"""Scores of a clustering against known classes: NMI, ARI and cluster accuracy.

NMI and ARI are scikit-learn's (``normalized_mutual_info_score`` with the
arithmetic mean, ``adjusted_rand_score``); cluster accuracy is the share of points
whose cluster maps to their class under the best one-to-one matching of clusters to
classes (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``), the
"ACC" of the deep-clustering literature (e.g. Xie et al. 2016, DEC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cluster_accuracy", "clustering_scores", "kmeans_assign"]


def _labels(values: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of labels; got {array.shape}")
    return array


def cluster_accuracy(
    labels_true: Sequence[int] | np.ndarray, labels_pred: Sequence[int] | np.ndarray
) -> float:
    """The accuracy of the best one-to-one map from clusters to classes.

    Clusters left without a class (more clusters than classes) count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    true, pred = _labels(labels_true, "labels_true"), _labels(labels_pred, "labels_pred")
    if true.shape != pred.shape:
        raise ValueError(f"labels_true {true.shape} and labels_pred {pred.shape} differ")
    classes, true_idx = np.unique(true, return_inverse=True)
    clusters, pred_idx = np.unique(pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (pred_idx, true_idx), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(true))


def clustering_scores(
    labels_true: Sequence[int] | np.ndarray, labels_pred: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """``{"nmi", "ari", "accuracy"}`` of cluster assignments against the true classes."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    true, pred = _labels(labels_true, "labels_true"), _labels(labels_pred, "labels_pred")
    return {
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "ari": float(adjusted_rand_score(true, pred)),
        "accuracy": cluster_accuracy(true, pred),
    }


def kmeans_assign(
    fit_features: np.ndarray,
    features: np.ndarray,
    n_clusters: int,
    *,
    seed: int = 0,
    n_init: int = 10,
) -> np.ndarray:
    """Fit k-means (scikit-learn, k-means++ with ``n_init`` restarts) on ``fit_features`` and
    assign ``features`` to the nearest of its centres.

    Fitting on one set (e.g. a training split) and assigning another (a test split)
    keeps the scored points out of every choice the clustering makes.
    """
    from sklearn.cluster import KMeans

    fit_features = np.asarray(fit_features, dtype=np.float64)
    features = np.asarray(features, dtype=np.float64)
    if fit_features.ndim != 2 or features.ndim != 2 or fit_features.shape[1] != features.shape[1]:
        raise ValueError(
            f"need 2-D features of the same width; got {fit_features.shape} and {features.shape}"
        )
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed)
    return kmeans.fit(fit_features).predict(features)
