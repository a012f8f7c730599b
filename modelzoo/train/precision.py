"""Numerical precision: the one place where autocast and gradient scaling live.

Modes: ``"32"`` (fp32), ``"bf16-mixed"`` (autocast to bfloat16),
``"16-mixed"`` (autocast to float16 with a GradScaler), ``"bf16-true"`` (the
model itself in bfloat16). Models never call autocast themselves.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from modelzoo.errors import ConfigError

__all__ = ["Precision"]

_NO_AUTOCAST = contextlib.nullcontext()


class Precision:
    """Autocast, loss scaling and the optimizer step for one precision mode.

    Args:
        mode: ``"32"``, ``"bf16-mixed"``, ``"16-mixed"`` or ``"bf16-true"``.
        device: where the model runs.
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in ("32", "bf16-mixed", "16-mixed", "bf16-true"):
            raise ConfigError(
                f"precision must be 32, bf16-mixed, 16-mixed or bf16-true; got {mode!r}"
            )
        self.mode = mode
        self.device = device
        self.autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(mode)
        # GradScaler only for fp16: bf16 has fp32's exponent range and needs no scaling.
        self.scaler = torch.amp.GradScaler(device.type) if mode == "16-mixed" else None
        self.skipped_steps = 0

    def convert_module(self, module: nn.Module) -> nn.Module:
        """Cast the model for ``bf16-true``; other modes keep fp32 weights."""
        return module.to(torch.bfloat16) if self.mode == "bf16-true" else module

    def convert_input(self, x: torch.Tensor) -> torch.Tensor:
        """Cast floating inputs for ``bf16-true``."""
        if self.mode == "bf16-true" and x.is_floating_point():
            return x.to(torch.bfloat16)
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this mode (a shared no-op one for fp32 and bf16-true)."""
        if self.autocast_dtype is None:
            return _NO_AUTOCAST  # reused: entering it costs nothing, per micro-batch
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Unscale gradients in place, before clipping looks at them."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Step the optimizer; returns False when fp16 overflow made the scaler skip it."""
        if self.scaler is None:
            optimizer.step()
            return True
        scale_before = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        stepped = self.scaler.get_scale() >= scale_before
        if not stepped:
            self.skipped_steps += 1
        return stepped

    def state_dict(self) -> dict:
        state = {"skipped_steps": self.skipped_steps}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
