"""Speech recognition with connectionist temporal classification (Graves et al., ICML 2006).

Batches are ``(waveforms (B, N), lengths (B,), targets (B, L), target_lengths (B,))``,
as ``modelzoo.data.audio.collate_ctc`` pads them; the model maps ``(waveforms, lengths)``
to ``CTCOutput(log_probs (B, T', V), lengths (B,))`` with the blank at ``blank_id``.

Metrics: ``loss`` (the CTC loss of each utterance divided by its target length,
averaged over utterances: what ``F.ctc_loss(reduction="mean")`` computes), ``cer``
(the token error rate of the decoded ids: edit distance over reference length, both
summed over the evaluation; for character vocabularies the character error rate) and
``exact_match`` (utterances decoded without error). With ``tokens`` (the text each id
stands for), also ``wer`` and ``text_cer``: word and character error rates of the
decoded *text* against the reference text, scored by ``jiwer``.

Decoding is best-path (``greedy``: the most likely token per frame, repeats collapsed,
blanks dropped) or CTC prefix beam search (``beam``: :func:`beam_search`, Graves 2012,
§7.5; Hannun et al. 2014 without a language model), which sums the probability of every
alignment of a prefix, so it can prefer a transcript that no single best path spells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.models.audio import greedy_decode
from modelzoo.train.tasks.base import Task, Totals

__all__ = [
    "CTCTask",
    "DECODERS",
    "beam_decode",
    "beam_search",
    "character_error_rate",
    "ctc_decode",
    "edit_distance",
    "error_counts",
    "error_rates",
    "tokens_to_text",
]

DECODERS = ("greedy", "beam")
_NEG_INF = -math.inf


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


# --- decoding -------------------------------------------------------------------------------


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


def _check_scores(log_probs: torch.Tensor, lengths: Any, what: str) -> tuple[np.ndarray, list]:
    if log_probs.ndim != 3:
        raise InputShapeError(
            f"{what} expects scores of shape (B, T, vocab_size); got shape "
            f"{tuple(log_probs.shape)}."
        )
    B, T, _ = log_probs.shape
    # log-softmax again: logits are accepted too, and the beam's scores must be log-probabilities
    scores = log_probs.detach().float().log_softmax(dim=-1).cpu().double().numpy()
    steps = [T] * B if lengths is None else [int(n) for n in torch.as_tensor(lengths).cpu()]
    if len(steps) != B or any(not 0 <= n <= T for n in steps):
        raise InputShapeError(f"{what} got lengths {steps} for {B} rows of {T} frames.")
    return scores, steps


def _prefix_beam(
    frames: np.ndarray, beam_size: int, blank: int, prune: float
) -> list[tuple[tuple[int, ...], float]]:
    """Prefix beam search over one utterance's (T, V) log-probabilities."""
    # prefix -> [log P(prefix, ending in blank), log P(prefix, ending in its last token)]
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, _NEG_INF]}
    floor = math.log(prune) if prune > 0 else _NEG_INF
    for row in frames:
        # Tokens below the floor cannot lift a prefix into the beam; the best one is kept so
        # that a frame always extends something.
        candidates = [int(c) for c in np.nonzero(row >= floor)[0] if c != blank]
        if not candidates:
            best = int(np.argmax(np.where(np.arange(len(row)) == blank, _NEG_INF, row)))
            candidates = [best]
        blank_p = float(row[blank])
        following: dict[tuple[int, ...], list[float]] = {}
        for prefix, (p_blank, p_token) in beams.items():
            total = _logaddexp(p_blank, p_token)
            same = following.setdefault(prefix, [_NEG_INF, _NEG_INF])
            same[0] = _logaddexp(same[0], total + blank_p)
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = float(row[c])
                longer = following.setdefault(prefix + (c,), [_NEG_INF, _NEG_INF])
                if c == last:
                    # "aa" needs a blank between the two a's; without one they collapse into
                    # the same prefix.
                    longer[1] = _logaddexp(longer[1], p_blank + p)
                    same[1] = _logaddexp(same[1], p_token + p)
                else:
                    longer[1] = _logaddexp(longer[1], total + p)
        ranked = sorted(following.items(), key=lambda kv: -_logaddexp(*kv[1]))
        beams = dict(ranked[:beam_size])
    scored = [(prefix, _logaddexp(*p)) for prefix, p in beams.items()]
    scored = [item for item in scored if item[1] > _NEG_INF]  # impossible prefixes are no answer
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def beam_search(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    beam_size: int = 8,
    blank: int = 0,
    prune: float = 1e-4,
) -> list[list[tuple[list[int], float]]]:
    """CTC prefix beam search without a language model: the ``beam_size`` most probable
    transcripts of each row, with their log-probabilities.

    A transcript's probability is summed over all of its alignments (the paths that
    collapse to it) that stay in the beam, so it is a lower bound of
    ``p(transcript | audio)`` that is exact when the beam keeps every prefix.

    Args:
        log_probs: (B, T, vocab_size) log-probabilities (logits are normalized first).
        lengths: valid frames per row (B,); frames after them are ignored.
        beam_size: prefixes kept after each frame.
        blank: the blank token's id.
        prune: tokens whose probability at a frame is below this are not tried there
            (0 tries every token).

    Returns:
        Per row, up to ``beam_size`` ``(token ids, log-probability)``, most probable first.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size must be an integer >= 1; got {beam_size!r}")
    if not 0 <= prune < 1:
        raise ConfigError(f"prune must be a probability in [0, 1); got {prune!r}")
    scores, steps = _check_scores(log_probs, lengths, "beam_search")
    if not 0 <= blank < scores.shape[-1]:
        raise ConfigError(f"blank={blank} is no token id of a {scores.shape[-1]}-token vocabulary")
    return [
        [(list(prefix), score) for prefix, score in _prefix_beam(row[:n], beam_size, blank, prune)]
        for row, n in zip(scores, steps, strict=True)
    ]


def beam_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    beam_size: int = 8,
    blank: int = 0,
    itos: Sequence[str] | None = None,
) -> list[list[int]] | list[str]:
    """The most probable transcript of each row by prefix beam search (see
    :func:`beam_search`); the same form as :func:`~modelzoo.models.audio.greedy_decode`."""
    found = beam_search(log_probs, lengths, beam_size=beam_size, blank=blank)
    best = [hyps[0][0] for hyps in found]
    if itos is None:
        return best
    return ["".join(itos[t] for t in tokens) for tokens in best]


def ctc_decode(
    log_probs: torch.Tensor,
    lengths: torch.Tensor | Sequence[int] | None = None,
    *,
    decoder: str = "greedy",
    beam_size: int = 8,
    blank: int = 0,
) -> list[list[int]]:
    """Token ids of each row by ``decoder``: ``"greedy"`` (best path) or ``"beam"``."""
    if decoder == "greedy":
        return greedy_decode(log_probs, lengths, blank=blank)
    if decoder == "beam":
        return beam_decode(log_probs, lengths, beam_size=beam_size, blank=blank)
    raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")


def tokens_to_text(ids: Sequence[int], tokens: Sequence[str], separator: str = "") -> str:
    """The text that token ids stand for: ``separator.join(tokens[i] for i in ids)``, with
    runs of spaces collapsed and the ends stripped.

    ``tokens`` is the text of each id: the characters themselves for a character
    vocabulary (``separator=""``), or whole words (e.g. ``["", "zero", "one", ...]`` for
    digit ids, ``separator=" "``).
    """
    try:
        text = separator.join(tokens[i] for i in ids)
    except IndexError:
        raise ConfigError(
            f"token ids {list(ids)} reach past the {len(tokens)} tokens given"
        ) from None
    return " ".join(text.split())


def error_counts(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, int]:
    """Word and character edit operations of texts against references, counted by ``jiwer``.

    Returns:
        ``word_errors`` (substitutions + deletions + insertions), ``words`` (reference
        words), ``char_errors``, ``chars`` (reference characters, spaces included, as
        jiwer counts them) and ``exact`` (texts equal to their reference).
    """
    import jiwer

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        return {"word_errors": 0, "words": 0, "char_errors": 0, "chars": 0, "exact": 0}
    if any(not r.strip() for r in references):
        raise ValueError("every reference needs at least one word; jiwer scores no empty ones")
    refs, hyps = list(references), list(hypotheses)
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return {
        "word_errors": words.substitutions + words.deletions + words.insertions,
        "words": words.substitutions + words.deletions + words.hits,
        "char_errors": chars.substitutions + chars.deletions + chars.insertions,
        "chars": chars.substitutions + chars.deletions + chars.hits,
        "exact": sum(h == r for h, r in zip(hyps, refs, strict=True)),
    }


def error_rates(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus-level ``wer`` and ``cer`` (edits summed over all texts, divided by the summed
    reference length; ``jiwer.wer`` / ``jiwer.cer`` on the lists) and ``exact_match``."""
    counts = error_counts(hypotheses, references)
    n = max(len(references), 1)
    return {
        "wer": counts["word_errors"] / max(counts["words"], 1),
        "cer": counts["char_errors"] / max(counts["chars"], 1),
        "exact_match": counts["exact"] / n,
    }


class CTCTask(Task):
    """CTC loss on padded speech batches; loss, token error rate and exact match (and word
    and character error rates of the text, given ``tokens``).

    Args:
        model: ``model(waveforms, lengths)`` returns ``CTCOutput(log_probs, lengths)``.
        blank_id: the blank token's id (0 in every model of the audio family).
        zero_infinity: score an utterance whose targets cannot fit its output frames as 0
            (no gradient) instead of infinity.
        decoder: how evaluation decodes: ``"greedy"`` (best path) or ``"beam"`` (prefix
            beam search; slower, in Python).
        beam_size: prefixes kept by the beam decoder.
        tokens: the text each id stands for (see :func:`tokens_to_text`); with it, evaluation
            also reports ``wer`` and ``text_cer`` (jiwer).
        separator: what joins the tokens' texts (``" "`` for word tokens).
    """

    name = "ctc"
    monitor = "cer"
    monitor_mode = "min"

    def __init__(
        self,
        model: nn.Module,
        *,
        blank_id: int = 0,
        zero_infinity: bool = True,
        decoder: str = "greedy",
        beam_size: int = 8,
        tokens: Sequence[str] | None = None,
        separator: str = "",
    ) -> None:
        super().__init__(model)
        if decoder not in DECODERS:
            raise ConfigError(f"task.decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ConfigError(f"task.beam_size must be an integer >= 1; got {beam_size!r}")
        self.blank_id = blank_id
        self.zero_infinity = zero_infinity
        self.decoder = decoder
        self.beam_size = beam_size
        self.tokens = list(tokens) if tokens is not None else None
        self.separator = separator

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
        hypotheses = self.decode(log_probs, steps)
        references = [t[:n].tolist() for t, n in zip(targets.cpu(), target_lengths.cpu())]
        edits = [edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True)]
        n = len(references)
        totals: Totals = {
            "loss": (per_token.sum().item(), n),
            "cer": (float(sum(edits)), sum(len(r) for r in references)),
            "exact_match": (float(sum(e == 0 for e in edits)), n),
        }
        if self.tokens is not None:
            texts = [tokens_to_text(h, self.tokens, self.separator) for h in hypotheses]
            truth = [tokens_to_text(r, self.tokens, self.separator) for r in references]
            counts = error_counts(texts, truth)
            totals["wer"] = (float(counts["word_errors"]), counts["words"])
            totals["text_cer"] = (float(counts["char_errors"]), counts["chars"])
        return totals

    def decode(self, log_probs: torch.Tensor, steps: torch.Tensor | None) -> list[list[int]]:
        """Token ids of each row by the task's decoder."""
        return ctc_decode(
            log_probs, steps, decoder=self.decoder, beam_size=self.beam_size, blank=self.blank_id
        )

    def predict_step(self, batch: Any) -> list[list[int]]:
        """Token ids of each utterance by the task's decoder (blanks and repeats removed)."""
        if isinstance(batch, (list, tuple)):
            waveforms, lengths = batch[0], batch[1] if len(batch) > 1 else None
        else:
            waveforms, lengths = batch, None
        out = self.model(waveforms, lengths)
        return self.decode(out.log_probs, out.lengths)
