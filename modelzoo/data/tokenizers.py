"""Subword tokenizers trained on a corpus, through Hugging Face's ``tokenizers`` library.

:class:`SubwordTokenizer` wraps a ``tokenizers.Tokenizer`` (BPE, Sennrich et al. 2016, or
a Unigram language model, Kudo 2018) and gives it the id layout the zoo's sequence
models and tasks expect: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3 (the same
pad/bos/eos ids as ``modelzoo.data.seq2seq``), then any extra special tokens (e.g.
target-language tags ``<2de>``), then the learned vocabulary.

- Byte-level (the default, as GPT-2): text is read as UTF-8 bytes, so every string
  encodes without ``<unk>`` and decodes back exactly, newlines and indentation included.
  Without ``byte_level`` a Metaspace pre-tokenizer (SentencePiece style) is used and
  characters never seen in training become ``<unk>``.
- Placeholders: software strings carry format placeholders (``%(count)s``, ``%s``,
  ``{0}``, ``{name}``) that a translation must copy verbatim. Every placeholder seen at
  least ``placeholder_min_count`` times in the training texts becomes one token of its
  own, matched before any other splitting, so a model copies it as a unit; any other
  placeholder is isolated from its neighbours by the pre-tokenizer and still round-trips.
- BPE training is deterministic: the same texts in the same order give the same JSON in
  any process (the library's parallelism is turned off while training). Unigram training
  is not bit-for-bit reproducible across processes (the library's trainer breaks ties in
  hash-map order, seeded per process); the datasets use BPE.

Files are the library's own JSON (``tokenizer.json``), written with
:func:`modelzoo.utils.io.atomic_write_text`, so ``tokenizers.Tokenizer.from_file`` reads
them too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from modelzoo.errors import ConfigError
from modelzoo.utils.io import atomic_write_text

__all__ = [
    "PAD",
    "BOS",
    "EOS",
    "UNK",
    "SPECIAL_TOKENS",
    "PLACEHOLDER_PATTERN",
    "find_placeholders",
    "SubwordTokenizer",
    "cached_tokenizer",
]

_logger = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3

# printf-style (``%(name)s``, ``%s``, ``%5.2f``; ``%%`` is a literal percent sign) and
# str.format-style (``{0}``, ``{name}``, ``{}``, ``{obj.attr!r:>10}``; ``{{`` is a literal
# brace). Neither form allows a space (printf's space flag is left out), so prose such as
# "100% sure" or words in braces is not taken for a placeholder.
PLACEHOLDER_PATTERN = (
    r"%(?:\([^()\s]{1,60}\))?[#0+\-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[hlL]?[diouxXeEfFgGcrsab]"
    r"|(?<!\{)\{[A-Za-z0-9_.\[\]]{0,60}(?:![rsa])?(?::[^{}\s]{0,30})?\}(?!\})"
)
_PLACEHOLDER = re.compile(r"%%|" + PLACEHOLDER_PATTERN)


def find_placeholders(text: str) -> list[str]:
    """The format placeholders in ``text``, in order (``%%`` and ``{{``/``}}`` are not).

    >>> find_placeholders("Deleted %(count)d of %s items in {0} ({name!r}), 100%%")
    ['%(count)d', '%s', '{0}', '{name!r}']
    """
    return [m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(0) != "%%"]


def _library():  # imported on use: modelzoo itself imports without it
    try:
        import tokenizers
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "subword tokenizers need the 'tokenizers' package: pip install tokenizers"
        ) from err
    return tokenizers


class SubwordTokenizer:
    """A trained subword tokenizer with the zoo's special ids (pad 0, bos 1, eos 2, unk 3).

    Build one with :meth:`train` or :meth:`load`; ``tokenizer`` is the underlying
    ``tokenizers.Tokenizer`` for anything this wrapper does not cover.
    """

    def __init__(self, tokenizer) -> None:
        for i, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != i:
                raise ConfigError(
                    f"a modelzoo tokenizer needs {token!r} at id {i}; this one has it at "
                    f"{tokenizer.token_to_id(token)}. Train it with SubwordTokenizer.train"
                )
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = 0, 1, 2, 3

    # --- training -----------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        vocab_size: int = 8000,
        model: Literal["bpe", "unigram"] = "bpe",
        byte_level: bool = True,
        special_tokens: Sequence[str] = (),
        min_frequency: int = 2,
        placeholder_min_count: int = 2,
    ) -> SubwordTokenizer:
        """Learn a vocabulary from ``texts`` (train on the training split only).

        Args:
            texts: the training strings; their order matters only for exact reproducibility.
            vocab_size: the vocabulary size, special tokens and placeholder tokens included
                (the result is smaller when the texts hold fewer distinct pieces; with a
                byte-level alphabet it is at least 256 plus the special tokens).
            model: ``"bpe"`` (byte-pair encoding) or ``"unigram"``.
            byte_level: read text as UTF-8 bytes (no ``<unk>``, exact round trip).
            special_tokens: extra tokens kept whole and given ids 4, 5, ... in this order,
                e.g. target-language tags ``["<2de>", "<2fr>"]``.
            min_frequency: a BPE merge needs at least this many occurrences.
            placeholder_min_count: a placeholder seen this often becomes a single token
                (0 turns this off).
        """
        tk = _library()
        texts = [t for t in texts]
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise ConfigError(
                f"tokenizer training texts must be strings; got {type(bad[0]).__name__}"
            )
        if not texts:
            raise ConfigError("cannot train a tokenizer on no texts; pass the training strings")
        if model not in ("bpe", "unigram"):
            raise ConfigError(f"model must be 'bpe' or 'unigram'; got {model!r}")
        specials = list(SPECIAL_TOKENS) + [s for s in special_tokens if s not in SPECIAL_TOKENS]
        if len(set(specials)) != len(specials):
            raise ConfigError(f"special_tokens holds duplicates: {list(special_tokens)}")
        if vocab_size < len(specials) + 1:
            raise ConfigError(
                f"vocab_size must exceed the {len(specials)} special tokens; got {vocab_size}"
            )

        frequent: list[str] = []
        if placeholder_min_count > 0:
            counts = Counter(p for t in texts for p in find_placeholders(t))
            # Sorted, so the new ids do not depend on the order the texts came in.
            frequent = sorted(p for p, n in counts.items() if n >= placeholder_min_count)
        learned = max(vocab_size - len(frequent), len(specials) + 1)  # placeholders count too

        alphabet = tk.pre_tokenizers.ByteLevel.alphabet() if byte_level else []
        if model == "bpe":
            core = tk.models.BPE(unk_token=None if byte_level else UNK)
            trainer = tk.trainers.BpeTrainer(
                vocab_size=learned,
                min_frequency=min_frequency,
                special_tokens=specials,
                initial_alphabet=alphabet,
                show_progress=False,
            )
        else:
            core = tk.models.Unigram()
            trainer = tk.trainers.UnigramTrainer(
                vocab_size=learned,
                special_tokens=specials,
                unk_token=UNK,
                initial_alphabet=alphabet,
                show_progress=False,
            )
        tokenizer = tk.Tokenizer(core)
        isolate = tk.pre_tokenizers.Split(tk.Regex(PLACEHOLDER_PATTERN), behavior="isolated")
        if byte_level:
            tokenizer.pre_tokenizer = tk.pre_tokenizers.Sequence(
                [isolate, tk.pre_tokenizers.ByteLevel(add_prefix_space=False)]
            )
            tokenizer.decoder = tk.decoders.ByteLevel()
        else:
            tokenizer.pre_tokenizer = tk.pre_tokenizers.Sequence(
                [isolate, tk.pre_tokenizers.Metaspace(prepend_scheme="first")]
            )
            tokenizer.decoder = tk.decoders.Metaspace(prepend_scheme="first")
        with _single_thread():
            tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
        new = [p for p in frequent if tokenizer.token_to_id(p) is None]
        if new:
            tokenizer.add_tokens(
                [tk.AddedToken(p, single_word=False, normalized=False) for p in new]
            )
        return cls(tokenizer)

    # --- encoding -----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids, special and added tokens included."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        return self.tokenizer.id_to_token(index)

    def encode(
        self, text: str, *, add_bos: bool = False, add_eos: bool = False, prefix: Sequence[int] = ()
    ) -> list[int]:
        """Token ids of ``text``.

        Args:
            text: the string.
            add_bos: start with ``<bos>`` (decoder targets).
            add_eos: end with ``<eos>``.
            prefix: ids put first (after ``<bos>``), e.g. a target-language tag.
        """
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [self.bos_id] * add_bos + list(prefix) + ids + [self.eos_id] * add_eos

    def encode_batch(
        self, texts: Sequence[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """:meth:`encode` of each text."""
        encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[self.bos_id] * add_bos + e.ids + [self.eos_id] * add_eos for e in encoded]

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Text of ``ids``; with ``skip_special`` it stops at the first ``<eos>`` and drops
        ``<pad>``, ``<bos>`` and the extra special tokens (e.g. language tags)."""
        ids = [int(i) for i in ids]
        if skip_special and self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special)

    def decode_batch(
        self, rows: Iterable[Iterable[int]], *, skip_special: bool = True
    ) -> list[str]:
        """:meth:`decode` of each row (a list of id lists or a 2-D tensor)."""
        return [self.decode(row, skip_special=skip_special) for row in rows]

    # --- files --------------------------------------------------------------------------

    def to_json(self) -> str:
        """The library's JSON serialization (what ``save`` writes)."""
        return self.tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> SubwordTokenizer:
        try:
            return cls(_library().Tokenizer.from_str(text))
        except Exception as err:  # the library raises plain Exceptions for bad JSON
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"not a tokenizers JSON document: {err}") from err

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` atomically (a reader never sees half a file)."""
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SubwordTokenizer:
        """Read a file written by :meth:`save` (or any tokenizer with the zoo's special ids)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no tokenizer file at {path}; train one with SubwordTokenizer.train")
        return cls.from_json(path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        model = json.loads(self.to_json())["model"]["type"]
        return f"SubwordTokenizer({model}, vocab_size={self.vocab_size})"

    def __getstate__(self) -> dict[str, str]:  # DataLoader workers pickle datasets
        return {"json": self.to_json()}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(_library().Tokenizer.from_str(state["json"]))


def cached_tokenizer(
    texts: Sequence[str], *, cache_dir: str | os.PathLike[str], **kwargs: Any
) -> SubwordTokenizer:
    """:meth:`SubwordTokenizer.train`, kept as JSON in ``cache_dir`` under a key made of the
    texts, the training options and the library's version (BPE training is deterministic,
    so a cached file is what training would give again). A file that cannot be read or
    written only costs a new training run.

    Args:
        texts: the training strings.
        cache_dir: the folder for ``tokenizer-<key>.json`` files.
        kwargs: options of :meth:`SubwordTokenizer.train`.
    """
    key = hashlib.sha256(
        json.dumps([_library().__version__, _CACHE_VERSION, sorted(kwargs.items())]).encode()
    )
    for text in texts:
        key.update(text.encode("utf-8", errors="surrogatepass") + b"\0")
    path = Path(cache_dir) / f"tokenizer-{key.hexdigest()[:24]}.json"
    if path.is_file():
        try:
            return SubwordTokenizer.load(path)
        except (ConfigError, OSError) as err:
            _logger.warning("ignoring the unreadable tokenizer cache %s: %s", path, err)
    tokenizer = SubwordTokenizer.train(texts, **kwargs)
    try:
        tokenizer.save(path)
    except OSError as err:
        _logger.info("cannot cache the tokenizer in %s: %s", path, err)
    return tokenizer


_CACHE_VERSION = 1  # bump when training changes in a way the options do not show


class _single_thread:
    """Turn the library's parallelism off while training (it reads TOKENIZERS_PARALLELISM
    at each parallel step): Unigram's EM sums floats in thread order, so threads would
    make the result differ from run to run."""

    def __enter__(self) -> None:
        self._old = os.environ.get("TOKENIZERS_PARALLELISM")
        os.environ["TOKENIZERS_PARALLELISM"] = "false"

    def __exit__(self, *exc: object) -> None:
        if self._old is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = self._old
