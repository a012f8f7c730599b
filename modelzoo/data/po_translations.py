"""Parallel text from software-localisation catalogs: real, human-made translations.

Django, Sphinx, Wagtail and django-allauth ship their user-interface strings translated
by volunteers into dozens of languages, as gettext ``.po`` catalogs inside their wheels.
``scripts/build_po_corpus.py`` extracts English -> X sentence pairs from them with the
rules below and commits the result, compressed, under ``modelzoo/data/corpora/po/``
with each project's license and a NOTICE; this module reads it. Nothing is downloaded.

Extraction rules (:func:`catalog_pairs`):

- fuzzy, obsolete and untranslated entries are skipped;
- a plural entry gives two pairs when the language has two or more plural forms: the
  singular msgid with the form the catalog's own plural rule picks for n = 1, and the
  plural msgid with the form it picks for n = 5 (``msgstr[0]``/``msgstr[1]`` in most
  languages; Arabic's singular is ``msgstr[1]``). With one form (Japanese, Chinese,
  ...) only the singular pair is taken;
- whitespace runs (newlines, tabs) become one space and ends are stripped; nothing else
  is changed: HTML tags and placeholders (``%(name)s``, ``%s``, ``%d``, ``{0}``,
  ``{name}``) stay as they are;
- a pair whose target does not hold the same placeholders as its source (as a multiset)
  is dropped: software would break on it, and it would teach a model to drop them;
- a source without a letter outside its placeholders (``"%s: %s"``) is dropped;
- pairs are de-duplicated per language; the first project in ``PROJECTS`` order keeps it.

Splits are made **by source string**, for every language at once: :func:`split_of`
hashes a normalised key of the English source (case-folded, trailing punctuation
removed), so a source and its case variants fall in one split; the build script also
keeps the singular and plural msgids of one entry together (the split of the group is
that of its smallest key). 80 % of the sources train, 10 % validate, 10 % test; the
committed corpus stores each source's split.

``build_data("po_translations", pair="en-de")`` yields token ids of a BPE tokenizer
(:class:`modelzoo.data.tokenizers.SubwordTokenizer`) trained on the pair's training
split only; ``pair="en-multi"`` trains one model for every language in the corpus, each
source prefixed with a target-language tag token (``<2de>``). :func:`text_pairs` and
:func:`reference_sets` give the raw text of a split for scoring with sacrebleu.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import hashlib
import io
import json
import logging
import lzma
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.data.seq2seq import BOS_ID, EOS_ID, PAD_ID, collate_seq2seq
from modelzoo.data.tokenizers import SubwordTokenizer, cached_tokenizer, find_placeholders
from modelzoo.errors import ConfigError

__all__ = [
    "CORPUS_DIR",
    "CORPUS_FILE",
    "META_FILE",
    "PROJECTS",
    "SPLIT_FRACTIONS",
    "TranslationPairs",
    "catalog_pairs",
    "corpus_languages",
    "language_tag",
    "load_corpus",
    "normalize_language",
    "normalize_text",
    "po_translations",
    "read_catalog",
    "reference_sets",
    "split_key",
    "split_of",
    "split_of_key",
    "text_pairs",
]

_logger = logging.getLogger(__name__)

CORPUS_DIR = Path(__file__).parent / "corpora" / "po"
CORPUS_FILE = "po_translations.json.xz"
META_FILE = "corpus.json"  # versions, licenses, statistics and the sha256 of CORPUS_FILE

# name on PyPI, SPDX license, the license file shipped beside the corpus
PROJECTS = {
    "django": ("Django", "BSD-3-Clause", "LICENSE.django"),
    "sphinx": ("Sphinx", "BSD-2-Clause", "LICENSE.sphinx"),
    "wagtail": ("Wagtail", "BSD-3-Clause", "LICENSE.wagtail"),
    "django-allauth": ("django-allauth", "MIT", "LICENSE.django-allauth"),
}

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)

# Catalog directory names that mean the same language as another (default regions,
# script-named Chinese), so one language is not split over two codes.
_LANGUAGE_ALIASES = {
    "az_AZ": "az",
    "he_IL": "he",
    "hr_HR": "hr",
    "id_ID": "id",
    "is_IS": "is",
    "nb_NO": "nb",
    "sk_SK": "sk",
    "tr_TR": "tr",
    "uk_UA": "uk",
    "pt_PT": "pt",
    "zh_CN": "zh_Hans",
    "zh": "zh_Hans",
    "zh_TW": "zh_Hant",
}

_SPACE = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_TRAILING = re.compile(r"[\s.:;!?\u2026]+$")


# --- extraction rules (used by scripts/build_po_corpus.py) --------------------------------


def normalize_text(text: str) -> str:
    """NFC, every whitespace run to one space, ends stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def normalize_language(code: str) -> str:
    """A catalog's language code in the corpus's form: ``pt_BR``, ``zh_Hans``, ``de``.

    Default-region codes (``hr_HR``) and old Chinese codes (``zh_CN``) map to one name.
    """
    code = code.replace("-", "_")
    return _LANGUAGE_ALIASES.get(code, code)


def split_key(source: str) -> str:
    """The key a source is split by: case-folded, trailing punctuation removed."""
    return _TRAILING.sub("", normalize_text(source).casefold())


def split_of(source: str) -> str:
    """``"train"``, ``"val"`` or ``"test"``: fixed by the source's :func:`split_key` alone."""
    return split_of_key(split_key(source))


def split_of_key(key: str) -> str:
    """The split of a :func:`split_key` (a hash of it: stable as the corpus grows)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < SPLIT_FRACTIONS[0]:
        return "train"
    return "val" if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1] else "test"


def _placeholder_counts(text: str) -> Counter:
    return Counter(find_placeholders(text))


def read_catalog(data: bytes | str) -> Any:
    """Parse ``.po`` text with babel (``babel.messages.pofile.read_po``).

    babel prints a warning line for each malformed entry (e.g. more plural forms than the
    header declares); those lines are logged at debug level instead.
    """
    try:
        from babel.messages.pofile import read_po
    except ImportError as err:
        raise ConfigError(
            "reading .po catalogs needs babel (only to rebuild the corpus): pip install babel"
        ) from err
    raw = data.encode("utf-8") if isinstance(data, str) else data
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        catalog = read_po(io.BytesIO(raw))
    for line in captured.getvalue().splitlines():
        _logger.debug("babel: %s", line)
    return catalog


def _plural_indices(catalog: Any) -> tuple[int, int] | None:
    """The msgstr indices for n = 1 and n = 5, or None with fewer than two plural forms."""
    if catalog.num_plurals < 2:
        return None
    try:
        rule = gettext.c2py(catalog.plural_expr)
        one, many = int(rule(1)), int(rule(5))
    except (ValueError, SyntaxError, TypeError):  # an unreadable Plural-Forms header
        one, many = 0, 1
    return one, many


def catalog_pairs(catalog: Any, stats: Counter | None = None) -> list[tuple[str, str, str]]:
    """The ``(english, translation, anchor)`` triples of a parsed catalog, by the module's
    rules. ``anchor`` is the entry's (normalised) singular msgid: a plural pair has its
    singular there, so the build can keep both in one split; otherwise it is the source.

    Args:
        catalog: a ``babel.messages.catalog.Catalog`` (:func:`read_catalog`).
        stats: counts of what was skipped and why, added to in place.
    """
    stats = stats if stats is not None else Counter()
    stats["obsolete"] += len(catalog.obsolete)
    plural = _plural_indices(catalog)
    pairs: list[tuple[str, str, str]] = []
    for message in catalog:
        if not message.id:  # the header entry
            continue
        if message.fuzzy:
            stats["fuzzy"] += 1
            continue
        if isinstance(message.id, (list, tuple)):
            forms = message.string if isinstance(message.string, (list, tuple)) else ()
            if plural is None:
                candidates = [(message.id[0], forms[0] if forms else "")]
            else:
                candidates = [
                    (message.id[0], forms[plural[0]] if plural[0] < len(forms) else ""),
                    (message.id[1], forms[plural[1]] if plural[1] < len(forms) else ""),
                ]
        else:
            candidates = [(message.id, message.string or "")]
        anchor = normalize_text(candidates[0][0])
        for source, target in candidates:
            source, target = normalize_text(source), normalize_text(target or "")
            if not source or not target:
                stats["empty"] += 1
                continue
            placeholders = _placeholder_counts(source)
            bare = source
            for p in placeholders:
                bare = bare.replace(p, " ")
            if not _LETTER.search(bare):
                stats["no_words"] += 1
                continue
            if placeholders != _placeholder_counts(target):
                stats["placeholder_mismatch"] += 1
                continue
            pairs.append((source, target, anchor))
    stats["pairs"] += len(pairs)
    return pairs


# --- the committed corpus -----------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def load_corpus(directory: str | None = None) -> dict[str, Any]:
    """The committed corpus, checked against the sha256 in ``corpus.json``.

    Returns a dict with ``sources`` (every English source), ``languages`` (code ->
    ``[[source_index, target], ...]``) and ``meta`` (the contents of ``corpus.json``).
    """
    base = Path(directory) if directory else CORPUS_DIR
    meta_path, data_path = base / META_FILE, base / CORPUS_FILE
    if not meta_path.is_file() or not data_path.is_file():
        raise ConfigError(
            f"the po_translations corpus is missing from {base} (expected {META_FILE} and "
            f"{CORPUS_FILE}); reinstall modelzoo, or rebuild it with scripts/build_po_corpus.py"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    raw = data_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != meta["sha256"]:
        raise ConfigError(
            f"{data_path} has sha256 {digest} but {META_FILE} records {meta['sha256']}: the "
            "file is damaged or was changed by hand; reinstall modelzoo or rebuild it with "
            "scripts/build_po_corpus.py"
        )
    corpus = json.loads(lzma.decompress(raw).decode("utf-8"))
    corpus["meta"] = meta
    return corpus


def corpus_languages(directory: str | None = None) -> list[str]:
    """The target languages of the corpus (each has enough pairs to train on)."""
    return sorted(load_corpus(directory)["languages"])


def language_tag(language: str) -> str:
    """The token that asks a multilingual model for ``language``: ``<2de>``."""
    return f"<2{language}>"


def _language_of(pair: str, languages: Sequence[str]) -> str:
    source, _, target = pair.partition("-")
    if source != "en" or not target:
        raise ConfigError(
            f"pair must be 'en-<language>' or 'en-multi' (the catalogs translate from "
            f"English); got {pair!r}"
        )
    if target != "multi" and target not in languages:
        close = [lang for lang in languages if lang.split("_")[0] == target.split("_")[0]]
        hint = f" Did you mean: {', '.join('en-' + c for c in close)}?" if close else ""
        raise ConfigError(
            f"no language {target!r} in the po_translations corpus.{hint} Languages: "
            f"{', '.join(languages)}, or 'en-multi' for all of them"
        )
    return target


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")


def text_pairs(pair: str, split: str, *, directory: str | None = None) -> list[tuple[str, str]]:
    """Raw ``(english, translation)`` text of one split of a language pair.

    ``pair="en-multi"`` gives the pairs of every language, the source prefixed with its
    tag (``"<2de> Delete"``), in language order.
    """
    _check_split(split)
    corpus = load_corpus(directory)
    languages = sorted(corpus["languages"])
    target = _language_of(pair, languages)
    sources, splits = corpus["sources"], corpus["splits"]
    wanted = SPLITS.index(split)
    out: list[tuple[str, str]] = []
    for lang in languages if target == "multi" else [target]:
        prefix = language_tag(lang) + " " if target == "multi" else ""
        for index, translation in corpus["languages"][lang]:
            if splits[index] == wanted:
                out.append((prefix + sources[index], translation))
    return out


def reference_sets(
    pair: str, split: str = "test", *, directory: str | None = None
) -> tuple[list[str], list[list[str | None]]]:
    """Unique sources of a split and all their references, in sacrebleu's layout.

    A source can have several human translations (from two projects, or a case variant
    in one); BLEU and chrF then score a hypothesis against all of them.

    Returns:
        ``(sources, references)``: ``references[k][i]`` is the k-th reference of source
        ``i``, or None where it has fewer; pass them as
        ``sacrebleu.corpus_bleu(hypotheses, references)``.
    """
    grouped: dict[str, list[str]] = {}
    for source, target in text_pairs(pair, split, directory=directory):
        grouped.setdefault(source, []).append(target)
    sources = list(grouped)
    depth = max((len(v) for v in grouped.values()), default=0)
    references = [
        [grouped[s][k] if k < len(grouped[s]) else None for s in sources] for k in range(depth)
    ]
    return sources, references


# --- the dataset --------------------------------------------------------------------------


class TranslationPairs(Dataset):
    """Token-id pairs ``(src, tgt)`` with their text: ``texts[i]`` is item i's
    ``(english, translation)`` (for scoring decoded output against the reference)."""

    def __init__(
        self, items: list[tuple[torch.Tensor, torch.Tensor]], texts: list[tuple[str, str]]
    ) -> None:
        self.items = items
        self.texts = texts

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[index]


def _encode_split(
    tokenizer: SubwordTokenizer,
    rows: list[tuple[str, str, int | None, str]],
    max_len: int,
) -> tuple[TranslationPairs, int]:
    """Encode ``(source, target, tag_id, shown_source)`` rows; rows longer than ``max_len``
    are dropped. ``shown_source`` is what the item's ``texts`` entry holds."""
    # A source is shared by up to one pair per language: encode each distinct one once.
    distinct = list(dict.fromkeys(r[0] for r in rows))
    encoded = dict(zip(distinct, tokenizer.encode_batch(distinct), strict=True))
    sources = [encoded[r[0]] for r in rows]
    targets = tokenizer.encode_batch([r[1] for r in rows], add_bos=True, add_eos=True)
    items, texts, dropped = [], [], 0
    for (_, target, tag, shown), s_ids, t_ids in zip(rows, sources, targets, strict=True):
        src = ([tag] if tag is not None else []) + s_ids + [EOS_ID]
        if len(src) > max_len or len(t_ids) > max_len:
            dropped += 1
            continue
        items.append((torch.tensor(src, dtype=torch.long), torch.tensor(t_ids, dtype=torch.long)))
        texts.append((shown, target))
    return TranslationPairs(items, texts), dropped


@register_dataset("po_translations")
def po_translations(
    *,
    pair: str = "en-de",
    vocab_size: int = 8000,
    max_len: int = 128,
    languages: Sequence[str] | None = None,
    max_train_pairs: int | None = None,
    seed: int = 0,
) -> DataBundle:
    """English -> X translation pairs from the software catalogs of Django, Sphinx, Wagtail
    and django-allauth, as subword token ids.

    Items are ``(src, tgt)`` int64 vectors in the layout of ``modelzoo.data.seq2seq``:
    ``src`` is ``[<2xx>?] source... <eos>``, ``tgt`` is ``<bos> target... <eos>``; the
    bundle's ``collate_fn`` pads both with ``pad_id`` (0). The tokenizer is byte-level
    BPE trained on the training split's sources and targets together (one shared
    vocabulary), so any text encodes and decodes exactly; placeholders seen twice or more
    in training are single tokens. ``info`` holds ``tokenizer`` (a
    :class:`~modelzoo.data.tokenizers.SubwordTokenizer`), ``decode`` (ids -> text),
    ``vocab_size``, ``pad_id``/``bos_id``/``eos_id``, ``lang_tags`` (language -> tag id)
    and the corpus's provenance. Each split's ``texts`` gives the raw pairs of its items.

    Args:
        pair: ``"en-<language>"`` (``corpus_languages()`` lists them) or ``"en-multi"``.
        vocab_size: BPE vocabulary size, special tokens included.
        max_len: pairs whose source or target exceed this many tokens (specials included)
            are left out of every split (``info["dropped_long"]`` counts them).
        languages: with ``en-multi``, the languages to include (default: all).
        max_train_pairs: keep at most this many training pairs, a seeded random subset
            (default: all).
        seed: the seed of that subset; the splits themselves are fixed by the corpus.
    """
    corpus = load_corpus()
    all_languages = sorted(corpus["languages"])
    target = _language_of(pair, all_languages)
    if vocab_size < 300:
        raise ConfigError(f"vocab_size must be >= 300 (256 bytes + specials); got {vocab_size}")
    if max_len < 3:
        raise ConfigError(f"max_len must be >= 3 (a token plus bos/eos); got {max_len}")
    if target == "multi":
        chosen = list(languages) if languages else all_languages
        unknown = [lang for lang in chosen if lang not in all_languages]
        if unknown:
            raise ConfigError(
                f"languages {unknown} are not in the corpus; choose from {', '.join(all_languages)}"
            )
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"languages holds duplicates: {list(chosen)}")
    else:
        if languages:
            raise ConfigError(f"languages is for pair='en-multi'; pair={pair!r} has one language")
        chosen = [target]
    if max_train_pairs is not None and max_train_pairs < 1:
        raise ConfigError(f"max_train_pairs must be >= 1 or None; got {max_train_pairs}")

    multi = target == "multi"
    tags = [language_tag(lang) for lang in chosen] if multi else []
    rows: dict[str, list[tuple[str, str, str]]] = {s: [] for s in SPLITS}
    sources, splits = corpus["sources"], corpus["splits"]
    for lang in chosen:
        for index, translation in corpus["languages"][lang]:
            rows[SPLITS[splits[index]]].append((sources[index], translation, lang))
    if max_train_pairs is not None and len(rows["train"]) > max_train_pairs:
        g = torch.Generator().manual_seed(seed)
        keep = sorted(torch.randperm(len(rows["train"]), generator=g)[:max_train_pairs].tolist())
        rows["train"] = [rows["train"][i] for i in keep]

    tokenizer = _tokenizer(tuple(rows["train"]), vocab_size, tuple(tags))
    tag_ids = {lang: tokenizer.token_to_id(language_tag(lang)) for lang in chosen} if multi else {}
    datasets, dropped = {}, {}
    for split in SPLITS:
        # The text of a multilingual item names its target language, as text_pairs does.
        encoded = [
            (s, t, tag_ids.get(lang), f"{language_tag(lang)} {s}" if multi else s)
            for s, t, lang in rows[split]
        ]
        datasets[split], dropped[split] = _encode_split(tokenizer, encoded, max_len)
    max_src = max((len(s) for d in datasets.values() for s, _ in d.items), default=0)
    max_tgt = max((len(t) for d in datasets.values() for _, t in d.items), default=0)
    meta = corpus["meta"]
    info = {
        "task": "seq2seq",
        "vocab_size": tokenizer.vocab_size,
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "max_len": max(max_src, max_tgt),  # longest src or tgt, specials included
        "max_src_len": max_src,
        "max_tgt_len": max_tgt,
        "tokenizer": tokenizer,
        "decode": tokenizer.decode,
        "pair": pair,
        "source_language": "en",
        "target_languages": chosen,
        "lang_tags": tag_ids,
        "sizes": {s: len(d) for s, d in datasets.items()},
        "dropped_long": dropped,
        "corpus_sha256": meta["sha256"],
        "projects": meta["projects"],
    }
    return DataBundle(datasets["train"], datasets["val"], datasets["test"], info, collate_seq2seq)


@functools.lru_cache(maxsize=4)
def _tokenizer(
    train_rows: tuple[tuple[str, str, str], ...], vocab_size: int, tags: tuple[str, ...]
) -> SubwordTokenizer:
    """BPE on the training sources and targets, cached in memory and in
    ``MODELZOO_HOME/data/po_translations/`` (training is deterministic)."""
    texts: list[str] = []
    seen: set[str] = set()
    for source, target, _ in train_rows:
        if source not in seen:  # a source shared by 40 languages counts once
            seen.add(source)
            texts.append(source)
        texts.append(target)
    return cached_tokenizer(
        texts, cache_dir=_cache_root(), vocab_size=vocab_size, special_tokens=list(tags)
    )


def _cache_root() -> Path:
    from modelzoo.weights.cache import cache_dir

    return cache_dir() / "data" / "po_translations"
