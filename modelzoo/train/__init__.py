"""The shared training engine."""

from modelzoo.config import TrainConfig
from modelzoo.train.trainer import Trainer, move_to, resolve_device, seed_everything

__all__ = ["TrainConfig", "Trainer", "move_to", "resolve_device", "seed_everything"]
