"""Pretrained weights: cards, the cache, verified downloads and safe file formats.

(Interface stub: the full implementation replaces this module.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["weight_sets", "get_weight_set", "is_tag"]


def weight_sets(arch: str) -> list[Any]:
    return []


def is_tag(arch: str, tag: str) -> bool:
    return False


def get_weight_set(arch: str, tag: str | None = None) -> Any:
    from modelzoo.errors import WeightsError

    raise WeightsError(
        f"{arch} has no pretrained weight sets yet; build it with pretrained=False "
        "or train one with `modelzoo train`."
    )
