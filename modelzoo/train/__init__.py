"""The shared training engine."""

from modelzoo.config import TrainConfig
from modelzoo.train.param_groups import layer_ids, param_groups
from modelzoo.train.run import RunDir
from modelzoo.train.trainer import Trainer, move_to, resolve_device, seed_everything

__all__ = [
    "RunDir",
    "TrainConfig",
    "Trainer",
    "layer_ids",
    "move_to",
    "param_groups",
    "resolve_device",
    "seed_everything",
]
