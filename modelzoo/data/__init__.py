"""Datasets that need no download, and loaders for a user's own data."""

from modelzoo.data import (  # noqa: F401  (importing them registers the datasets)
    audio,
    digits,
    folders,
    seq2seq,
    sequences,
    shapes,
    text,
)
from modelzoo.data.registry import DataBundle, build_data, list_datasets, register_dataset

__all__ = ["DataBundle", "build_data", "list_datasets", "register_dataset"]
