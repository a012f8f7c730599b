"""Character-level language-modelling text that needs no download, and a user's own text file.

The built-in corpus is the Python standard library's own source: the ``.py``
files of CPython's ``Lib/`` (``site-packages`` excluded), read depth-first with
each directory's entries in name order, until ``max_chars`` characters. By default
it is read from a frozen snapshot that ships with modelzoo
(``modelzoo/data/corpora/stdlib/``: the first 1,500,000 characters of CPython
3.11.7's ``Lib/``, xz-compressed, PSF license, its sha256 checked on every load), so
the text, and every metric measured on it, is the same on every supported Python.
``corpus="live"`` reads this interpreter's own standard library instead (another
Python version gives another text); ``info["corpus_sha256"]`` identifies the text
either way. :func:`build_stdlib_snapshot` rebuilds the snapshot.

Tokens are UTF-8 bytes (``vocab="bytes"``, 256 ids, no vocabulary file) or the
characters of the text (``vocab="chars"``, the list in ``info["itos"]``).
Splits are contiguous ranges: the first 90 % trains, the next 5 % validates,
the last 5 % tests.

Two layouts:

- windows (``stdlib_chars``, ``text_file``): items ``(input, target)`` of
  ``seq_len`` ids where the target is the input shifted by one; shuffle freely.
- streams (``stdlib_chars_stream``, ``text_file(contiguous=True)``): each split
  is cut into ``batch_size`` parallel streams (Zaremba et al. 2014's batchify)
  and item ``i`` is window ``i // batch_size`` of stream ``i % batch_size``. Read
  in order with that batch size, batch ``k + 1`` continues batch ``k`` row by row,
  so a recurrent model can carry its hidden state across batches (truncated
  BPTT). ``info["shuffle"]`` is False and ``info["batch_size"]`` says the batch
  size the layout was built for: a trainer must not shuffle and must use it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import lzma
import os
import platform
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = [
    "TextWindows",
    "TextStreams",
    "read_stdlib_text",
    "build_stdlib_snapshot",
    "STDLIB_SNAPSHOT_DIR",
    "encode_text",
    "decode",
    "stdlib_chars",
    "stdlib_chars_stream",
    "text_file",
]

_logger = logging.getLogger(__name__)

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_SPLIT_FRACTIONS = (0.9, 0.05)  # train, val; test takes the rest

STDLIB_SNAPSHOT_DIR = Path(__file__).parent / "corpora" / "stdlib"
_SNAPSHOT_TEXT = "stdlib.txt.xz"  # the text, UTF-8, xz-compressed
_SNAPSHOT_META = "corpus.json"  # its length, sha256 and provenance (Python version, files)
# The text's sha256, pinned here as well as in corpus.json: a snapshot replaced together
# with its corpus.json still fails to load, because the shipped weight cards were
# measured on exactly this text (their input_spec records the sha256 of their slice).
_SNAPSHOT_SHA256 = "e20d7a8245b31f144da248320a1172123741710ac1442ba7bea3002d3c42a7de"
DEFAULT_MAX_CHARS = 1_500_000
Corpus = Literal["snapshot", "live"]


class TextWindows(Dataset):
    """Windows of a token stream: item ``i`` is ``(ids[s : s + T], ids[s + 1 : s + T + 1])``
    with ``s = i * stride``.

    Args:
        ids: the token stream (N,), int64.
        seq_len: window length T.
        stride: start-to-start distance of consecutive windows (T: no overlap).
    """

    def __init__(self, ids: torch.Tensor, seq_len: int, stride: int | None = None) -> None:
        self.ids = ids
        self.seq_len = seq_len
        self.stride = stride or seq_len
        self._len = max(0, (len(ids) - 1 - seq_len) // self.stride + 1)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self._len <= index < self._len:
            raise IndexError(f"window {index} out of range for {self._len} windows")
        start = (index % self._len) * self.stride
        chunk = self.ids[start : start + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


class TextStreams(Dataset):
    """A token stream cut into ``batch_size`` parallel streams, read window by window.

    The stream (N,) is trimmed to a multiple of ``batch_size`` and viewed as
    ``(batch_size, N // batch_size)``. Item ``i`` is window ``i // batch_size`` of
    row ``i % batch_size``, so in-order batches of ``batch_size`` items continue
    each other row by row. Only whole windows are kept, so every batch is full.
    """

    def __init__(self, ids: torch.Tensor, seq_len: int, batch_size: int) -> None:
        per_stream = len(ids) // batch_size
        self.streams = ids[: per_stream * batch_size].view(batch_size, per_stream)  # (B, L)
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.windows_per_stream = max(0, (per_stream - 1) // seq_len)

    def __len__(self) -> int:
        return self.windows_per_stream * self.batch_size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        step, row = divmod(index % len(self), self.batch_size)
        start = step * self.seq_len
        chunk = self.streams[row, start : start + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def read_stdlib_text(
    max_chars: int = DEFAULT_MAX_CHARS, root: str | None = None, *, corpus: Corpus = "snapshot"
) -> str:
    """The standard library's Python source, in a fixed file order, cut at ``max_chars``.

    Args:
        max_chars: characters to read at most.
        root: a directory to read live (implies ``corpus="live"``).
        corpus: ``"snapshot"`` (the frozen text that ships with modelzoo: the same on
            every Python) or ``"live"`` (this interpreter's standard library).

    Raises:
        ConfigError: ``max_chars`` below 1 or beyond the snapshot, an unknown ``corpus``,
            a missing directory, or a damaged snapshot.
    """
    if max_chars < 1:
        raise ConfigError(f"max_chars must be >= 1; got {max_chars}")
    if corpus not in ("snapshot", "live"):
        raise ConfigError(
            f"corpus must be 'snapshot' (the frozen text, the same on every Python) or "
            f"'live' (this interpreter's standard library); got {corpus!r}"
        )
    if root is not None or corpus == "live":
        return _read_live(max_chars, root)
    text = _snapshot_text(str(STDLIB_SNAPSHOT_DIR))
    if max_chars > len(text):
        raise ConfigError(
            f"the frozen standard-library snapshot holds {len(text):,} characters; "
            f"max_chars={max_chars:,} asks for more. Use max_chars <= {len(text):,}, or "
            "corpus='live' to read this interpreter's own standard library."
        )
    return text[:max_chars]


@functools.lru_cache(maxsize=2)
def _snapshot_text(directory: str) -> str:
    """The snapshot's text in ``directory``, checked against the pinned sha256."""
    path = Path(directory) / _SNAPSHOT_TEXT
    if not path.is_file():
        raise ConfigError(
            f"the standard-library snapshot {path} is missing; reinstall modelzoo, or pass "
            "corpus='live' to read this interpreter's standard library"
        )
    try:
        text = lzma.decompress(path.read_bytes()).decode("utf-8")
    except (lzma.LZMAError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is damaged ({err}); reinstall modelzoo") from err
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if digest != _SNAPSHOT_SHA256:
        raise ConfigError(
            f"{path} holds text with sha256 {digest}, not the pinned {_SNAPSHOT_SHA256}: the "
            "file is damaged or was replaced; reinstall modelzoo (the shipped language-model "
            "cards were measured on the pinned text)"
        )
    return text


@functools.lru_cache(maxsize=4)
def _read_live(max_chars: int, root: str | None) -> str:
    base = Path(root or sysconfig.get_paths()["stdlib"])
    if not base.is_dir():
        raise ConfigError(f"the Python standard library directory {base} does not exist")
    return "".join(text for _, text in _stdlib_parts(base, max_chars))


def _stdlib_parts(base: Path, max_chars: int) -> Iterator[tuple[Path, str]]:
    """(file, its text cut to what is left of ``max_chars``), in corpus order."""
    total = 0
    for path in _walk_sorted(base):
        text = path.read_bytes().decode("utf-8", errors="ignore")[: max_chars - total]
        total += len(text)
        yield path, text
        if total >= max_chars:
            break


def build_stdlib_snapshot(
    directory: str | os.PathLike[str],
    max_chars: int = DEFAULT_MAX_CHARS,
    root: str | None = None,
) -> dict[str, Any]:
    """Write a standard-library snapshot (text and ``corpus.json``) into ``directory``.

    How the shipped snapshot was made (from CPython 3.11.7). A snapshot of another
    Python has another sha256: the pinned one in this module, and the language-model
    weight cards measured on it, would have to change with it.

    Returns:
        The metadata written to ``corpus.json``.
    """
    from modelzoo.utils.io import atomic_write, atomic_write_text

    base = Path(root or sysconfig.get_paths()["stdlib"])
    parts = list(_stdlib_parts(base, max_chars))
    text = "".join(t for _, t in parts)
    data = lzma.compress(text.encode("utf-8"), preset=9 | lzma.PRESET_EXTREME)
    meta = {
        "description": "The first characters of CPython's Lib/ .py files (site-packages "
        "excluded), depth-first, each directory's entries in name order; UTF-8, xz.",
        "python": platform.python_version(),
        "num_chars": len(text),
        "sha256_text": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "sha256_file": hashlib.sha256(data).hexdigest(),
        "files": [[p.relative_to(base).as_posix(), len(t)] for p, t in parts],
    }
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / _SNAPSHOT_TEXT, data)
    atomic_write_text(out / _SNAPSHOT_META, json.dumps(meta, indent=1) + "\n")
    return meta


def _walk_sorted(directory: Path) -> Iterator[Path]:
    """``.py`` files depth-first, each directory's entries in name order."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:  # an unreadable directory: skip it rather than fail the corpus
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in _SKIP_DIRS:
                yield from _walk_sorted(Path(entry.path))
        elif entry.name.endswith(".py") and entry.is_file():
            yield Path(entry.path)


def encode_text(
    text: str, vocab: Literal["bytes", "chars"] = "bytes"
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Token ids (N,) int64 and the vocabulary facts of ``text``.

    Args:
        text: the text.
        vocab: ``"bytes"`` (UTF-8 bytes, 256 ids) or ``"chars"`` (the text's own characters,
            sorted by code point).
    """
    if vocab == "bytes":
        data = bytearray(text.encode("utf-8"))
        ids = torch.frombuffer(data, dtype=torch.uint8).long() if data else torch.zeros(0).long()
        return ids, {"vocab": "bytes", "vocab_size": 256}
    if vocab == "chars":
        itos = sorted(set(text))
        stoi = {c: i for i, c in enumerate(itos)}
        ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
        return ids, {"vocab": "chars", "vocab_size": len(itos), "itos": itos}
    raise ConfigError(f"unknown vocab {vocab!r}; use 'bytes' (256 UTF-8 byte ids) or 'chars'")


def decode(ids: torch.Tensor | Sequence[int], info: dict[str, Any]) -> str:
    """Text from token ids, with the vocabulary a bundle's ``info`` describes."""
    values = [int(i) for i in ids]
    if info.get("vocab", "bytes") == "bytes":
        return bytes(values).decode("utf-8", errors="replace")
    itos = info["itos"]
    return "".join(itos[i] for i in values)


def _split(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n_train = int(len(ids) * _SPLIT_FRACTIONS[0])
    n_val = int(len(ids) * _SPLIT_FRACTIONS[1])
    return ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]


def _bundle(
    text: str,
    *,
    seq_len: int,
    stride: int | None,
    vocab: Literal["bytes", "chars"],
    contiguous: bool,
    batch_size: int,
    source: str,
) -> DataBundle:
    if seq_len < 1:
        raise ConfigError(f"seq_len must be >= 1; got {seq_len}")
    if stride is not None and stride < 1:
        raise ConfigError(f"stride must be >= 1 (or None for seq_len); got {stride}")
    if contiguous and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    ids, info = encode_text(text, vocab)
    parts = _split(ids)
    if contiguous:
        splits = [TextStreams(p, seq_len, batch_size) for p in parts]
    else:
        splits = [TextWindows(p, seq_len, stride) for p in parts]
    if len(splits[0]) == 0:
        need = (seq_len + 1) * (batch_size if contiguous else 1)
        raise ConfigError(
            f"{source} is too short: its training split has {len(parts[0])} tokens, fewer than "
            f"the {need} one {'batch' if contiguous else 'window'} needs. Use a longer text or "
            f"a smaller seq_len{' or batch_size' if contiguous else ''}."
        )
    info.update(
        task="language_modeling",
        seq_len=seq_len,
        num_tokens=len(ids),
        num_chars=len(text),
        source=source,
        corpus_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        shuffle=not contiguous,
    )
    if contiguous:
        info["batch_size"] = batch_size
        info["stateful"] = True  # carry the hidden state from one batch to the next
    # Splits without a single window (tiny texts) are left out rather than kept empty.
    val, test = (s if len(s) else None for s in splits[1:])
    return DataBundle(splits[0], val, test, info)


def _stdlib_source(max_chars: int, corpus: Corpus) -> tuple[str, str]:
    """The text and how ``info["source"]`` names it."""
    text = read_stdlib_text(max_chars, corpus=corpus)
    if corpus == "live":  # name the interpreter: another version reads another text
        return text, f"the Python {platform.python_version()} standard library (live)"
    # The name the shipped cards record (their input_spec); the snapshot is that text.
    return text, "the Python standard library"


@register_dataset("stdlib_chars")
def stdlib_chars(
    *,
    seq_len: int = 128,
    stride: int | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    vocab: Literal["bytes", "chars"] = "bytes",
    corpus: Corpus = "snapshot",
) -> DataBundle:
    """Next-character prediction on the Python standard library's source.

    Items are ``(input, target)`` (seq_len,) int64 windows; the target is the
    input shifted by one token.

    Args:
        seq_len: tokens per window.
        stride: start-to-start distance of windows (None: seq_len, no overlap).
        max_chars: characters of source to read.
        vocab: ``"bytes"`` (256 UTF-8 byte ids) or ``"chars"`` (the text's characters).
        corpus: ``"snapshot"`` (the frozen text shipped with modelzoo, the same on every
            Python) or ``"live"`` (this interpreter's standard library).
    """
    text, source = _stdlib_source(max_chars, corpus)
    return _bundle(
        text,
        seq_len=seq_len,
        stride=stride,
        vocab=vocab,
        contiguous=False,
        batch_size=1,
        source=source,
    )


@register_dataset("stdlib_chars_stream")
def stdlib_chars_stream(
    *,
    batch_size: int = 32,
    seq_len: int = 64,
    max_chars: int = DEFAULT_MAX_CHARS,
    vocab: Literal["bytes", "chars"] = "bytes",
    corpus: Corpus = "snapshot",
) -> DataBundle:
    """The standard library's source as ``batch_size`` parallel streams for truncated BPTT.

    Read in order with batches of exactly ``batch_size`` items, row ``b`` of batch
    ``k + 1`` continues row ``b`` of batch ``k`` (see the module docstring).
    ``info["shuffle"]`` is False.

    Args:
        batch_size: parallel streams, which must equal the trainer's batch size.
        seq_len: tokens per window (the BPTT length).
        max_chars: characters of source to read.
        vocab: ``"bytes"`` (256 UTF-8 byte ids) or ``"chars"`` (the text's characters).
        corpus: ``"snapshot"`` (the frozen text shipped with modelzoo, the same on every
            Python) or ``"live"`` (this interpreter's standard library).
    """
    text, source = _stdlib_source(max_chars, corpus)
    return _bundle(
        text,
        seq_len=seq_len,
        stride=None,
        vocab=vocab,
        contiguous=True,
        batch_size=batch_size,
        source=source,
    )


@register_dataset("text_file")
def text_file(
    *,
    path: str,
    seq_len: int = 128,
    stride: int | None = None,
    vocab: Literal["bytes", "chars"] = "bytes",
    contiguous: bool = False,
    batch_size: int = 32,
    encoding: str = "utf-8",
) -> DataBundle:
    """Next-character prediction on a text file of your own.

    The file is split 90/5/5 into contiguous train/val/test ranges. Items are
    ``(input, target)`` windows as in ``stdlib_chars``, or streams as in
    ``stdlib_chars_stream`` with ``contiguous=True``.

    Args:
        path: the text file.
        seq_len: tokens per window.
        stride: start-to-start distance of windows (None: seq_len); not used for streams.
        vocab: ``"bytes"`` (256 UTF-8 byte ids) or ``"chars"`` (the file's characters).
        contiguous: the stream layout for truncated BPTT (no shuffling).
        batch_size: parallel streams with ``contiguous``; must equal the trainer's batch size.
        encoding: the file's encoding; undecodable bytes are dropped.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise ConfigError(f"text_file: {file} {what}; pass path= the text file to train on")
    try:
        text = file.read_bytes().decode(encoding, errors="ignore")
    except LookupError as err:
        raise ConfigError(f"text_file: unknown encoding {encoding!r}; e.g. 'utf-8'") from err
    if not text:
        raise ConfigError(f"text_file: {file} is empty")
    _logger.info("read %d characters from %s", len(text), file)
    return _bundle(
        text,
        seq_len=seq_len,
        stride=stride,
        vocab=vocab,
        contiguous=contiguous,
        batch_size=batch_size,
        source=str(file),
    )
