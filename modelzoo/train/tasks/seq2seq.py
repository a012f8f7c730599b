"""Sequence to sequence: teacher-forced cross-entropy, and greedy decoding at evaluation.

Batches are ``(src, tgt)`` of token ids padded with ``pad_id``; each target row
is ``[bos, y_1 .. y_n, eos]``. Training is teacher-forced: the model reads
``tgt[:, :-1]`` and scores ``tgt[:, 1:]``, padding excluded. Works with
``RNNSeq2Seq`` and ``TransformerSeq2Seq``: the source padding goes to whichever
argument the model's ``forward``/``generate`` take (``src_lengths`` or
``src_padding_mask``).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.train.tasks.base import Task, Totals

__all__ = ["Seq2SeqTask", "greedy_match_totals"]


def greedy_match_totals(
    predicted: torch.Tensor, labels: torch.Tensor, pad_id: int
) -> dict[str, tuple[float, int]]:
    """Sequence and token agreement of decoded ids with the labels.

    Args:
        predicted: decoded ids (B, L), without the start token, padded with ``pad_id``
            after the end token (``generate``'s output).
        labels: the targets without the start token (B, T), padded with ``pad_id``.
        pad_id: the padding id.

    Returns:
        ``exact_match``: rows equal to their label up to and including its end token
        (and nothing but padding after it); ``token_accuracy_greedy``: label positions
        (padding excluded) where the decoded id is the label's.
    """
    B, T = labels.shape
    overflow = torch.zeros(B, dtype=torch.bool, device=labels.device)
    if predicted.shape[1] > T:
        # Decoded steps past the label's length count against a row unless they are padding.
        overflow = (predicted[:, T:] != pad_id).any(dim=1)
        predicted = predicted[:, :T]
    elif predicted.shape[1] < T:
        predicted = F.pad(predicted, (0, T - predicted.shape[1]), value=pad_id)  # (B, T)
    mask = labels != pad_id
    equal = predicted == labels
    exact = equal.all(dim=1) & ~overflow
    return {
        "exact_match": (float(exact.sum()), B),
        "token_accuracy_greedy": (float((equal & mask).sum()), int(mask.sum())),
    }


def _params(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


class Seq2SeqTask(Task):
    """Teacher-forced cross-entropy on ``(src, tgt)`` batches.

    Metrics: ``loss`` (mean cross-entropy per target token, padding excluded, no
    label smoothing), ``accuracy`` (teacher-forced next-token accuracy), and with
    ``greedy_eval`` the decoded measures ``exact_match`` (share of sequences that
    greedy ``generate`` gets entirely right) and ``token_accuracy_greedy``
    (position-wise agreement of the greedy output with the target, padding excluded).

    Args:
        model: ``model(src, tgt_in, ...)`` returns logits (B, T, V); ``model.generate(src,
            max_len, ...)`` returns ids (B, L) without the start token.
        pad_id: padding id of sources and targets (from the data's info in recipes).
        bos_id: the id that starts every target.
        eos_id: the id that ends every target.
        label_smoothing: cross-entropy label smoothing of the training loss.
        greedy_eval: decode greedily at each evaluation (slower; gives exact_match).
    """

    name = "seq2seq"

    def __init__(
        self,
        model: nn.Module,
        *,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        label_smoothing: float = 0.0,
        greedy_eval: bool = True,
    ) -> None:
        super().__init__(model)
        for key, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            own = getattr(model, key, None)
            if own is not None and own != value:
                raise ConfigError(
                    f"the data uses {key}={value} but the model was built with {key}={own}; "
                    f"build it with model.{key}={value}"
                )
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.label_smoothing = label_smoothing
        self.greedy_eval = greedy_eval
        self.monitor = "exact_match" if greedy_eval else "loss"
        self.monitor_mode = "max" if greedy_eval else "min"
        self._forward_params = _params(model.forward)
        self._generate_params = _params(getattr(model, "generate", None))

    def _source_kwargs(self, src: torch.Tensor, params: set[str]) -> dict[str, torch.Tensor]:
        """The source padding, in the form the model takes (none when no row is padded)."""
        padding = src == self.pad_id
        if not bool(padding.any()):
            return {}
        if "src_padding_mask" in params:
            return {"src_padding_mask": padding}
        if "src_lengths" in params:
            # Padding only ever follows a source, so its valid length is the non-pad count.
            return {"src_lengths": (~padding).sum(dim=1).clamp_min(1).cpu()}
        return {}

    def _split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src, tgt = batch[0], batch[1]
        if tgt.ndim != 2 or tgt.shape[1] < 2:
            raise InputShapeError(
                f"seq2seq targets must be (B, T) rows [bos, ..., eos] with T >= 2; got shape "
                f"{tuple(tgt.shape)}"
            )
        return src, tgt[:, :-1], tgt[:, 1:]

    def _logits(self, net: nn.Module, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return net(src, tgt_in, **self._source_kwargs(src, self._forward_params)).float()

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        src, tgt_in, labels = self._split(batch)
        logits = self._logits(self.net, src, tgt_in)
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            labels.flatten(),
            ignore_index=self.pad_id,
            label_smoothing=self.label_smoothing,
        )
        return {"loss": loss}

    def validation_step(self, batch: Any) -> Totals:
        src, tgt_in, labels = self._split(batch)
        logits = self._logits(self.model, src, tgt_in).flatten(0, 1)
        flat = labels.flatten()
        mask = flat != self.pad_id
        n = int(mask.sum())
        loss = F.cross_entropy(logits, flat, ignore_index=self.pad_id, reduction="sum")
        totals: Totals = {
            "loss": (loss.item(), n),
            "accuracy": (((logits.argmax(-1) == flat) & mask).sum().item(), n),
        }
        if self.greedy_eval:
            predicted = self.decode(src, labels.shape[1])
            totals.update(greedy_match_totals(predicted, labels, self.pad_id))
        return totals

    @torch.no_grad()
    def decode(self, src: torch.Tensor, max_len: int) -> torch.Tensor:
        """Greedy ``generate`` output (B, L <= max_len), without the start token."""
        kwargs = self._source_kwargs(src, self._generate_params)
        return self.model.generate(src, max_len, **kwargs)

    def predict_step(self, batch: Any) -> torch.Tensor:
        """Greedy translations of the sources (B, L), as ``generate`` returns them."""
        src = self.inputs_of(batch)
        if isinstance(batch, (list, tuple)) and len(batch) > 1:
            max_len = batch[1].shape[1] - 1
        else:
            max_len = src.shape[1] + 2
        return self.decode(src, min(max_len, getattr(self.model, "max_len", max_len)))
