"""Small helpers used across the package."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

__all__ = ["output_tensors"]


def output_tensors(output: Any) -> list[torch.Tensor]:
    """Every tensor in a model output, in a stable order.

    Handles tensors, tuples and NamedTuples, lists, dicts, dataclasses and
    torch.distributions (through their parameters: ``logits``, ``loc``, ``scale``).
    """
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, torch.distributions.Independent):
        return output_tensors(output.base_dist)
    if isinstance(output, torch.distributions.Distribution):
        names = [n for n in ("logits", "loc", "scale") if n in output.arg_constraints]
        return [getattr(output, n) for n in names]
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return [
            t for f in dataclasses.fields(output) for t in output_tensors(getattr(output, f.name))
        ]
    if isinstance(output, dict):
        return [t for v in output.values() for t in output_tensors(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in output_tensors(v)]
    return []
