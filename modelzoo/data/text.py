"""Character-level language-modelling text that needs no download, and a user's own text file.

The built-in corpus is the Python standard library's own source: the ``.py``
files under ``sysconfig.get_paths()["stdlib"]`` (``site-packages`` excluded, so
installed packages do not change it), read depth-first with each directory's
entries in name order, until ``max_chars`` characters. It is the same in every
process of one Python installation; another Python version gives another text,
which ``info["corpus_sha256"]`` identifies.

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
import logging
import os
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
    "encode_text",
    "decode",
    "stdlib_chars",
    "stdlib_chars_stream",
    "text_file",
]

_logger = logging.getLogger(__name__)

_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__"}
_SPLIT_FRACTIONS = (0.9, 0.05)  # train, val; test takes the rest


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


@functools.lru_cache(maxsize=4)
def read_stdlib_text(max_chars: int = 1_500_000, root: str | None = None) -> str:
    """The standard library's Python source, in a fixed file order, cut at ``max_chars``.

    Args:
        max_chars: characters to read at most.
        root: the directory to read (default: this interpreter's stdlib).
    """
    base = Path(root or sysconfig.get_paths()["stdlib"])
    if not base.is_dir():
        raise ConfigError(f"the Python standard library directory {base} does not exist")
    parts: list[str] = []
    total = 0
    for path in _walk_sorted(base):
        text = path.read_bytes().decode("utf-8", errors="ignore")
        parts.append(text[: max_chars - total])
        total += len(parts[-1])
        if total >= max_chars:
            break
    return "".join(parts)


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


def _stdlib_source(max_chars: int) -> str:
    if max_chars < 1:
        raise ConfigError(f"max_chars must be >= 1; got {max_chars}")
    return read_stdlib_text(max_chars)


@register_dataset("stdlib_chars")
def stdlib_chars(
    *,
    seq_len: int = 128,
    stride: int | None = None,
    max_chars: int = 1_500_000,
    vocab: Literal["bytes", "chars"] = "bytes",
) -> DataBundle:
    """Next-character prediction on the Python standard library's source.

    Items are ``(input, target)`` (seq_len,) int64 windows; the target is the
    input shifted by one token.

    Args:
        seq_len: tokens per window.
        stride: start-to-start distance of windows (None: seq_len, no overlap).
        max_chars: characters of source to read.
        vocab: ``"bytes"`` (256 UTF-8 byte ids) or ``"chars"`` (the text's characters).
    """
    text = _stdlib_source(max_chars)
    return _bundle(
        text,
        seq_len=seq_len,
        stride=stride,
        vocab=vocab,
        contiguous=False,
        batch_size=1,
        source="the Python standard library",
    )


@register_dataset("stdlib_chars_stream")
def stdlib_chars_stream(
    *,
    batch_size: int = 32,
    seq_len: int = 64,
    max_chars: int = 1_500_000,
    vocab: Literal["bytes", "chars"] = "bytes",
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
    """
    text = _stdlib_source(max_chars)
    return _bundle(
        text,
        seq_len=seq_len,
        stride=None,
        vocab=vocab,
        contiguous=True,
        batch_size=batch_size,
        source="the Python standard library",
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
