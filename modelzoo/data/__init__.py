"""Datasets that need no download, and loaders for a user's own data."""

from modelzoo.data import digits  # noqa: F401  (registers)
from modelzoo.data.registry import DataBundle, build_data, list_datasets, register_dataset

__all__ = ["DataBundle", "build_data", "list_datasets", "register_dataset"]
