"""Sequence to sequence: teacher-forced cross-entropy; decoding and text metrics at evaluation.

Batches are ``(src, tgt)`` of token ids padded with ``pad_id``; each target row
is ``[bos, y_1 .. y_n, eos]``. Training is teacher-forced: the model reads
``tgt[:, :-1]`` and scores ``tgt[:, 1:]``, padding excluded, with optional label
smoothing (Szegedy et al. 2016; the Transformer paper used 0.1). Works with
``RNNSeq2Seq`` and ``TransformerSeq2Seq``: the source padding goes to whichever
argument the model's ``forward``/``generate`` take (``src_lengths`` or
``src_padding_mask``).

At evaluation the model decodes every source, greedily or with beam search
(``beam_size``, ``length_penalty``). When the data comes with a subword tokenizer
(``info["tokenizer"]`` of ``po_translations`` and ``code_summaries``), the decoded ids
are turned back into text and scored as practitioners score it: corpus BLEU and chrF
with sacrebleu (one reference per item: the item's own target), the placeholder
preservation rate (a translation that drops ``%(count)s`` breaks the program), and
ROUGE-L F1 with Google's ``rouge-score`` for summaries. Corpus BLEU and chrF are not
means of per-batch values, so the decoded text of one evaluation is collected and
scored when the evaluation ends (:meth:`Seq2SeqTask.compute_metrics`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.train.tasks.base import Task, Totals

__all__ = ["TEXT_METRICS", "Seq2SeqTask", "greedy_match_totals"]

_logger = logging.getLogger(__name__)

# Scores of decoded text (they need a tokenizer): name -> what it measures.
TEXT_METRICS = {
    "bleu": "corpus BLEU (sacrebleu, 13a tokenization), 0-100",
    "chrf": "corpus chrF (sacrebleu, character 6-grams, beta 2), 0-100",
    "placeholders": "placeholder_rate: share of sources with format placeholders whose "
    "output keeps exactly those placeholders",
    "rouge_l": "mean ROUGE-L F1 (rouge-score, Porter stemming), 0-1",
}
_DEFAULT_TEXT_METRICS = ("bleu", "chrf", "placeholders")
# Which decoded-text metric picks best.ckpt, in order of preference: chrF is the smoother
# of the two corpus scores on a few hundred short sentences.
_MONITOR_ORDER = ("chrf", "bleu", "rouge_l")
_ROWS = "_decoded_rows"  # a totals key: how many rows this evaluation decoded


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
    ``generate`` gets entirely right) and ``token_accuracy_greedy`` (position-wise
    agreement of the output with the target, padding excluded). With a ``tokenizer``
    the decoded text is also scored with ``text_metrics`` (see :data:`TEXT_METRICS`):
    ``bleu``, ``chrf``, ``placeholder_rate``, ``rouge_l``.

    best.ckpt is chosen by ``chrf`` (else ``bleu``, else ``rouge_l``) when text is scored,
    by ``exact_match`` when only ids are decoded, and by ``loss`` otherwise (the recipe's
    ``train.monitor`` overrides it).

    Args:
        model: ``model(src, tgt_in, ...)`` returns logits (B, T, V); ``model.generate(src,
            max_len, ...)`` returns ids (B, L) without the start token.
        pad_id: padding id of sources and targets (from the data's info in recipes).
        bos_id: the id that starts every target.
        eos_id: the id that ends every target.
        label_smoothing: cross-entropy label smoothing of the training loss.
        greedy_eval: decode every source at each evaluation (greedy, or beam search with
            ``beam_size`` > 1). Slower; gives exact_match and the text metrics.
        beam_size: hypotheses kept per source when decoding (1: greedy).
        length_penalty: beam search ranks finished hypotheses by log-probability /
            length ** length_penalty (0: raw log-probability, which favours short outputs).
        max_decode_len: the most tokens decoded per source. Default: the label's length
            when only ids are scored; with text metrics (which must not peek at the
            reference) ``2 * source length + 10``, capped by the model's ``max_len``.
        tokenizer: turns ids back into text (``decode(ids) -> str``, e.g. the data's
            :class:`~modelzoo.data.tokenizers.SubwordTokenizer`); recipes take it from the
            data's ``info["tokenizer"]``.
        text_metrics: which scores of the decoded text to report (keys of
            :data:`TEXT_METRICS`); default ``["bleu", "chrf", "placeholders"]`` when there
            is a tokenizer. ``[]`` turns text scoring off.
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
        beam_size: int = 1,
        length_penalty: float = 1.0,
        max_decode_len: int | None = None,
        tokenizer: Any = None,
        text_metrics: Sequence[str] | None = None,
    ) -> None:
        super().__init__(model)
        for key, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            own = getattr(model, key, None)
            if own is not None and own != value:
                raise ConfigError(
                    f"the data uses {key}={value} but the model was built with {key}={own}; "
                    f"build it with model.{key}={value}"
                )
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1); got {label_smoothing}")
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ConfigError(f"beam_size must be an integer >= 1; got {beam_size!r}")
        if max_decode_len is not None and max_decode_len < 1:
            raise ConfigError(f"max_decode_len must be >= 1 or None; got {max_decode_len}")
        if text_metrics is not None:
            if isinstance(text_metrics, str):
                text_metrics = [text_metrics]
            unknown = [m for m in text_metrics if m not in TEXT_METRICS]
            if unknown:
                raise ConfigError(
                    f"unknown text_metrics {unknown}; choose from {', '.join(TEXT_METRICS)}"
                )
            text_metrics = tuple(dict.fromkeys(text_metrics))
        if text_metrics and not greedy_eval:
            raise ConfigError(
                f"text_metrics {list(text_metrics)} score decoded text, but greedy_eval=False "
                "turns decoding off; set greedy_eval=True or text_metrics=[]"
            )
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.label_smoothing = label_smoothing
        self.greedy_eval = greedy_eval
        self.beam_size = beam_size
        self.length_penalty = float(length_penalty)
        self.max_decode_len = max_decode_len
        self.tokenizer = tokenizer
        self.text_metrics = text_metrics  # as given (None: the default when there is a tokenizer)
        self.last_signatures: dict[str, str] = {}  # sacrebleu's, of the last evaluation
        self._decoded: list[tuple[str, str, str]] = []  # (source, output, reference) texts
        self._forward_params = _params(model.forward)
        self._generate_params = _params(getattr(model, "generate", None))

    # --- what is measured --------------------------------------------------------------

    @property
    def scored_metrics(self) -> tuple[str, ...]:
        """The decoded-text scores an evaluation reports (none without a tokenizer or
        decoding, unless ``text_metrics`` asks for some)."""
        if not self.greedy_eval:
            return ()
        if self.text_metrics is not None:
            return tuple(self.text_metrics)
        return _DEFAULT_TEXT_METRICS if self.tokenizer is not None else ()

    @property
    def monitor(self) -> str:  # type: ignore[override]
        for name in _MONITOR_ORDER:
            if name in self.scored_metrics:
                return name
        return "exact_match" if self.greedy_eval else "loss"

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "min" if self.monitor == "loss" else "max"

    # --- batches -----------------------------------------------------------------------

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
            scored = self.scored_metrics
            if scored and self.tokenizer is None:
                raise ConfigError(
                    f"text_metrics {list(scored)} need a tokenizer to turn ids into text; the "
                    "data gives none (info['tokenizer']). Pass tokenizer=... or text_metrics=[]"
                )
            # Text scores must not see the reference, so neither may the decoding length.
            fixed = scored or self.max_decode_len is not None
            max_len = self.decode_length(src) if fixed else labels.shape[1]
            predicted = self.decode(src, max_len)
            totals.update(greedy_match_totals(predicted, labels, self.pad_id))
            if scored:
                totals.update(self._text_totals(src, predicted, labels))
        return totals

    # --- decoding ----------------------------------------------------------------------

    def decode_length(self, src: torch.Tensor) -> int:
        """Tokens to decode for a batch of sources: ``max_decode_len``, or twice the
        longest source plus 10, capped by the model's ``max_len``."""
        length = self.max_decode_len or 2 * int(src.shape[1]) + 10
        model_max = getattr(self.model, "max_len", None)
        return min(length, model_max) if isinstance(model_max, int) else length

    @torch.no_grad()
    def decode(
        self,
        src: torch.Tensor,
        max_len: int,
        *,
        beam_size: int | None = None,
        length_penalty: float | None = None,
    ) -> torch.Tensor:
        """The model's output ids (B, L <= max_len), without the start token.

        Args:
            src: source ids (B, S), padded with ``pad_id``.
            max_len: the most tokens to produce per row.
            beam_size: default the task's (1: greedy).
            length_penalty: default the task's (beam search only).
        """
        beam = self.beam_size if beam_size is None else beam_size
        penalty = self.length_penalty if length_penalty is None else length_penalty
        kwargs: dict[str, Any] = self._source_kwargs(src, self._generate_params)
        if beam != 1:
            if "beam_size" not in self._generate_params:
                raise ConfigError(
                    f"{type(self.model).__name__}.generate has no beam_size; decode with "
                    "beam_size=1"
                )
            kwargs["beam_size"] = beam
            if "length_penalty" in self._generate_params:
                kwargs["length_penalty"] = penalty
        return self.model.generate(src, max_len, **kwargs)

    def _text(self, rows: torch.Tensor) -> list[str]:
        return [self.tokenizer.decode(row) for row in rows.tolist()]

    def _text_totals(
        self, src: torch.Tensor, predicted: torch.Tensor, labels: torch.Tensor
    ) -> Totals:
        sources, outputs, references = self._text(src), self._text(predicted), self._text(labels)
        self._decoded.extend(zip(sources, outputs, references, strict=True))
        totals: Totals = {_ROWS: (float(len(outputs)), 1)}
        if "placeholders" in self.scored_metrics:
            from modelzoo.metrics.translation import placeholder_report

            report = placeholder_report(sources, outputs)
            if report.sentences:  # batches without a placeholder say nothing about it
                totals["placeholder_rate"] = (float(report.preserved), report.sentences)
        if "rouge_l" in self.scored_metrics:
            from modelzoo.summarize import rouge_l

            totals["rouge_l"] = (float(sum(rouge_l(outputs, references))), len(outputs))
        return totals

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        """Means of the summed totals, and corpus BLEU/chrF of the text decoded since the
        last call (the evaluation that produced ``totals``)."""
        totals = dict(totals)
        rows = int(totals.pop(_ROWS, (0.0, 0))[0])
        metrics = super().compute_metrics(totals)
        decoded, self._decoded = self._decoded, []
        wanted = [m for m in ("bleu", "chrf") if m in self.scored_metrics]
        if not rows or not wanted:
            return metrics
        if rows <= len(decoded):
            # Rows left over from an evaluation that failed part-way come first.
            decoded = decoded[-rows:]
        else:  # other processes decoded the rest (distributed evaluation)
            _logger.warning(
                "BLEU/chrF are scored on the %d of %d evaluation rows this process decoded",
                len(decoded),
                rows,
            )
        if not decoded:
            return metrics
        from modelzoo.metrics.translation import sacrebleu_scores

        _, outputs, references = zip(*decoded, strict=True)
        scores = sacrebleu_scores(list(outputs), list(references))
        if "bleu" in wanted:
            metrics["bleu"] = scores.bleu
            self.last_signatures["bleu"] = scores.bleu_signature
        if "chrf" in wanted:
            metrics["chrf"] = scores.chrf
            self.last_signatures["chrf"] = scores.chrf_signature
        return metrics

    def predict_step(self, batch: Any) -> torch.Tensor:
        """The model's outputs for the sources (B, L), as ``generate`` returns them
        (greedy, or beam search with ``beam_size`` > 1)."""
        src = self.inputs_of(batch)
        if isinstance(batch, (list, tuple)) and len(batch) > 1 and self.max_decode_len is None:
            max_len = batch[1].shape[1] - 1
            model_max = getattr(self.model, "max_len", None)
            max_len = min(max_len, model_max) if isinstance(model_max, int) else max_len
        else:
            max_len = self.decode_length(src)
        return self.decode(src, max_len)
