"""What a trained classifier makes of a set of inputs: the "judge" measures of generated samples.

A classifier trained on real data reads generated images: confident predictions spread
evenly over the classes mean recognisable, diverse samples. The classifier score is the
Inception score (Salimans et al. 2016) computed with that classifier instead of
Inception-v3.
"""

from __future__ import annotations

import torch

__all__ = ["classifier_measures"]


def classifier_measures(
    probs: torch.Tensor, labels: torch.Tensor | None = None
) -> dict[str, float]:
    """Confidence, class diversity and (with labels) accuracy of class probabilities.

    Args:
        probs: class probabilities (N, K), each row summing to one (a softmax).
        labels: the intended class of each input (N,), e.g. a conditional GAN's condition.

    Returns:
        ``confidence``: mean of the largest probability per row;
        ``class_entropy_bits``: entropy of the histogram of predicted classes (log2 K when
        every class is equally common, 0 when every input gets one class);
        ``classifier_score``: exp of the mean KL divergence from p(y|x) to the mean p(y)
        (between 1 and K); and ``accuracy`` against ``labels`` when they are given.

    Raises:
        ValueError: when ``probs`` is not a non-empty (N, K) tensor or ``labels`` has
            another length.
    """
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must be (N, K) with N >= 1; got shape {tuple(probs.shape)}")
    if labels is not None and labels.shape != probs.shape[:1]:
        raise ValueError(
            f"labels must be ({probs.shape[0]},) like the rows of probs; "
            f"got shape {tuple(labels.shape)}"
        )
    probs = probs.double()
    predicted = probs.argmax(dim=1)
    share = torch.bincount(predicted, minlength=probs.shape[1]).double() / len(predicted)
    nonzero = share[share > 0]
    marginal = probs.mean(dim=0)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(dim=1)
    out = {
        "confidence": float(probs.max(dim=1).values.mean()),
        "class_entropy_bits": 0.0 - float((nonzero * nonzero.log2()).sum()),  # never -0.0
        "classifier_score": float(kl.mean().exp()),
    }
    if labels is not None:
        out["accuracy"] = float((predicted == labels.to(predicted.device)).double().mean())
    return out
