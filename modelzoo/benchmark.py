"""Measure models as a user would meet them: build time, forward and backward time.

Used by ``modelzoo benchmark``; the numbers are wall-clock on the current
machine and only meaningful side by side within one run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from modelzoo.registry import create, example_inputs
from modelzoo.utils import output_tensors

__all__ = ["ModelTiming", "time_model", "output_summary"]


@dataclass(frozen=True)
class ModelTiming:
    name: str
    num_params: int
    build_s: float  # one build, random init included
    forward_ms: float  # median eval forward (no grad) over `repeats`
    train_step_ms: float  # median train-mode forward + backward over `repeats`
    output: str  # the output's type and shapes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_summary(output: Any) -> str:
    """A short description of a model output: 'Tensor(2, 10)', 'VAEOutput(recon=..., ...)'."""
    if isinstance(output, torch.Tensor):
        return f"Tensor{tuple(output.shape)}"
    if isinstance(output, torch.distributions.Distribution):
        return f"{type(output).__name__}(batch={tuple(output.batch_shape)})"
    if hasattr(output, "_fields"):  # NamedTuple
        parts = ", ".join(f"{f}={output_summary(getattr(output, f))}" for f in output._fields)
        return f"{type(output).__name__}({parts})"
    if isinstance(output, (list, tuple)):
        return f"[{', '.join(output_summary(o) for o in output)}]"
    return type(output).__name__


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def _backward(output: Any) -> None:
    loss = sum(t.float().sum() for t in output_tensors(output) if t.requires_grad)
    loss.backward()


def time_model(name: str, *, batch_size: int = 2, repeats: int = 3) -> ModelTiming:
    """Build ``name`` and time its eval forward and a train-mode forward + backward."""
    start = time.perf_counter()
    model = create(name)
    build_s = time.perf_counter() - start
    inputs = example_inputs(model, batch_size)
    model.eval()
    with torch.no_grad():
        output = model(*inputs)
        forward_ms = _median_ms(lambda: model(*inputs), repeats)
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        _backward(model(*inputs))

    return ModelTiming(
        name=name,
        num_params=sum(p.numel() for p in model.parameters()),
        build_s=build_s,
        forward_ms=forward_ms,
        train_step_ms=_median_ms(step, repeats),
        output=output_summary(output),
    )
