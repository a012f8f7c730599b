"""Pretrained weights: cards, the cache, verified downloads and safe file formats.

    from modelzoo.weights import get_weight_set, fetch, read_weights
    ws = get_weight_set("resnet50")                 # the default card: files, metrics, license
    path = fetch(ws.files[0])                       # cached, locked, resumed, verified
    state_dict = read_weights(path)                 # safetensors, or weights_only pickles
    print(ws.describe())                            # the card, readable

Environment:

- ``MODELZOO_HOME``: the cache (default ``$XDG_CACHE_HOME/modelzoo``, ``~/.cache/modelzoo``).
- ``MODELZOO_WEIGHTS_DIR``: folders where you drop weight files by name; searched first.
- ``MODELZOO_MIRROR``: base URLs (comma-separated) tried before a card's own URLs.
- ``MODELZOO_OFFLINE=1``: never touch the network.
- ``MODELZOO_ALLOW_UNVERIFIED=1``: download files whose card has no sha256.

Torch is imported only when a file is read or written.
"""

from __future__ import annotations

from modelzoo.weights.cache import (
    CacheEntry,
    cache_dir,
    cache_entries,
    clean_cache,
    verify_cache,
)
from modelzoo.weights.card import WeightFile, WeightSet
from modelzoo.weights.download import fetch, fetch_weight_set
from modelzoo.weights.integrity import sha256_file
from modelzoo.weights.io import check_safetensors, load_torch_file, read_weights, save_weights
from modelzoo.weights.manifest import (
    UnknownWeightsError,
    add_shipped_weight_set,
    all_weight_sets,
    get_weight_set,
    is_tag,
    load_manifest,
    register_weights,
    shipped_dir,
    unregister_weights,
    weight_sets,
)

__all__ = [
    "CacheEntry",
    "UnknownWeightsError",
    "WeightFile",
    "WeightSet",
    "add_shipped_weight_set",
    "all_weight_sets",
    "cache_dir",
    "cache_entries",
    "check_safetensors",
    "clean_cache",
    "fetch",
    "fetch_weight_set",
    "get_weight_set",
    "is_tag",
    "load_manifest",
    "load_torch_file",
    "read_weights",
    "register_weights",
    "save_weights",
    "sha256_file",
    "shipped_dir",
    "unregister_weights",
    "verify_cache",
    "weight_sets",
]
