"""Checkpoints: atomic writes, safe loads, which weights they hold, and RNG states.

A checkpoint is a plain dict of tensors, numbers, strings and containers, so it
loads with ``torch.load(..., weights_only=True)``: no pickle of arbitrary objects.

Which weights a checkpoint holds (format version 2):

- ``"model"``: the weights the run *evaluates* — the EMA copy when ``train.ema_decay``
  is set, the training weights otherwise. These are the weights that scored the
  validation metrics, so they are the ones that chose ``best.ckpt``, and they are what
  ``modelzoo evaluate``, ``create(..., pretrained="…/best.ckpt")`` and ``finetune``
  load (everything that reads a checkpoint's ``"model"`` agrees by construction).
- ``"model_weights"``: ``"ema"`` or ``"training"``, naming what ``"model"`` holds.
- ``"training_model"``: the raw training weights, present only when they differ from
  ``"model"`` (an EMA run); an exact resume continues from them.
- ``"ema"``: the EMA's settings and update count (``decay``, ``warmup``, ``updates``).

Version 1 checkpoints (written before the EMA rule) kept the training weights under
``"model"`` and the EMA copy under ``"ema"``; :func:`evaluation_weights` and
:func:`training_weights` read both versions.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelzoo.errors import CheckpointError, WeightsError
from modelzoo.utils.io import atomic_write

__all__ = [
    "CHECKPOINT_VERSION",
    "atomic_save",
    "load_checkpoint",
    "evaluation_weights",
    "training_weights",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_VERSION = 2


def _resume_hint(path: Path) -> str:
    """How to carry on without ``path``: resume from another checkpoint of its run."""
    if path.parent.name != "checkpoints":
        return (
            "use an earlier checkpoint of the run: `modelzoo resume RUN_DIR --checkpoint "
            "RUN_DIR/checkpoints/step-<N>.ckpt`"
        )
    run = path.parent.parent
    others = sorted(p.name for p in path.parent.glob("*.ckpt") if p.name != path.name)
    listed = f" (there: {', '.join(others)})" if others else ""
    steps = [o for o in others if o.startswith("step-") and o[5:-5].isdigit()]
    # The newest periodic checkpoint loses the least training; else whatever else is there.
    example = max(steps, key=lambda o: int(o[5:-5])) if steps else (others or [None])[0]
    target = path.parent / (example or "step-<N>.ckpt")
    return (
        f"use an earlier checkpoint of the run{listed}: "
        f"`modelzoo resume {run} --checkpoint {target}`"
    )


def atomic_save(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` with torch.save so that ``path`` is never seen half-written.

    Goes through :func:`modelzoo.utils.io.atomic_write`: a process-unique temporary
    file in the same folder, fsynced, renamed over ``path``, the folder fsynced; a
    crash at any moment leaves either the old file or the new one.
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a trainer checkpoint with the zoo's safe loader.

    Raises:
        CheckpointError: the file is missing, corrupt (truncated, random bytes) or not a
            modelzoo checkpoint; the message says how to carry on.
        UnsafeCheckpointError: the file is a pickle that asks for code to run (it is not
            run); the message names what it asked for.
    """
    from modelzoo.weights.io import load_torch_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = load_torch_file(path, map_location=map_location, fix=_resume_hint(path))
    except WeightsError as err:
        if type(err) is not WeightsError:  # UnsafeCheckpointError and other precise kinds
            raise
        raise CheckpointError(str(err)) from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(
            f"{path} holds no model state (a dict with a 'model' entry); is it a modelzoo "
            "checkpoint? Weight files load with modelzoo.create(name, pretrained=PATH)."
        )
    return state


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, torch.Tensor) for v in value.values())
    )


def evaluation_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint's run evaluated (and chose ``best.ckpt`` with).

    The EMA copy for runs with ``train.ema_decay``, the training weights otherwise;
    reads version 1 checkpoints too (their EMA copy was under ``"ema"``).
    """
    if int(state.get("version", 1)) >= 2:
        return state["model"]
    ema = state.get("ema")
    return ema if _is_state_dict(ema) else state["model"]


def training_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The raw training weights, which an exact resume continues from."""
    if int(state.get("version", 1)) >= 2:
        return state.get("training_model") or state["model"]
    return state["model"]


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch and CUDA generator states, as checkpoint-safe values."""
    version, mt_state, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(mt_state), "gauss": gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["kind"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
