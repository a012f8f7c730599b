"""What the commands share: number formats, tables, output."""

from __future__ import annotations

import argparse

__all__ = ["format_params", "positive_int", "table"]


def format_params(count: int) -> str:
    """A parameter count as people write it: 25.6M, 85.0K, 124.4M, 1.2B."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts: an integer >= 1 (argparse reports anything else)."""
    try:
        value = int(text)
    except ValueError:
        value = 0  # not a number: the same message as a number out of range
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
