"""A batch sampler whose position can be saved and restored mid-epoch.

The order of epoch ``e`` is a permutation drawn from a generator seeded with
``seed + e``, so it depends on nothing else. Under torchrun each process takes
its slice of every global batch, so that N processes with batch size B see
exactly the batches one process with batch size N*B would see.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from modelzoo.config import check_batch_size
from modelzoo.errors import ConfigError

__all__ = ["ResumableBatchSampler"]


class ResumableBatchSampler:
    """Yields lists of dataset indices; ``state_dict()`` records the epoch and position.

    Args:
        num_samples: dataset length.
        batch_size: samples per process per batch.
        shuffle: draw a new permutation each epoch.
        seed: base seed of the permutations.
        drop_last: drop the last, smaller global batch.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_samples < 1:
            raise ConfigError(
                "the dataset is empty (0 samples): check the data section (e.g. a "
                "class filter or split fractions that leave nothing)"
            )
        check_batch_size(batch_size, "batch_size")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # batches of this epoch already handed out

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        full, rest = divmod(self.num_samples, self.global_batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        gbs = self.global_batch_size
        batches = len(self)
        while self.position < batches:
            chunk = order[self.position * gbs : (self.position + 1) * gbs]
            self.position += 1
            if self.world_size == 1:
                yield chunk
                continue
            # Split the global batch evenly; a short last batch is shared as evenly as it goes.
            per_rank = -(-len(chunk) // self.world_size)
            mine = chunk[self.rank * per_rank : (self.rank + 1) * per_rank]
            if mine:
                yield mine

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch."""
        self.epoch = epoch
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
