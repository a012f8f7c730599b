"""Summarize Python code in one sentence with a trained encoder-decoder, and score summaries.

    import modelzoo as mz
    from modelzoo.summarize import summarize

    summarize("runs/summarize-transformer", ["def add(a, b):\\n    return a + b"])

The model is trained on ``code_summaries`` (standard-library functions without their
docstring -> the docstring's first sentence); :func:`summarize` loads it the way
:func:`modelzoo.translate.translate` loads a translation model (a run directory, a
weights file with its tokenizer in the header, or a model object). :func:`rouge_l` is
the ROUGE-L F1 of Google's ``rouge-score`` package (Lin 2004), the usual summary score.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError

__all__ = ["rouge_l", "summarize"]


@functools.lru_cache(maxsize=1)
def _scorer() -> Any:
    try:
        from rouge_score import rouge_scorer
    except ImportError as err:
        raise ConfigError("ROUGE needs rouge-score: pip install 'modelzoo[text]'") from err
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F1 (0-1) of each hypothesis against its reference: the longest common
    subsequence of lower-cased, Porter-stemmed word tokens (``rouge-score``'s rules)."""
    if len(hypotheses) != len(references):
        raise ConfigError(
            f"need one reference per hypothesis; got {len(references)} references for "
            f"{len(hypotheses)} hypotheses"
        )
    scorer = _scorer()
    return [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hypotheses, references)]


def summarize(
    model: nn.Module | str | os.PathLike[str],
    sources: Sequence[str],
    *,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    max_len: int = 48,
    batch_size: int = 16,
    tokenizer: Any = None,
) -> list[str]:
    """One-sentence summaries of Python functions.

    Args:
        model: a summarization model, run directory or weights file (see
            :func:`modelzoo.translate.load_text_model`).
        sources: function sources (without their docstring, as in training).
        beam_size: beams of the search (1: greedy).
        length_penalty: beam search's length normalisation exponent.
        max_len: the most tokens per summary.
        batch_size: functions decoded together.
        tokenizer: for a model that carries none: the data's ``info["tokenizer"]``.

    Returns:
        One summary per source, in order. Sources longer than the model's training
        inputs are cut at the end, as the training data cut them.
    """
    from modelzoo.translate import generate_text, load_text_model

    loaded = load_text_model(model, tokenizer=tokenizer)
    spec = loaded.text_spec
    if tokenizer is None and spec.kind != "summarization":
        raise ConfigError(f"this model does {spec.kind}, not summarization; use mz.translate")
    limit = getattr(loaded, "max_len", None)
    cut = int(spec.dataset.get("max_src_len", limit or 256))
    if isinstance(limit, int):
        cut = min(cut, limit)
    return generate_text(
        loaded,
        sources,
        beam_size=beam_size,
        length_penalty=length_penalty,
        max_len=max_len,
        batch_size=batch_size,
        max_src_len=cut,
    )
