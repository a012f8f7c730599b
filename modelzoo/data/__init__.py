"""Datasets that need no download, and loaders for a user's own data."""

from modelzoo.data import (  # noqa: F401  (importing them registers the datasets)
    audio,
    code_summaries,
    digits,
    folders,
    po_translations,
    seq2seq,
    sequences,
    shapes,
    speech,
    text,
    torchvision_datasets,
)
from modelzoo.data.registry import DataBundle, build_data, list_datasets, register_dataset

__all__ = ["DataBundle", "build_data", "list_datasets", "register_dataset"]
