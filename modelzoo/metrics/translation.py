"""Translation measures: BLEU and chrF through sacrebleu, and placeholder preservation.

Software strings carry format placeholders (``%(count)s``, ``%s``, ``{0}``, ``{name}``)
that the program fills in at run time. A translation that drops, alters or invents one
breaks the program (``KeyError``, ``TypeError``, a missing number), however fluent it
reads, so localisation practitioners check them before anything else.
:func:`placeholder_preservation_rate` is that check over a test set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelzoo.data.tokenizers import find_placeholders
from modelzoo.errors import ConfigError

__all__ = [
    "PlaceholderReport",
    "TranslationScores",
    "extract_placeholders",
    "placeholder_preservation_rate",
    "placeholder_report",
    "sacrebleu_scores",
]


def extract_placeholders(text: str) -> list[str]:
    """The format placeholders of ``text`` in order: printf style (``%(name)s``, ``%s``,
    ``%d``, ``%.2f``) and str.format style (``{0}``, ``{name}``, ``{}``); the escapes
    ``%%``, ``{{`` and ``}}`` are not placeholders."""
    return find_placeholders(text)


@dataclass(frozen=True)
class PlaceholderReport:
    """Placeholder agreement of hypotheses with their sources.

    Attributes:
        rate: share of sources with placeholders whose hypothesis holds exactly the same
            placeholders (as a multiset: order is free, translators reorder them);
            NaN when no source has one.
        sentences: sources that hold at least one placeholder.
        preserved: of those, hypotheses with exactly their source's placeholders.
        recall: share of all source placeholders found in their hypothesis.
        invented: placeholders in hypotheses that their source does not have.
    """

    rate: float
    sentences: int
    preserved: int
    recall: float
    invented: int


def _check_lengths(sources: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(sources) != len(hypotheses):
        raise ConfigError(
            f"need one hypothesis per source; got {len(hypotheses)} hypotheses for "
            f"{len(sources)} sources"
        )


def placeholder_report(sources: Sequence[str], hypotheses: Sequence[str]) -> PlaceholderReport:
    """:class:`PlaceholderReport` of ``hypotheses`` (translations of ``sources``)."""
    _check_lengths(sources, hypotheses)
    sentences = preserved = wanted = found = invented = 0
    for source, hypothesis in zip(sources, hypotheses, strict=True):
        want, got = Counter(find_placeholders(source)), Counter(find_placeholders(hypothesis))
        invented += sum((got - want).values())
        if not want:
            continue
        sentences += 1
        preserved += want == got
        wanted += sum(want.values())
        found += sum((want & got).values())
    nan = float("nan")
    return PlaceholderReport(
        rate=preserved / sentences if sentences else nan,
        sentences=sentences,
        preserved=preserved,
        recall=found / wanted if wanted else nan,
        invented=invented,
    )


def placeholder_preservation_rate(sources: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Share of sources with placeholders whose translation keeps exactly those placeholders
    (NaN when no source has any). See :func:`placeholder_report` for the details."""
    return placeholder_report(sources, hypotheses).rate


@dataclass(frozen=True)
class TranslationScores:
    """Corpus BLEU and chrF (0-100) with sacrebleu's signatures, which say how they were
    computed (tokenizer, smoothing, version) so a number can be compared with another."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str


def sacrebleu_scores(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str | None]] | Sequence[str],
    *,
    target_language: str | None = None,
) -> TranslationScores:
    """BLEU and chrF of ``hypotheses`` with sacrebleu's defaults.

    Args:
        hypotheses: one translation per test sentence.
        references: one reference per sentence (a list of strings), or sacrebleu's layout
            of several: a list of reference streams, each as long as ``hypotheses``, None
            where a sentence has fewer (``po_translations.reference_sets`` returns this).
        target_language: for BLEU's tokenizer: Chinese (``zh*``) uses ``zh``, Japanese
            ``ja-mecab`` is not assumed installed, so ``ja`` and ``ko`` use ``char``;
            every other language sacrebleu's default ``13a``.
    """
    try:
        import sacrebleu
    except ImportError as err:
        raise ConfigError("BLEU and chrF need sacrebleu: pip install sacrebleu") from err
    if references and isinstance(references[0], str):
        streams: list[Any] = [list(references)]
    else:
        streams = [list(r) for r in references]
    for stream in streams:
        _check_lengths(stream, hypotheses)
    tokenize = None
    if target_language:
        lang = target_language.split("_")[0].split("-")[0].lower()
        tokenize = "zh" if lang == "zh" else "char" if lang in ("ja", "ko", "th") else None
    bleu = sacrebleu.metrics.BLEU(tokenize=tokenize) if tokenize else sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(list(hypotheses), streams)
    c = chrf.corpus_score(list(hypotheses), streams)
    return TranslationScores(
        bleu=float(b.score),
        chrf=float(c.score),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
    )
