"""Synthetic sequence-to-sequence tasks: reverse, sort and digit arithmetic.

Small, exactly checkable problems for encoder-decoder models (Sutskever et al.
2014 reversed source sentences; Zaremba & Sutskever 2014 learned to execute
addition). Token ids: 0 pad, 1 bos, 2 eos, symbols from 3 upward;
``info["itos"]`` names every id so predictions print readably.

Items are ``(src, tgt)`` int64 vectors: ``src`` is the input followed by eos,
``tgt`` is ``[bos, answer..., eos]``. The bundle's ``collate_fn`` pads both to
the batch's longest with ``pad_id``; teacher forcing uses ``tgt[:, :-1]`` as
decoder input and ``tgt[:, 1:]`` as labels. Each split is generated from
``(seed, split)`` alone.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.data.sequences import split_rng
from modelzoo.errors import ConfigError

__all__ = [
    "PAD_ID",
    "BOS_ID",
    "EOS_ID",
    "SPECIALS",
    "Seq2SeqDataset",
    "collate_seq2seq",
    "decode_tokens",
    "reverse",
    "sort",
    "arithmetic",
]

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]
_FIRST = len(SPECIALS)


class Seq2SeqDataset(Dataset):
    """A list of ``(src, tgt)`` pairs of 1-D int64 tensors."""

    def __init__(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.pairs = list(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[index]


def collate_seq2seq(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int = PAD_ID
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad sources and targets to the batch's longest: ``(src (B, S), tgt (B, T))``."""
    pad = torch.nn.utils.rnn.pad_sequence
    src = pad([s for s, _ in batch], batch_first=True, padding_value=pad_id)
    tgt = pad([t for _, t in batch], batch_first=True, padding_value=pad_id)
    return src, tgt


def decode_tokens(
    ids: torch.Tensor | Sequence[int], itos: Sequence[str], sep: str = "", strip: bool = True
) -> str:
    """Text of token ids; ``strip`` drops bos/pad and stops at the first eos."""
    out = []
    for i in (int(v) for v in ids):
        if strip and i == EOS_ID:
            break
        if strip and i in (PAD_ID, BOS_ID):
            continue
        out.append(itos[i])
    return sep.join(out)


def _symbol_names(n: int) -> list[str]:
    if n <= 26:
        return list(string.ascii_lowercase[:n])
    return [f"s{i}" for i in range(n)]


def _pairs(sources: list[np.ndarray], targets: list[np.ndarray]) -> Seq2SeqDataset:
    def src(ids: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([ids, [EOS_ID]]).astype(np.int64))

    def tgt(ids: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([[BOS_ID], ids, [EOS_ID]]).astype(np.int64))

    return Seq2SeqDataset([(src(s), tgt(t)) for s, t in zip(sources, targets, strict=True)])


def _info(itos: list[str], max_src: int, max_tgt: int, **extra: Any) -> dict[str, Any]:
    return {
        "task": "seq2seq",
        "vocab_size": len(itos),
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "max_len": max(max_src, max_tgt),  # longest src or tgt, specials included
        "max_src_len": max_src,
        "max_tgt_len": max_tgt,
        "itos": itos,
        **extra,
    }


def _check(n_train: int, n_val: int, n_test: int) -> dict[str, int]:
    if n_train < 1 or n_val < 0 or n_test < 0:
        raise ConfigError(
            f"need n_train >= 1 and n_val, n_test >= 0; got {n_train}, {n_val}, {n_test}"
        )
    return {"train": n_train, "val": n_val, "test": n_test}


def _symbol_task(
    transform: str,
    num_symbols: int,
    min_len: int,
    max_len: int,
    sizes: dict[str, int],
    seed: int,
) -> DataBundle:
    if num_symbols < 1:
        raise ConfigError(f"num_symbols must be >= 1; got {num_symbols}")
    if not 1 <= min_len <= max_len:
        raise ConfigError(f"need 1 <= min_len <= max_len; got min_len={min_len}, max_len={max_len}")
    splits = {}
    for split, n in sizes.items():
        rng = split_rng(seed, split)
        lengths = rng.integers(min_len, max_len + 1, size=n)
        symbols = rng.integers(_FIRST, _FIRST + num_symbols, size=(n, max_len))
        sources = [symbols[i, : lengths[i]] for i in range(n)]
        op = np.sort if transform == "sort" else (lambda s: s[::-1])
        splits[split] = _pairs(sources, [op(s) for s in sources])
    itos = SPECIALS + _symbol_names(num_symbols)
    info = _info(itos, max_len + 1, max_len + 2, min_len=min_len, num_symbols=num_symbols)
    return DataBundle(splits["train"], splits["val"], splits["test"], info, collate_seq2seq)


@register_dataset("reverse")
def reverse(
    *,
    num_symbols: int = 10,
    min_len: int = 3,
    max_len: int = 12,
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
) -> DataBundle:
    """Output the input symbols in reverse order (``a b c`` -> ``c b a``).

    Args:
        num_symbols: alphabet size; symbols are ids 3..num_symbols+2.
        min_len: fewest symbols in a sequence.
        max_len: most symbols in a sequence (eos and bos come on top).
        n_train: training pairs.
        n_val: validation pairs.
        n_test: test pairs.
        seed: the data's seed.
    """
    return _symbol_task(
        "reverse", num_symbols, min_len, max_len, _check(n_train, n_val, n_test), seed
    )


@register_dataset("sort")
def sort(
    *,
    num_symbols: int = 10,
    min_len: int = 3,
    max_len: int = 12,
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
) -> DataBundle:
    """Output the input symbols sorted by id (``c a b`` -> ``a b c``).

    Args:
        num_symbols: alphabet size; symbols are ids 3..num_symbols+2.
        min_len: fewest symbols in a sequence.
        max_len: most symbols in a sequence (eos and bos come on top).
        n_train: training pairs.
        n_val: validation pairs.
        n_test: test pairs.
        seed: the data's seed.
    """
    return _symbol_task("sort", num_symbols, min_len, max_len, _check(n_train, n_val, n_test), seed)


_ARITH_SYMBOLS = list("0123456789+-")


def _number_ids(value: int) -> list[int]:
    return [_FIRST + _ARITH_SYMBOLS.index(c) for c in str(value)]


@register_dataset("arithmetic")
def arithmetic(
    *,
    num_digits: int = 3,
    min_digits: int = 1,
    ops: str = "+-",
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
) -> DataBundle:
    """Integer addition and subtraction as text: ``1 2 + 7`` -> ``1 9``; ``3 - 1 2`` -> ``- 9``.

    Each operand first draws its digit count uniformly from ``min_digits..num_digits``,
    then a value with that many digits (0 counts as one digit), so short and long
    operands are equally common. Tokens are the digits, ``+`` and ``-``; a negative
    result starts with ``-``.

    Args:
        num_digits: most digits of an operand.
        min_digits: fewest digits of an operand.
        ops: the operators to draw from, any of ``"+-"``.
        n_train: training pairs.
        n_val: validation pairs.
        n_test: test pairs.
        seed: the data's seed.
    """
    if not 1 <= min_digits <= num_digits:
        raise ConfigError(
            f"need 1 <= min_digits <= num_digits; got min_digits={min_digits}, "
            f"num_digits={num_digits}"
        )
    if num_digits > 18:
        raise ConfigError(f"num_digits must be <= 18 (int64 operands); got {num_digits}")
    if not ops or set(ops) - set("+-"):
        raise ConfigError(f"ops must be made of '+' and '-', e.g. '+-' or '+'; got {ops!r}")
    sizes = _check(n_train, n_val, n_test)
    operators = sorted(set(ops))
    splits = {}
    for split, n in sizes.items():
        rng = split_rng(seed, split)
        digits = rng.integers(min_digits, num_digits + 1, size=(n, 2))
        low = np.where(digits == 1, 0, 10 ** (digits - 1))
        operands = rng.integers(low, 10**digits)
        which = rng.integers(0, len(operators), size=n)
        sources, targets = [], []
        for (a, b), k in zip(operands.tolist(), which.tolist(), strict=True):
            op = operators[k]
            result = a + b if op == "+" else a - b
            op_id = _FIRST + _ARITH_SYMBOLS.index(op)
            sources.append(np.array(_number_ids(a) + [op_id] + _number_ids(b)))
            targets.append(np.array(_number_ids(result)))
        splits[split] = _pairs(sources, targets)
    itos = SPECIALS + _ARITH_SYMBOLS
    max_src = 2 * num_digits + 2  # two operands, the operator, eos
    max_tgt = num_digits + 1 + 2  # a carry digit or a minus sign, then bos and eos
    info = _info(itos, max_src, max_tgt, num_digits=num_digits, ops="".join(operators))
    return DataBundle(splits["train"], splits["val"], splits["test"], info, collate_seq2seq)
