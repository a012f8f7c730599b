"""Long-range synthetic sequence tasks from the LSTM literature.

Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997,
introduced both tasks (experiments 4 and 2); the forms used here follow the
later benchmarks of Le et al. 2015 (adding) and Arjovsky et al. 2016 (copy).

- ``adding``: a (T, 2) sequence of random values and a marker channel with two
  ones; the target is the sum of the two marked values. Batches are always
  ``(x, lengths, y)``, so a recurrent model taking ``lengths`` skips padding.
- ``copy_memory``: read ``copy_len`` symbols, wait ``delay`` blank steps, see a
  delimiter, then emit the symbols again. Targets use -100 where nothing is to
  be predicted, so ``F.cross_entropy(..., ignore_index=-100)`` scores only the copy.

Every split is generated from ``(seed, split)`` alone, so the same seed gives the
same tensors in any process, and changing ``n_train`` leaves val and test as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from modelzoo.data.registry import DataBundle, register_dataset
from modelzoo.errors import ConfigError

__all__ = [
    "AddingDataset",
    "adding",
    "collate_adding",
    "copy_memory",
    "split_rng",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index
_SPLITS = {"train": 0, "val": 1, "test": 2}


def split_rng(seed: int, split: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the split's name."""
    return np.random.default_rng([seed, _SPLITS[split]])


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 0:
            raise ConfigError(f"{name} must be >= 0; got {value}")
    if sizes.get("n_train", 1) < 1:
        raise ConfigError("n_train must be >= 1; the training split cannot be empty")


# --- the adding problem ----------------------------------------------------------------------


class AddingDataset(Dataset):
    """Samples of the adding problem, stored padded; items are cut to their own length.

    Items are ``(x, y)``: ``x`` (L, 2) float32 (values, markers) and ``y`` a float32 scalar.
    """

    def __init__(self, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor) -> None:
        self.x = x  # (N, max_len, 2)
        self.lengths = lengths  # (N,)
        self.y = y  # (N,)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index, : int(self.lengths[index])], self.y[index]


def _adding_split(n: int, min_len: int, max_len: int, rng: np.random.Generator) -> AddingDataset:
    lengths = rng.integers(min_len, max_len + 1, size=n)
    values = rng.random((n, max_len), dtype=np.float32)
    # One marker in each half of the sample's own length: [0, L//2) and [L//2, L).
    half = lengths // 2
    first = (rng.random(n) * half).astype(np.int64)
    second = half + (rng.random(n) * (lengths - half)).astype(np.int64)
    steps = np.arange(max_len)
    values = np.where(steps[None, :] < lengths[:, None], values, 0.0).astype(np.float32)
    markers = np.zeros((n, max_len), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    x = torch.from_numpy(np.stack([values, markers], axis=-1))  # (N, max_len, 2)
    return AddingDataset(x, torch.from_numpy(lengths.astype(np.int64)), torch.from_numpy(target))


def collate_adding(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad ``(x, y)`` items to the batch's longest: ``(x (B, T, 2), lengths (B,), y (B,))``."""
    lengths = torch.tensor([len(x) for x, _ in batch], dtype=torch.long)
    x = torch.nn.utils.rnn.pad_sequence([x for x, _ in batch], batch_first=True)
    return x, lengths, torch.stack([y for _, y in batch])


def _collate_adding_no_lengths(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    x, _, y = collate_adding(batch)
    return x, y


@register_dataset("adding")
def adding(
    *,
    seq_len: int = 100,
    min_len: int | None = None,
    max_len: int | None = None,
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
    with_lengths: bool = True,
) -> DataBundle:
    """The adding problem: regress the sum of the two marked values of a long sequence.

    Each step holds a value drawn uniformly from [0, 1) and a marker; exactly two
    markers are 1, one in the first half of the sequence and one in the second.
    Always predicting 1 scores an MSE of about 0.167, the bar a model must beat.

    Batches (from ``collate_fn``) are ``(x, lengths, y)``: ``x`` (B, T, 2) float32
    zero-padded to the batch's longest sample, ``lengths`` (B,) int64, ``y`` (B,)
    float32. With a fixed length every entry of ``lengths`` is ``seq_len``.

    Args:
        seq_len: length of every sequence (when ``min_len``/``max_len`` are not set).
        min_len: shortest length of variable-length sequences (needs ``max_len``).
        max_len: longest length of variable-length sequences (needs ``min_len``).
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        seed: the data's seed.
        with_lengths: False gives ``(x, y)`` batches, for models without a ``lengths`` input.
    """
    if (min_len is None) != (max_len is None):
        raise ConfigError(
            f"give both min_len and max_len for variable lengths, or neither for a fixed "
            f"seq_len; got min_len={min_len}, max_len={max_len}"
        )
    lo, hi = (seq_len, seq_len) if min_len is None else (min_len, max_len)
    if lo < 2 or hi < lo:
        raise ConfigError(
            f"the adding problem needs 2 <= min_len <= max_len (two markers); got {lo}..{hi}"
        )
    _check_sizes(n_train=n_train, n_val=n_val, n_test=n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {s: _adding_split(n, lo, hi, split_rng(seed, s)) for s, n in sizes.items()}
    info = {
        "task": "regression",
        "input_size": 2,
        "num_classes": 1,  # the output width, under the name classifier builders take
        "seq_len": hi,
        "min_len": lo,
        "max_len": hi,
        "with_lengths": with_lengths,
    }
    collate = collate_adding if with_lengths else _collate_adding_no_lengths
    return DataBundle(splits["train"], splits["val"], splits["test"], info, collate)


# --- the copy (memory) task ------------------------------------------------------------------


class _TokenPairs(Dataset):
    """Items ``(x[i], y[i])`` of two equally long (N, T) id tensors."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


def _copy_split(
    n: int,
    num_symbols: int,
    copy_len: int,
    delay: int,
    predict_blanks: bool,
    rng: np.random.Generator,
) -> _TokenPairs:
    blank, delimiter = 0, num_symbols + 1
    total = 2 * copy_len + delay + 1
    symbols = rng.integers(1, num_symbols + 1, size=(n, copy_len))
    x = np.full((n, total), blank, dtype=np.int64)
    x[:, :copy_len] = symbols
    x[:, copy_len + delay] = delimiter
    y = np.full((n, total), blank if predict_blanks else IGNORE_INDEX, dtype=np.int64)
    y[:, total - copy_len :] = symbols  # the steps after the delimiter
    return _TokenPairs(torch.from_numpy(x), torch.from_numpy(y))


@register_dataset("copy_memory")
def copy_memory(
    *,
    num_symbols: int = 8,
    copy_len: int = 10,
    delay: int = 50,
    n_train: int = 10_000,
    n_val: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
    predict_blanks: bool = False,
) -> DataBundle:
    """The copy task: remember ``copy_len`` symbols across ``delay`` blank steps.

    Ids: 0 is the blank, 1..num_symbols the symbols, ``num_symbols + 1`` the
    delimiter. An input of length ``T = 2 * copy_len + delay + 1`` reads::

        s_1 .. s_K | blank x delay | delimiter | blank x K

    and the target holds ``s_1 .. s_K`` at the last K steps (the steps after the
    delimiter) and -100 elsewhere. Batches are ``(x, y)``, both (B, T) int64; the
    model predicts (B, T, vocab_size) logits for a per-step cross-entropy.

    Args:
        num_symbols: size of the alphabet to copy.
        copy_len: symbols to remember (K).
        delay: blank steps between the symbols and the delimiter.
        n_train: training samples.
        n_val: validation samples.
        n_test: test samples.
        seed: the data's seed.
        predict_blanks: targets are the blank instead of -100 before the copy, as in
            Arjovsky et al. 2016, where a memoryless baseline scores
            ``K * log(num_symbols) / T``.
    """
    if num_symbols < 1 or copy_len < 1 or delay < 0:
        raise ConfigError(
            f"copy_memory needs num_symbols >= 1, copy_len >= 1 and delay >= 0; got "
            f"num_symbols={num_symbols}, copy_len={copy_len}, delay={delay}"
        )
    _check_sizes(n_train=n_train, n_val=n_val, n_test=n_test)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    splits = {
        s: _copy_split(n, num_symbols, copy_len, delay, predict_blanks, split_rng(seed, s))
        for s, n in sizes.items()
    }
    vocab_size = num_symbols + 2
    info = {
        "task": "token_classification",
        "vocab_size": vocab_size,
        "num_classes": vocab_size,
        "seq_len": 2 * copy_len + delay + 1,
        "blank_id": 0,
        "delimiter_id": num_symbols + 1,
        "copy_len": copy_len,
        "delay": delay,
        "ignore_index": IGNORE_INDEX,
        "itos": ["_"] + [str(i) for i in range(1, num_symbols + 1)] + [":"],
    }
    return DataBundle(splits["train"], splits["val"], splits["test"], info)
