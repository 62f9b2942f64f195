"""An infinite, resumable, world-size-independent stream of training sample keys.

The stream is global: position ``j`` holds the key ``(perm_e[j % N], seed_j)`` where ``e = j // N`` is
the epoch, ``perm_e = torch.randperm(N)`` from a generator seeded with ``seed_for(base_seed, "epoch",
e)``, and ``seed_j = seed_for(base_seed, "sample", j)`` seeds that sample's crop and augmentation
(``datasets.py``, "index protocol"). Iteration ``t`` on rank ``r`` of ``W`` ranks takes positions
``t*W*b + r*b ... t*W*b + r*b + b - 1`` (``b`` = per-rank batch). Hence:

- two ranks with batch ``b`` together load exactly the samples one rank with batch ``2b`` loads;
- resuming at iteration ``t`` gives exactly what an uninterrupted run gives from ``t`` on, even with a
  different world size as long as the global batch ``W*b`` is the same;
- every item appears once per epoch (an epoch boundary may fall inside a batch).

Permutations come from ``torch.randperm``: identical for the same torch version on every machine and
process (it is drawn on the CPU); a torch upgrade may change the order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

_SEED_MASK = (1 << 63) - 1


def seed_for(base_seed: int, *parts: int | str) -> int:
    """A stable 63-bit seed derived from ``base_seed`` and ``parts`` (ints or strings).

    Uses BLAKE2b, not Python's ``hash`` (salted per process for strings), so every process, machine and
    run agrees. Distinct inputs give unrelated seeds (``seed_for(s, 1, 23) != seed_for(s, 12, 3)``).
    """
    fields = [_encode(base_seed)] + [_encode(part) for part in parts]
    digest = hashlib.blake2b("\x1f".join(fields).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


def _encode(part: int | str) -> str:
    if isinstance(part, bool) or not isinstance(part, (int, str)):
        raise TypeError(f"seed_for parts must be int or str, got {type(part).__name__} {part!r}")
    return f"i{part}" if isinstance(part, int) else f"s{part}"


class TrainBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, seed)`` keys for ``DataLoader(dataset, batch_sampler=...)``; never ends.

    Args:
        num_items: the dataset's length ``N``.
        batch_size_per_rank: ``b``, the batch each process loads per iteration.
        base_seed: the run's seed; the whole stream follows from it.
        rank: this process's rank ``r``.
        world_size: the number of processes ``W``.
        start_iteration: the first iteration to produce (the resume point).
    """

    def __init__(
        self,
        num_items: int,
        batch_size_per_rank: int,
        base_seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_iteration: int = 0,
    ):
        if num_items < 1:
            raise ValueError(f"num_items must be at least 1, got {num_items}")
        if batch_size_per_rank < 1:
            raise ValueError(f"batch_size_per_rank must be at least 1, got {batch_size_per_rank}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of world_size {world_size}")
        if start_iteration < 0:
            raise ValueError(f"start_iteration must be >= 0, got {start_iteration}")
        self.num_items = num_items
        self.batch_size_per_rank = batch_size_per_rank
        self.base_seed = base_seed
        self.rank = rank
        self.world_size = world_size
        self.start_iteration = start_iteration
        self._permutations: dict[int, torch.Tensor] = {}

    @property
    def global_batch_size(self) -> int:
        return self.world_size * self.batch_size_per_rank

    def key_at(self, position: int) -> tuple[int, int]:
        """The key at ``position`` of the global stream."""
        epoch, offset = divmod(position, self.num_items)
        return int(self._permutation(epoch)[offset]), seed_for(self.base_seed, "sample", position)

    def batch(self, iteration: int) -> list[tuple[int, int]]:
        """This rank's keys at ``iteration``."""
        start = iteration * self.global_batch_size + self.rank * self.batch_size_per_rank
        return [self.key_at(position) for position in range(start, start + self.batch_size_per_rank)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        iteration = self.start_iteration
        while True:
            yield self.batch(iteration)
            iteration += 1

    def _permutation(self, epoch: int) -> torch.Tensor:
        permutation = self._permutations.get(epoch)
        if permutation is None:
            generator = torch.Generator().manual_seed(seed_for(self.base_seed, "epoch", epoch))
            permutation = torch.randperm(self.num_items, generator=generator)
            # A batch touches at most two epochs; keep the two most recent permutations only.
            if len(self._permutations) >= 2:
                del self._permutations[min(self._permutations)]
            self._permutations[epoch] = permutation
        return permutation
