"""Speech recognition with connectionist temporal classification (Graves et al., ICML 2006).

Batches are ``(waveforms (B, N), lengths (B,), targets (B, L), target_lengths (B,))``,
as ``modelzoo.data.audio.collate_ctc`` pads them; the model maps ``(waveforms, lengths)``
to ``CTCOutput(log_probs (B, T', V), lengths (B,))`` with the blank at ``blank_id``.

Metrics: ``loss`` (the CTC loss of each utterance divided by its target length,
averaged over utterances: what ``F.ctc_loss(reduction="mean")`` computes), ``cer``
(the character error rate of best-path decoding: edit distance over reference length,
both summed over the evaluation) and ``exact_match`` (utterances decoded without error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import InputShapeError
from modelzoo.models.audio import greedy_decode
from modelzoo.train.tasks.base import Task, Totals

__all__ = ["CTCTask", "character_error_rate", "edit_distance"]


def edit_distance(hypothesis: Sequence[Any], reference: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions that turn
    ``hypothesis`` into ``reference`` (sequences of tokens or strings of characters)."""
    if len(hypothesis) < len(reference):
        hypothesis, reference = reference, hypothesis  # the row is the shorter sequence
    previous = list(range(len(reference) + 1))  # distances from the empty prefix
    for i, h in enumerate(hypothesis, start=1):
        current = [i]
        for j, r in enumerate(reference, start=1):
            current.append(
                min(
                    previous[j] + 1,  # h deleted
                    current[j - 1] + 1,  # r inserted
                    previous[j - 1] + (h != r),  # substituted, or matched at no cost
                )
            )
        previous = current
    return previous[-1]


def character_error_rate(
    hypotheses: Sequence[Sequence[Any]], references: Sequence[Sequence[Any]]
) -> float:
    """Summed edit distances over summed reference lengths (can exceed 1)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    edits = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    return edits / max(sum(len(r) for r in references), 1)


class CTCTask(Task):
    """CTC loss on padded speech batches; loss, character error rate and exact match.

    Args:
        model: ``model(waveforms, lengths)`` returns ``CTCOutput(log_probs, lengths)``.
        blank_id: the blank token's id (0 in every model of the audio family).
        zero_infinity: score an utterance whose targets cannot fit its output frames as 0
            (no gradient) instead of infinity.
    """

    name = "ctc"
    monitor = "cer"
    monitor_mode = "min"

    def __init__(self, model: nn.Module, *, blank_id: int = 0, zero_infinity: bool = True) -> None:
        super().__init__(model)
        self.blank_id = blank_id
        self.zero_infinity = zero_infinity

    @staticmethod
    def _split(batch: Any) -> tuple[torch.Tensor, ...]:
        if not isinstance(batch, (list, tuple)) or len(batch) != 4:
            raise InputShapeError(
                "ctc batches are (waveforms, lengths, targets, target_lengths), as "
                "modelzoo.data.audio.collate_ctc makes them; got "
                f"{type(batch).__name__} of {len(batch) if hasattr(batch, '__len__') else '?'}"
            )
        waveforms, lengths, targets, target_lengths = batch
        if targets.ndim != 2 or tuple(target_lengths.shape) != (targets.shape[0],):
            raise InputShapeError(
                f"ctc targets must be padded (B, L) ids with target_lengths (B,); got targets "
                f"{tuple(targets.shape)} and target_lengths {tuple(target_lengths.shape)}"
            )
        return waveforms, lengths, targets, target_lengths

    def _outputs(self, net: nn.Module, waveforms: torch.Tensor, lengths: torch.Tensor) -> Any:
        out = net(waveforms, lengths)
        log_probs = out.log_probs.float()  # (B, T', V)
        steps = out.lengths
        if steps is None:
            steps = torch.full((len(log_probs),), log_probs.shape[1], dtype=torch.long)
        return log_probs, steps.to(log_probs.device)

    def _loss(
        self,
        log_probs: torch.Tensor,
        steps: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        reduction: str,
    ) -> torch.Tensor:
        return F.ctc_loss(
            log_probs.transpose(0, 1),  # (T', B, V): ctc_loss is time-first
            targets,
            steps,
            target_lengths,
            blank=self.blank_id,
            reduction=reduction,
            zero_infinity=self.zero_infinity,
        )

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        waveforms, lengths, targets, target_lengths = self._split(batch)
        log_probs, steps = self._outputs(self.net, waveforms, lengths)
        return {"loss": self._loss(log_probs, steps, targets, target_lengths, "mean")}

    def validation_step(self, batch: Any) -> Totals:
        waveforms, lengths, targets, target_lengths = self._split(batch)
        log_probs, steps = self._outputs(self.model, waveforms, lengths)
        per_utterance = self._loss(log_probs, steps, targets, target_lengths, "none")
        per_token = per_utterance / target_lengths.clamp_min(1).to(per_utterance.dtype)
        hypotheses = greedy_decode(log_probs, steps, blank=self.blank_id)
        references = [t[:n].tolist() for t, n in zip(targets.cpu(), target_lengths.cpu())]
        edits = [edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True)]
        n = len(references)
        return {
            "loss": (per_token.sum().item(), n),
            "cer": (float(sum(edits)), sum(len(r) for r in references)),
            "exact_match": (float(sum(e == 0 for e in edits)), n),
        }

    def predict_step(self, batch: Any) -> list[list[int]]:
        """Best-path token ids of each utterance (blanks and repeats removed)."""
        if isinstance(batch, (list, tuple)):
            waveforms, lengths = batch[0], batch[1] if len(batch) > 1 else None
        else:
            waveforms, lengths = batch, None
        out = self.model(waveforms, lengths)
        return greedy_decode(out.log_probs, out.lengths, blank=self.blank_id)
