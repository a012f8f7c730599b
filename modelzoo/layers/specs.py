"""Input specs: what a model takes, for example inputs, contract tests, export and benchmarks.

``TensorSpec`` lives here, below the registry, so that model families and the
bridges describe their inputs without importing the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["TensorSpec", "image_inputs", "feature_inputs", "token_inputs"]


@dataclass(frozen=True)
class TensorSpec:
    """One positional input of a model, without the batch dimension.

    Float inputs are drawn from a standard normal; integer inputs uniformly
    from ``[low, high)``.
    """

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    low: int = 0
    high: int | None = None  # exclusive upper bound of integer values
    name: str = "x"

    def example(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        shape = (batch_size, *self.shape)
        if self.dtype.is_floating_point:
            return torch.randn(shape, generator=generator, dtype=self.dtype).to(device)
        if self.high is None:
            raise ValueError(f"integer input {self.name!r} needs an upper bound `high`")
        x = torch.randint(self.low, self.high, shape, generator=generator, dtype=self.dtype)
        return x.to(device)

    def describe(self) -> str:
        dims = ", ".join(["B", *(str(d) for d in self.shape)])
        values = f" in [{self.low}, {self.high})" if not self.dtype.is_floating_point else ""
        return f"{self.name}: ({dims}) {str(self.dtype).removeprefix('torch.')}{values}"


def image_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    """One (in_chans, H, W) image; the model states ``in_chans`` and ``default_input_size``."""
    h, w = model.default_input_size
    return (TensorSpec((model.in_chans, h, w), name="images"),)


def feature_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    """One feature vector of the model's ``in_features``."""
    return (TensorSpec((model.in_features,), name="features"),)


def token_inputs(model: nn.Module, seq_len: int = 16) -> tuple[TensorSpec, ...]:
    """One sequence of token ids below the model's ``vocab_size``."""
    seq_len = min(seq_len, getattr(model, "max_len", seq_len))
    return (TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="tokens"),)
