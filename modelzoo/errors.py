"""The exception hierarchy of modelzoo.

Every message says what was expected, what was found, and how to fix it.
Each error also derives from the closest built-in exception, so code that
already catches ``ValueError`` or ``LookupError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ModelzooError",
    "UnknownModelError",
    "ConfigError",
    "WeightsError",
    "IntegrityError",
    "OfflineError",
    "UnsafeCheckpointError",
    "UnknownWeightsError",
    "CheckpointError",
    "NonFiniteLossError",
    "InputShapeError",
]


class ModelzooError(Exception):
    """Base class of every error raised on purpose by modelzoo."""


class UnknownModelError(ModelzooError, LookupError):
    """A model name (or weight tag) that is not registered."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class ConfigError(ModelzooError, ValueError):
    """A recipe key, a builder keyword or a value that is not accepted."""


class WeightsError(ModelzooError):
    """Weights that cannot be found, fetched or loaded."""


class IntegrityError(WeightsError):
    """A file whose size or sha256 differs from the one recorded for it."""


class OfflineError(WeightsError):
    """The network is needed but ``MODELZOO_OFFLINE=1`` forbids it."""


class UnknownWeightsError(WeightsError, UnknownModelError):
    """A weight-set name whose architecture is neither a model nor has weight sets.

    Both a ``WeightsError`` (what ``get_weight_set`` raises) and an ``UnknownModelError``
    (what an unknown name is everywhere else), so either ``except`` catches it.
    """


class UnsafeCheckpointError(WeightsError):
    """A pickle that needs more than plain tensors and containers to load."""


class CheckpointError(ModelzooError):
    """A training checkpoint that is missing, corrupt or does not match the run."""


class NonFiniteLossError(ModelzooError, FloatingPointError):
    """A loss became NaN or infinite during training."""


class InputShapeError(ModelzooError, ValueError):
    """A tensor whose shape, dtype or values a model cannot take."""
